"""Secure metrics without a cluster: who gets /metrics (controller/metrics_server.Reviewer), what the
reviews ask the API server, their caches, and when `llmstage run` serves metrics securely."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from typing import Any, cast

import pytest
from llmstage.cli.run import metrics_secure
from llmstage.controller.kube import ApiError, Kube
from llmstage.controller.metrics_server import ALLOWED_TTL, DENIED_TTL, Reviewer
from llmstage.controller.selfsigned import self_signed_pem, server_context

USERS = {"good": "system:serviceaccount:monitoring:prometheus", "nosy": "system:serviceaccount:team:app"}


class FakeApiServer:
    """Answers TokenReviews for the tokens in USERS and SubjectAccessReviews for prometheus only."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.down = False

    async def create(self, kind: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise ApiError(0, "Unreachable", "connection refused")
        self.requests.append(obj)
        if obj["kind"] == "TokenReview":
            name = USERS.get(obj["spec"]["token"])
            status = {"authenticated": True, "user": {"username": name, "groups": ["g"]}} if name else {}
            return {**obj, "status": status}
        return {**obj, "status": {"allowed": obj["spec"]["user"] == USERS["good"]}}

    async def close(self) -> None:
        pass


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def reviewer(api: FakeApiServer, clock: Clock | None = None) -> Reviewer:
    async def connect() -> Kube:
        return cast(Kube, api)

    return Reviewer(connect, clock or Clock())


def decide(r: Reviewer, header: str | None) -> int:
    return asyncio.run(r.decide(header)).status


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Basic dXNlcg==", 401),
        ("Bearer ", 401),
        ("Bearer forged", 401),
        ("Bearer nosy", 403),
        ("Bearer good", 200),
        ("bearer good", 200),
    ],
)
def test_who_gets_the_metrics(header: str | None, status: int) -> None:
    assert decide(reviewer(FakeApiServer()), header) == status


def test_the_access_review_asks_for_get_on_the_metrics_path_as_the_tokens_user() -> None:
    api = FakeApiServer()
    decide(reviewer(api), "Bearer good")
    token_review, access_review = api.requests
    assert token_review["spec"] == {"token": "good"}
    assert access_review["spec"]["user"] == USERS["good"] and access_review["spec"]["groups"] == ["g"]
    assert access_review["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}


def test_decisions_are_cached_for_controller_runtimes_times() -> None:
    api, clock = FakeApiServer(), Clock()
    r = reviewer(api, clock)
    for _ in range(3):
        assert decide(r, "Bearer good") == 200 and decide(r, "Bearer nosy") == 403
    assert len(api.requests) == 4  # one TokenReview and one SubjectAccessReview per user
    clock.now = DENIED_TTL + 1  # the denial expires, the permission does not yet
    decide(r, "Bearer nosy"), decide(r, "Bearer good")
    assert [q["kind"] for q in api.requests[4:]] == ["SubjectAccessReview"]
    clock.now = ALLOWED_TTL + 1
    decide(r, "Bearer good")
    assert [q["kind"] for q in api.requests[5:]] == ["TokenReview", "SubjectAccessReview"]


def test_an_unreachable_api_server_serves_nothing() -> None:
    api = FakeApiServer()
    api.down = True
    assert decide(reviewer(api), "Bearer good") == 500


@pytest.mark.parametrize(
    ("address", "flag", "secure"),
    [
        ("0.0.0.0", None, True),
        ("10.1.2.3", None, True),
        ("::", None, True),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("127.0.0.1", True, True),
        ("0.0.0.0", False, False),
    ],
)
def test_metrics_are_secure_unless_only_this_host_can_connect(
    address: str, flag: bool | None, secure: bool
) -> None:
    assert metrics_secure(argparse.Namespace(metrics_address=address, metrics_secure=flag)) is secure


def test_the_self_signed_certificate_serves_tls() -> None:
    cert, key = self_signed_pem(["llmstage-metrics.system.svc", "10.0.0.1"])
    assert cert.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY" in key
    context = server_context(None, ["localhost"])
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
