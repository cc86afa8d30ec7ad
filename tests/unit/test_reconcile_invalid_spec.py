"""A spec the API models reject stalls the service with InvalidSpec, worded as `llmstage render`
words it (one formatter, llmstage.api.validation), and nothing is applied."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pydantic
import pytest
from llmstage.api.models import LLMService
from llmstage.api.validation import validation_message
from llmstage.controller.cache import WatchCache
from llmstage.controller.kube import Kube
from llmstage.controller.reconciler import Reconciler
from llmstage.resolve.resolved import ClusterFacts


class RecordingKube:
    """The two calls a stalled reconcile makes: the status patch and its Events."""

    def __init__(self) -> None:
        self.status: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []

    async def patch_status(
        self, kind: Any, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.status = status
        return {**BODY, "status": status}

    async def create(self, kind: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        self.events.append(obj)
        return obj

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("an invalid spec must not be applied")


BODY: dict[str, Any] = {
    "apiVersion": "llmstage.io/v1alpha1",
    "kind": "LLMService",
    "metadata": {"name": "chat", "namespace": "team", "uid": "u1", "generation": 1, "resourceVersion": "1"},
    "spec": {"model": {"name": "llama3.1:8b"}, "expectedConcurency": 3},  # misspelt field
}


def test_invalid_spec_message_is_the_cli_formatters() -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        LLMService.from_object(BODY)
    expected = validation_message(err.value)

    kube = RecordingKube()
    cache = WatchCache()
    cache.put_service(BODY)
    reconciler = Reconciler(cast(Kube, kube), cache, ClusterFacts())
    _, result = asyncio.run(reconciler.reconcile(("team", "chat")))

    assert result == "stalled"
    assert kube.status is not None
    stalled = next(c for c in kube.status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == ("True", "InvalidSpec", expected)
    assert "expectedConcurency" in expected and "unknown field" in expected
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in kube.events)
