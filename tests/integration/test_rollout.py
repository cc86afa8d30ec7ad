"""Rollouts of a one-pod GPU service on the kwok GPU nodes (docs/operator.md, Rollouts).

The L4 node has 4 GPUs. A one-pod service on one GPU rolls with a surge, and the Service keeps a
ready endpoint through the whole rollout; a one-pod service on all 4 GPUs has no room for a second
pod, so after the grace the operator replaces the pod instead and says for how long the service
is unavailable. Both watch every EndpointSlice and LLMService event of the rollout, so a moment
without a ready endpoint, or a status, cannot slip between two samples.

Each test has its own namespace; the operator is the session's (tests/integration/conftest.py,
unschedulable grace 8 s).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from llmstage.api.models import LLMService
from llmstage.render.rollout import outage_text
from llmstage.resolve import resolve

from testkit import OperatorProcess, wait_until
from testkit.services import API_KEY_SECRET, GROUP, PLURAL, VERSION, LLMServices, llmservice

L4 = "NVIDIA-L4"
L4_GPUS = 4  # hack/cluster/nodes.yaml, gpu-l4-0


def one_pod(gpus: int) -> dict[str, Any]:
    """Production vLLM with one pod and a claim per pod, so a second pod could start beside it."""
    return {
        "stage": "production",
        "replicas": 1,
        "resources": {"gpu": {"count": gpus, "product": L4}},
        "vllm": {"apiKeySecretRef": {"name": API_KEY_SECRET}, "tensorParallelSize": 1},
        "cache": {"mode": "PerPod"},
    }


class Recorder:
    """A watch in a thread, recording what `observe(event)` returns for every event until stopped."""

    def __init__(self, stream: Callable[..., Any], observe: Callable[[dict[str, Any]], Any], **kwargs: Any):
        self.seen: list[Any] = []
        self._stopped = False
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(stream, observe, kwargs), daemon=True)

    def _run(self, stream: Callable[..., Any], observe: Callable[[dict[str, Any]], Any], kwargs: Any) -> None:
        try:
            for event in self._watch.stream(stream, **kwargs):
                self.seen.append(observe(event))
        except Exception:
            if not self._stopped:  # closing the stream in __exit__ ends it with an error: expected
                raise

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stopped = True
        self._watch.stop()
        self._thread.join(timeout=10)


class Bed(LLMServices):
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.apps = client.AppsV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)

    def deployment(self, name: str) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(f"{name}-vllm", self.ns)

    def rolled_out(self, name: str, generation: int) -> bool:
        """The Deployment at `generation` with its one pod updated, ready and alone."""
        dep = self.deployment(name)
        s = dep.status
        return bool(
            dep.metadata.generation >= generation
            and s.observed_generation >= dep.metadata.generation
            and s.updated_replicas == 1
            and s.ready_replicas == 1
            and (s.replicas or 0) == 1
        )

    def ready_endpoints(self, event: dict[str, Any]) -> int:
        slice_ = event["object"]
        return sum(
            1
            for ep in slice_.endpoints or []
            if ep.conditions and ep.conditions.ready and event["type"] != "DELETED"
        )

    def endpoints_recorder(self, name: str) -> Recorder:
        return Recorder(
            self.discovery.list_namespaced_endpoint_slice,
            self.ready_endpoints,
            namespace=self.ns,
            label_selector=f"kubernetes.io/service-name={name}",
            timeout_seconds=600,
        )

    def status_recorder(self, name: str) -> Recorder:
        def reconciling(event: dict[str, Any]) -> tuple[str, str] | None:
            conditions = (event["object"].get("status") or {}).get("conditions") or []
            found = next((c for c in conditions if c["type"] == "Reconciling"), None)
            return (found["reason"], found["message"]) if found else None

        return Recorder(
            self.custom.list_namespaced_custom_object,
            reconciling,
            group=GROUP,
            version=VERSION,
            namespace=self.ns,
            plural=PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=600,
        )

    def roll(self, name: str) -> int:
        """Change the pod template (an env var) and return the Deployment generation to wait for."""
        generation = self.deployment(name).metadata.generation
        self.patch_spec(name, {"vllm": {"env": {"ROLLOUT": "2"}}})
        wait_until(
            lambda: self.deployment(name).metadata.generation > generation,
            timeout=60,
            what=f"{name}'s Deployment to get the new template",
        )
        return int(self.deployment(name).metadata.generation)


@pytest.fixture
def bed(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Iterator[Bed]:
    b = Bed(api_client, namespace)
    b.create_api_key_secret()
    yield b


def test_a_one_pod_gpu_service_surges_and_keeps_a_ready_endpoint_where_there_is_room(bed: Bed) -> None:
    bed.create("room", **one_pod(1))
    bed.wait_condition("room", "Ready", timeout=120)
    strategy = bed.deployment("room").spec.strategy
    assert (strategy.rolling_update.max_surge, strategy.rolling_update.max_unavailable) == (1, 0)
    with bed.endpoints_recorder("room") as endpoints:
        generation = bed.roll("room")
        wait_until(lambda: bed.rolled_out("room", generation), timeout=180, what="the rollout to finish")
    counts = [n for n in endpoints.seen if n is not None]
    assert counts, "no EndpointSlice event during the rollout"
    assert min(counts) >= 1, f"the Service had no ready endpoint during the rollout: {counts}"
    bed.wait_condition("room", "Ready", timeout=60)


def test_without_room_the_rollout_replaces_the_pod_and_says_for_how_long(bed: Bed) -> None:
    bed.create("full", **one_pod(L4_GPUS))
    bed.wait_condition("full", "Ready", timeout=120)
    with bed.status_recorder("full") as statuses:
        generation = bed.roll("full")
        wait_until(lambda: bed.rolled_out("full", generation), timeout=240, what="the rollout to finish")
    reasons = [seen[0] for seen in statuses.seen if seen]
    assert "WaitingForRoom" in reasons, reasons
    assert "ReplacingWithoutSurge" in reasons, reasons
    replacing = next(
        message for reason, message in (s for s in statuses.seen if s) if reason == "ReplacingWithoutSurge"
    )
    assert "Insufficient nvidia.com/gpu" in replacing
    expected = outage_text(resolve(LLMService.from_object(llmservice("full", **one_pod(L4_GPUS)))))
    assert f"the service is {expected}" in replacing
    bed.wait_condition("full", "Ready", timeout=60)
    # Rolled out, the service surges again at its next rollout.
    wait_until(
        lambda: bed.deployment("full").spec.strategy.rolling_update.max_surge == 1,
        timeout=30,
        what="the surge strategy back",
    )
