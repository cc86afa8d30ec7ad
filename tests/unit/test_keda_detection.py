"""How the operator finds out at start-up whether KEDA is installed (ClusterFacts.keda_crd), and
the other add-ons the same way (LeaderWorkerSet, the inference extension, Gateway API)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from llmstage.controller.kube import KINDS, ApiError, Kind
from llmstage.controller.operator import detect_kind
from llmstage.controller.watches import CHILD_KINDS, OPTIONAL_KINDS
from llmstage.resolve.resolved import ClusterFacts


class FakeKube:
    def __init__(self, crd: Any, discovery: Any) -> None:
        self.crd, self.discovery = crd, discovery
        self.asked: list[str] = []

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.asked.append(name)
        if isinstance(self.crd, ApiError):
            raise self.crd
        return self.crd

    async def discover(self, path: str) -> dict[str, Any]:
        self.asked.append(path)
        if isinstance(self.discovery, ApiError):
            raise self.discovery
        return self.discovery


FORBIDDEN = ApiError(403, "Forbidden", "customresourcedefinitions is forbidden")
SERVED = {"kind": "APIResourceList", "resources": [{"name": "scaledobjects"}, {"name": "scaledjobs"}]}


def detect(kube: FakeKube) -> bool:
    return asyncio.run(
        detect_kind(kube, "keda.sh/v1alpha1", "ScaledObject", "scaledobjects.keda.sh")  # type: ignore[arg-type]
    )


def test_the_crd_decides_where_crds_are_readable() -> None:
    assert detect(FakeKube({"metadata": {"name": "scaledobjects.keda.sh"}}, SERVED)) is True
    kube = FakeKube(None, SERVED)
    assert detect(kube) is False
    assert kube.asked == ["scaledobjects.keda.sh"]  # no discovery when the CRD answer is clear


def test_namespaced_rbac_falls_back_to_api_discovery() -> None:
    kube = FakeKube(FORBIDDEN, SERVED)
    assert detect(kube) is True
    assert kube.asked == ["scaledobjects.keda.sh", "/apis/keda.sh/v1alpha1"]
    assert detect(FakeKube(FORBIDDEN, ApiError(404, "NotFound", "the server could not find it"))) is False
    assert detect(FakeKube(FORBIDDEN, {"resources": [{"name": "scaledjobs"}]})) is False


def test_scaled_objects_are_a_watched_child_kind_the_client_knows() -> None:
    assert ("keda.sh/v1alpha1", "ScaledObject") in CHILD_KINDS
    assert KINDS[("keda.sh/v1alpha1", "ScaledObject")].path("ns", "chat-vllm") == (
        "/apis/keda.sh/v1alpha1/namespaces/ns/scaledobjects/chat-vllm"
    )


@pytest.mark.parametrize("kind", sorted(OPTIONAL_KINDS))
def test_every_add_on_kind_is_watched_known_and_has_a_fact(kind: tuple[str, str]) -> None:
    crd, field = OPTIONAL_KINDS[kind]
    assert kind in CHILD_KINDS
    assert crd == f"{KINDS[kind].plural}.{kind[0].rpartition('/')[0]}"
    assert field in {f.name for f in dataclasses.fields(ClusterFacts)}


def test_the_leader_worker_set_is_found_by_discovery_too() -> None:
    served = {"resources": [{"name": "leaderworkersets"}, {"name": "leaderworkersets/scale"}]}
    kube = FakeKube(FORBIDDEN, served)
    crd = "leaderworkersets.leaderworkerset.x-k8s.io"
    found = asyncio.run(detect_kind(kube, "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", crd))  # type: ignore[arg-type]
    assert found is True
    assert kube.asked[-1] == "/apis/leaderworkerset.x-k8s.io/v1"
