"""Readers of the observed cluster: what the watch caches saw of one LLMService's children.

Observed(children, endpoint_slices, pods, pod_claims)    filled by the reconciler from controller/cache.py
ready_endpoints, unschedulable, ...          pure questions the plan asks of it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from llmstage.api.constants import Runtime
from llmstage.controller.cache import ChildKey
from llmstage.render.labels import RUNTIME_LABEL, workload_name


@dataclass
class Observed:
    """The children of one LLMService as the watch caches last saw them."""

    children: dict[ChildKey, dict[str, Any]] = field(default_factory=dict)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    # Claims per pod (spec.cache mode PerPod) by name, POD-model-cache: class, modes, phase.
    pod_claims: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get((kind, name))


def serving_runtime(observed: Observed, name: str) -> Runtime | None:
    svc = observed.get("Service", name)
    value = ((svc or {}).get("spec") or {}).get("selector", {}).get(RUNTIME_LABEL)
    try:
        return Runtime(value) if value else None
    except ValueError:
        return None


def deployment_available(dep: dict[str, Any] | None) -> bool:
    if not dep:
        return False
    status = dep.get("status") or {}
    if status.get("observedGeneration", 0) < dep["metadata"].get("generation", 0):
        return False
    conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
    return conds.get("Available") == "True" and status.get("readyReplicas", 0) >= 1


def ready_endpoints(observed: Observed, runtime: Runtime | None, name: str) -> int:
    """Ready endpoints of the Service, counting only pods of `runtime` (None: any)."""
    prefix = f"{workload_name(name, runtime)}-" if runtime else ""
    count = 0
    for eps in observed.endpoint_slices:
        for ep in eps.get("endpoints") or []:
            target = (ep.get("targetRef") or {}).get("name", "")
            if (ep.get("conditions") or {}).get("ready") and target.startswith(prefix):
                count += len(ep.get("addresses") or [])
    return count


class Pending(NamedTuple):
    """A pod the scheduler cannot place: its message, seconds since, and the pod's name."""

    message: str
    waited: float
    pod: str


def unschedulable(observed: Observed, name: str, runtime: Runtime, now: datetime) -> Pending | None:
    """The scheduler's message for a pending pod of `runtime` and how long it has been pending.

    Unschedulable: no node fits. SchedulerError from the VolumeBinding plugin: a node fitted but
    the pod's claim was not provisioned (on a WaitForFirstConsumer class the provisioner refused
    it, or the scheduler's bind timeout ran out); the scheduler retries, the claim stays Pending.
    """
    prefix = f"{workload_name(name, runtime)}-"
    for pod in observed.pods:
        if not pod["metadata"]["name"].startswith(prefix):
            continue
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") != "PodScheduled" or cond.get("status") != "False":
                continue
            message = cond.get("message") or "unschedulable"
            volumes = cond.get("reason") == "SchedulerError" and VOLUME_BINDING in message
            if cond.get("reason") == "Unschedulable" or volumes:
                since = _parse_time(cond.get("lastTransitionTime")) or now
                return Pending(message, (now - since).total_seconds(), pod["metadata"]["name"])
    return None


def surge_without_room(observed: Observed, name: str, runtime: Runtime, now: datetime) -> Pending | None:
    """An extra pod of `runtime` (a rollout's surge, or a scale-up) that no node has the resources
    for, while the Deployment's other pods are ready: the scheduler says "Insufficient <resource>"
    (the NodeResourcesFit plugin), not a selector or taint that no node matches."""
    status = (observed.get("Deployment", workload_name(name, runtime)) or {}).get("status") or {}
    ready = status.get("readyReplicas", 0)
    if ready < 1 or status.get("replicas", 0) <= ready:
        return None
    pending = unschedulable(observed, name, runtime, now)
    return pending if pending is not None and "Insufficient" in pending.message else None


# How the scheduler's binding step names itself in its errors (running PreBind plugin "...").
VOLUME_BINDING = '"VolumeBinding"'


def replica_failure(deployment: dict[str, Any] | None) -> str | None:
    """The Deployment's ReplicaFailure message: its pods cannot even be created (a PriorityClass
    or RuntimeClass that does not exist, a quota, the namespace's pod security level, a webhook)."""
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return str(cond.get("message") or cond.get("reason") or "pods cannot be created")
    return None


def container_config_error(observed: Observed, name: str, runtime: Runtime) -> str | None:
    """A missing Secret or key shows up as CreateContainerConfigError on the kubelet's side."""
    prefix = f"{workload_name(name, runtime)}-"
    for pod in observed.pods:
        if not pod["metadata"]["name"].startswith(prefix):
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        statuses += (pod.get("status") or {}).get("initContainerStatuses") or []
        for cs in statuses:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("CreateContainerConfigError", "CreateContainerError"):
                return f"container {cs.get('name')}: {waiting.get('message', waiting['reason'])}"
    return None


# What a pod in one of the rendered init containers is doing.
INIT_STEPS = {
    "pull-model": "pulling the model into the cache",
    "download-model": "downloading the weights into the cache",
    "download-lora": "downloading the LoRA adapters into the cache",  # weights from spec.model.source
}


def starting_steps(observed: Observed, name: str, runtime: Runtime) -> str:
    """Which step starting pods of `runtime` are at, e.g. '1 pod downloading the weights into the
    cache (kubectl logs POD -c download-model)'; empty when none is in an init container."""
    prefix = f"{workload_name(name, runtime)}-"
    counts: dict[str, int] = {}
    for pod in observed.pods:
        step = (pod.get("status") or {}).get("initializing")
        if step and pod["metadata"]["name"].startswith(prefix):
            counts[step] = counts.get(step, 0) + 1
    return "; ".join(
        f"{n} pod{'s' if n > 1 else ''} {INIT_STEPS.get(step, f'in init container {step}')} "
        f"(kubectl logs POD -c {step})"
        for step, n in sorted(counts.items())
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
