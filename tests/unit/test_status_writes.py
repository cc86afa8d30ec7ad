"""Status writes: a change of the replica counts alone waits Settings.counts_delay so that it is
written together with the next change; any other change is written at once."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from typing import Any

from llmstage.controller.cache import Cache
from llmstage.controller.plan import READY, Condition
from llmstage.controller.reconciler import Reconciler, Settings, status_changes
from llmstage.resolved import ClusterFacts

NOW = datetime(2026, 11, 26, tzinfo=UTC)
KEY = ("ns", "svc")


class RecordingKube:
    """Stands in for Kube at the reconciler's boundary: records status patches and Events."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    async def patch_status(
        self, kind: Any, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches.append(status)
        return {
            **BODY,
            "metadata": {**BODY["metadata"], "resourceVersion": str(len(self.patches))},
            "status": status,
        }

    async def create(self, kind: Any, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.events.append(obj)
        return obj


BODY: dict[str, Any] = {
    "apiVersion": "llmstage.io/v1alpha1",
    "kind": "LLMService",
    "metadata": {"namespace": "ns", "name": "svc", "uid": "u1", "generation": 1},
}
WAITING = [Condition(READY, "False", "WaitingForEndpoints", "waiting for ready ollama pods")]
READY_NOW = [Condition(READY, "True", "EndpointsReady", "1 ready ollama endpoint(s)")]


def counts(replicas: int, ready: int) -> dict[str, Any]:
    return {"runtime": "ollama", "replicas": replicas, "readyReplicas": ready}


class Harness:
    def __init__(self, delay: float) -> None:
        self.kube = RecordingKube()
        self.reconciler = Reconciler(self.kube, Cache(), ClusterFacts(), Settings(counts_delay=delay))  # type: ignore[arg-type]
        self.body = copy.deepcopy(BODY)

    def write(self, conditions: list[Condition], fields: dict[str, Any]) -> float | None:
        before = len(self.kube.patches)
        due = asyncio.run(self.reconciler._write_status(KEY, self.body, conditions, fields, 1, NOW))
        if len(self.kube.patches) > before:  # what the watch would bring back
            self.body = {**self.body, "status": self.kube.patches[-1]}
        return due


def test_a_counts_only_change_waits_and_is_written_with_the_next_change() -> None:
    h = Harness(delay=60)
    assert h.write(WAITING, counts(0, 0)) is None
    assert len(h.kube.patches) == 1  # first status: written at once

    due = h.write(WAITING, counts(1, 0))  # the Deployment created its pod: counts alone
    assert len(h.kube.patches) == 1
    assert due is not None and 0 < due <= 60  # the reconciler asks to be called back

    assert h.write(READY_NOW, counts(1, 1)) is None  # Ready: written at once, counts included
    assert len(h.kube.patches) == 2
    last = h.kube.patches[-1]
    assert (last["replicas"], last["readyReplicas"]) == (1, 1)
    assert [c["status"] for c in last["conditions"] if c["type"] == READY] == ["True"]


def test_a_deferred_counts_change_is_written_once_its_delay_has_passed() -> None:
    h = Harness(delay=0.05)
    h.write(READY_NOW, counts(1, 1))
    assert h.write(READY_NOW, counts(2, 1)) is not None  # scaled up: not written yet
    assert len(h.kube.patches) == 1
    time.sleep(0.06)
    assert h.write(READY_NOW, counts(2, 1)) is None
    assert len(h.kube.patches) == 2 and h.kube.patches[-1]["replicas"] == 2
    # nothing changed since: no write, nothing pending
    assert h.write(READY_NOW, counts(2, 1)) is None
    assert len(h.kube.patches) == 2


def test_counts_that_return_to_the_written_values_cancel_the_pending_write() -> None:
    h = Harness(delay=0.05)
    h.write(READY_NOW, counts(1, 1))
    assert h.write(READY_NOW, counts(1, 0)) is not None  # a pod blinked
    assert h.write(READY_NOW, counts(1, 1)) is None  # and came back
    time.sleep(0.06)
    assert h.write(READY_NOW, counts(1, 1)) is None
    assert len(h.kube.patches) == 1


def test_a_later_counts_change_does_not_push_the_deadline_back() -> None:
    h = Harness(delay=0.2)
    h.write(READY_NOW, counts(1, 1))
    first = h.write(READY_NOW, counts(2, 1))
    time.sleep(0.1)
    second = h.write(READY_NOW, counts(3, 1))
    assert first is not None and second is not None and second < first  # same deadline, nearer


def test_status_changes_names_the_fields_that_differ() -> None:
    current = {"replicas": 1, "readyReplicas": 1, "runtime": "ollama", "cutover": None}
    assert (
        status_changes(current, {"replicas": 1, "readyReplicas": 1, "runtime": "ollama", "cutover": None})
        == set()
    )
    assert status_changes(current, {"replicas": 2, "runtime": "vllm"}) == {"replicas", "runtime"}
    assert status_changes({}, {"cutover": None}) == set()  # absent and None are the same
