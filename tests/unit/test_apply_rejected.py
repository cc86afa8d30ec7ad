"""An object the API server cannot even type (SSA answers 500 "failed to create typed patch
object") is not retried: the reconciler stalls the service with ApplyRejected instead of
retrying forever (the fuzz of tests/integration/test_reliability.py produces such objects)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llmstage.controller.kube import ApiError, Kube
from llmstage.kubeapi.errors import HttpError

from testkit import kube_over

TYPED_PATCH = (
    "failed to create typed patch object (ns/x-ollama; apps/v1, Kind=Deployment): "
    ".spec.template.spec.affinity.nodeAffinity: expected map, got &{not-an-object}"
)


class Rejecting:
    def __init__(self, message: str) -> None:
        self.message, self.calls = message, 0

    async def request(self, method: str, path: str, **_: Any) -> Any:
        self.calls += 1
        raise HttpError(500, {}, f'{{"message": "{self.message}", "reason": "InternalError"}}'.encode())


def apply(kube: Kube) -> Any:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x-ollama", "namespace": "ns"}}
    return asyncio.run(kube.apply(obj))


def test_a_typed_patch_failure_is_not_retried_and_says_the_object_was_rejected() -> None:
    transport = Rejecting(TYPED_PATCH)
    with pytest.raises(ApiError) as err:
        apply(kube_over(transport))
    assert transport.calls == 1 and err.value.rejected_object
    assert "affinity.nodeAffinity: expected map" in err.value.message


def test_other_500s_are_still_retried() -> None:
    transport = Rejecting("etcdserver: request timed out")
    with pytest.raises(ApiError) as err:
        apply(kube_over(transport))
    assert transport.calls == 4 and not err.value.rejected_object
