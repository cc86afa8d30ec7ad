"""Retry policy of the API client: what is retried, what is not, and when it gives up."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from llmstage.controller.kube import KINDS, ApiError
from llmstage.kubeapi.errors import HttpError

from testkit import kube_over

DEPLOYMENT = KINDS[("apps/v1", "Deployment")]


class FlakyTransport:
    """Stands in for the HTTP layer (controller.kube.Http) only: answers with the given HTTP
    statuses in turn."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses, self.headers, self.calls = list(statuses), headers or {}, 0

    async def request(self, method: str, path: str, **_: Any) -> Any:
        self.calls += 1
        status = self.statuses.pop(0)
        if status >= 400:
            raise HttpError(status, self.headers, b'{"message": "injected", "reason": "Test"}')
        return json.loads('{"kind": "Deployment", "metadata": {"name": "x"}}')


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_transient_errors_are_retried_until_success(status: int) -> None:
    transport = FlakyTransport([status, status, 200])
    result = asyncio.run(kube_over(transport).get(DEPLOYMENT, "ns", "x"))
    assert result == {"kind": "Deployment", "metadata": {"name": "x"}}
    assert transport.calls == 3


def test_a_conflict_on_server_side_apply_is_not_retried() -> None:
    transport = FlakyTransport([409, 200])
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "ns"}}
    with pytest.raises(ApiError) as err:
        asyncio.run(kube_over(transport).apply(obj))
    assert err.value.status == 409 and transport.calls == 1


def test_invalid_requests_fail_at_once_with_the_servers_message() -> None:
    transport = FlakyTransport([422])
    with pytest.raises(ApiError, match="injected") as err:
        asyncio.run(kube_over(transport).get(DEPLOYMENT, "ns", "x"))
    assert err.value.status == 422 and transport.calls == 1


def test_retries_stop_after_the_budget() -> None:
    transport = FlakyTransport([503] * 10)
    with pytest.raises(ApiError):
        asyncio.run(kube_over(transport).get(DEPLOYMENT, "ns", "x"))
    assert transport.calls == 4


def test_not_found_is_none_for_get_and_false_for_delete() -> None:
    assert asyncio.run(kube_over(FlakyTransport([404])).get(DEPLOYMENT, "ns", "x")) is None
    assert asyncio.run(kube_over(FlakyTransport([404])).delete(DEPLOYMENT, "ns", "x")) is False


class DroppingTransport:
    """The API server closes the connection mid-request (it is restarting), then answers."""

    def __init__(self, drops: int) -> None:
        self.drops, self.calls = drops, 0

    async def request(self, method: str, path: str, **_: Any) -> Any:
        self.calls += 1
        if self.calls <= self.drops:
            raise aiohttp.ServerDisconnectedError()
        return await FlakyTransport([200]).request(method, path)


def test_a_dropped_connection_is_retried_and_reported_as_unreachable_when_it_persists() -> None:
    transport = DroppingTransport(drops=2)
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "ns"}}
    assert asyncio.run(kube_over(transport).apply(obj))["metadata"]["name"] == "x"
    assert transport.calls == 3
    with pytest.raises(ApiError, match="Unreachable") as err:
        asyncio.run(kube_over(DroppingTransport(drops=10)).apply(obj))
    assert err.value.status == 0
