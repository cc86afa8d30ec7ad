"""How many status writes and Events a starting service costs: its replica counts
wait for the next write with news while it is Reconciling, and a healthy start records no Event."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

from llmstage.controller.cache import WatchCache
from llmstage.controller.kube import Kube
from llmstage.controller.reconciler import Reconciler, Settings
from llmstage.resolve.resolved import ClusterFacts

KEY = ("team", "chat")
BODY: dict[str, Any] = {
    "apiVersion": "llmstage.io/v1alpha1",
    "kind": "LLMService",
    "metadata": {"name": "chat", "namespace": "team", "uid": "u1", "generation": 1, "resourceVersion": "1"},
    "spec": {"model": {"name": "llama3.1:8b"}, "stage": "dev"},
}


class RecordingKube:
    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.rv = 100

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        live = copy.deepcopy(obj)
        live["metadata"].update(uid=f"uid-{obj['metadata']['name']}", resourceVersion=str(self.rv))
        self.applied[obj["kind"]] = live
        return live

    async def patch_status(
        self, kind: Any, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.statuses.append(status)
        self.rv += 1
        return {**BODY, "metadata": {**BODY["metadata"], "resourceVersion": str(self.rv)}, "status": status}

    async def create(self, kind: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        self.events.append(obj)
        return obj


def deployment(kube: RecordingKube, replicas: int, ready: int) -> dict[str, Any]:
    dep = copy.deepcopy(kube.applied["Deployment"])
    kube.rv += 1
    dep["metadata"]["resourceVersion"] = str(kube.rv)
    dep["metadata"]["generation"] = 1
    dep["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": ready,
        "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
    }
    return dep


READY_SLICE = {
    "metadata": {
        "name": "chat-abcde",
        "namespace": "team",
        "labels": {"kubernetes.io/service-name": "chat", "app.kubernetes.io/managed-by": "llmstage"},
    },
    "endpoints": [
        {"addresses": ["10.0.0.9"], "conditions": {"ready": True}, "targetRef": {"name": "chat-ollama-x-y"}}
    ],
}


def start(settings: Settings) -> tuple[RecordingKube, WatchCache, Reconciler]:
    kube, cache = RecordingKube(), WatchCache()
    cache.put_service(copy.deepcopy(BODY))
    return kube, cache, Reconciler(cast(Kube, kube), cache, ClusterFacts(), settings)


def reconcile(reconciler: Reconciler) -> None:
    asyncio.run(reconciler.reconcile(KEY))


def test_a_starting_service_costs_two_status_writes_and_no_event() -> None:
    kube, cache, reconciler = start(Settings())
    reconcile(reconciler)
    assert len(kube.statuses) == 1  # observedGeneration with Reconciling=True, for kstatus and Argo CD
    first = kube.statuses[0]
    assert (first["replicas"], first["readyReplicas"]) == (0, 0)
    assert {c["type"]: c["status"] for c in first["conditions"]}["Reconciling"] == "True"

    cache.put_child(deployment(kube, replicas=1, ready=0))  # the pod is created
    reconcile(reconciler)
    cache.put_child(deployment(kube, replicas=1, ready=1))  # ready, not yet behind the Service
    reconcile(reconciler)
    assert len(kube.statuses) == 1, "counts alone wait for the write with news"

    cache.put_slice(READY_SLICE)
    reconcile(reconciler)
    assert len(kube.statuses) == 2
    last = kube.statuses[-1]
    assert {c["type"]: c["status"] for c in last["conditions"]}["Ready"] == "True"
    assert (last["replicas"], last["readyReplicas"]) == (1, 1)  # nothing was lost
    assert kube.events == []  # a healthy start is in the status, not in Events


def test_held_back_counts_are_written_once_they_are_older_than_the_bound() -> None:
    kube, cache, reconciler = start(Settings(counts_max_lag=0.0))
    reconcile(reconciler)
    cache.put_child(deployment(kube, replicas=1, ready=0))
    reconcile(reconciler)
    assert len(kube.statuses) == 2 and kube.statuses[-1]["replicas"] == 1


def test_counts_of_a_ready_service_are_written_at_once() -> None:
    kube, cache, reconciler = start(Settings())
    reconcile(reconciler)
    cache.put_child(deployment(kube, replicas=1, ready=1))
    cache.put_slice(READY_SLICE)
    reconcile(reconciler)
    assert len(kube.statuses) == 2
    cache.put_child(deployment(kube, replicas=2, ready=1))  # scaled up: still Ready, not Reconciling
    reconcile(reconciler)
    assert len(kube.statuses) == 3 and kube.statuses[-1]["replicas"] == 2
