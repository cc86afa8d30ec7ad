"""What one reconcile should do, computed purely from the resolved spec and the observed children.

    plan(resolved, observed, now) -> Plan(apply, keep, status, requeue_after)

The runtime cutover is derived from the cluster, not stored, so it survives operator restarts:
while the other runtime's Deployment still exists, a cutover is under way, and the Service's
selector says which runtime serves now:

    Starting     new Deployment applied beside the old one; Service stays on the old pods
    Switching    new Deployment Available: Service switched to the new pods
    Draining     the Service's EndpointSlices hold only new pods: old Deployment may go

Nothing is deleted until the new runtime's pods are the Service's ready endpoints, so the
Service never has zero ready endpoints during a promotion. If the new pods cannot be scheduled
for longer than `unschedulable_grace`, the old runtime keeps serving and the service is Stalled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmstage.desired import desired_objects
from llmstage.render.labels import RUNTIME_LABEL, cache_claim_name, selector_string, workload_name
from llmstage.resolved import ClusterFacts, Resolved, Runtime

ChildKey = tuple[str, str]  # (kind, name)

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
RUNTIME_SELECTED, MODEL_FITS, BEST_PRACTICES = "RuntimeSelected", "ModelFits", "FollowsBestPractices"


CUTOVER_MESSAGES = {
    "Starting": "{new} pods are starting beside {old}; the Service stays on {old}",
    "Switching": "{new} is available; the Service moved to {new}, waiting for its endpoints to follow",
    "Draining": "the Service's endpoints are all {new} pods; removing the {old} Deployment",
}


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


@dataclass
class Observed:
    """The children of one LLMService as the watch caches last saw them."""

    children: dict[ChildKey, dict[str, Any]] = field(default_factory=dict)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get((kind, name))


@dataclass
class Plan:
    apply: list[dict[str, Any]]
    keep: set[ChildKey]  # owned, not desired now, but must not be pruned yet (old runtime)
    conditions: list[Condition]
    status: dict[str, Any]  # everything in status but conditions and observedGeneration
    requeue_after: float | None = None


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


def unschedulable(observed: Observed, name: str, runtime: Runtime, now: datetime) -> tuple[str, float] | None:
    """The scheduler's message for a pending pod of `runtime` and how long it has been pending."""
    prefix = f"{workload_name(name, runtime)}-"
    for pod in observed.pods:
        if not pod["metadata"]["name"].startswith(prefix):
            continue
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                since = _parse_time(cond.get("lastTransitionTime")) or now
                return cond.get("message", "unschedulable"), (now - since).total_seconds()
    return None


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


def _key(obj: dict[str, Any]) -> ChildKey:
    return obj["kind"], obj["metadata"]["name"]


def _runtime_children(name: str, runtime: Runtime) -> set[ChildKey]:
    """Objects of one runtime that must outlive a cutover until the switch is done."""
    w = workload_name(name, runtime)
    return {
        ("Deployment", w),
        ("HorizontalPodAutoscaler", w),
        ("PodDisruptionBudget", w),
        ("PodMonitor", w),
        ("PersistentVolumeClaim", cache_claim_name(name, runtime)),
    }


def plan(
    resolved: Resolved,
    observed: Observed,
    now: datetime,
    *,
    facts: ClusterFacts | None = None,
    unschedulable_grace: float = 60.0,
    render: Callable[..., list[dict[str, Any]]] = desired_objects,
) -> Plan:
    """`render` is desired_objects or a memo of it with the same signature (RenderCache)."""
    facts = facts or ClusterFacts()
    name, desired = resolved.name, resolved.runtime
    serving = serving_runtime(observed, name)
    # The other runtime's Deployment still existing means a cutover is under way (from either
    # side): it is only deleted once the Service's endpoints are all pods of the new runtime.
    old = next(
        (r for r in Runtime if r != desired and observed.get("Deployment", workload_name(name, r))), None
    )

    new_dep = observed.get("Deployment", workload_name(name, desired))
    new_available = deployment_available(new_dep)
    requeue: float | None = None
    phase: str | None = None
    keep: set[ChildKey] = set()
    # Once switched, stay switched: flapping the selector back would drop live connections twice.
    switch_now = old is None or new_available or serving == desired

    if old is not None:
        keep = _runtime_children(name, old) - _runtime_children(name, desired)
        ready_new = ready_endpoints(observed, desired, name)
        if not switch_now:
            phase = "Starting"
        elif ready_new == 0 or ready_endpoints(observed, None, name) != ready_new:
            phase = "Switching"  # Service switched; wait for the endpoints to follow before deleting
        else:
            phase, keep = "Draining", set()

    objects = render(resolved, facts, serving_runtime=desired if switch_now else old)

    conditions: list[Condition] = []
    stalled: Condition | None = None
    pending = unschedulable(observed, name, desired, now)
    config_error = container_config_error(observed, name, desired)
    if config_error:
        stalled = Condition(
            STALLED,
            "True",
            "ContainerConfigError",
            f"{config_error}; create the Secret (or fix the reference in spec) and the "
            f"pods start on their own",
        )
    elif (failure := replica_failure(new_dep)) and not new_available:
        # Found by the fuzz (bench/fuzzspecs.py): without this the service waited for endpoints
        # forever, Reconciling with no hint why.
        stalled = Condition(
            STALLED,
            "True",
            "PodCreationFailed",
            f"{resolved.runtime.value} pods cannot be created: {failure}. Fix the reference in "
            f"spec.scheduling (priorityClassName, runtimeClassName) or the namespace's quota or "
            f"pod security level; the pods are created as soon as it allows them",
        )
    elif pending and not new_available:
        message, waited = pending
        if waited >= unschedulable_grace:
            serving_note = f"; {old.value} keeps serving" if old else ""
            stalled = Condition(
                STALLED,
                "True",
                "Unschedulable",
                # The time in the message is when it started, never "for N s": a message that
                # changes at every reconcile made each status write trigger the next, a write
                # loop per stalled service (bench: 22,000 status patches in minutes at N=1000).
                f"{resolved.runtime.value} pods cannot be scheduled (pending since "
                f"{(now - timedelta(seconds=waited)).strftime('%Y-%m-%dT%H:%M:%SZ')}): "
                f"{message}{serving_note}. Fix resources.gpu / scheduling or add capacity.",
            )
        else:
            requeue = max(0.5, unschedulable_grace - waited)

    # Scaled to zero on purpose (kubectl scale --replicas=0): nothing to wait for, so the
    # operator is done (Reconciling False) rather than waiting for endpoints forever.
    scaled_to_zero = (
        resolved.replicas == 0
        and old is None
        and new_dep is not None
        and (
            (new_dep.get("status") or {}).get("observedGeneration", 0)
            >= new_dep["metadata"].get("generation", 0)
        )
        and not (new_dep.get("status") or {}).get("replicas")
    )
    endpoints_desired = ready_endpoints(observed, desired, name)
    # Both views must agree, so Ready never shows next to readyReplicas 0 from a lagging status.
    ready = serving == desired and endpoints_desired > 0 and new_available and phase in (None, "Draining")
    if ready:
        conditions.append(
            Condition(
                READY,
                "True",
                "EndpointsReady",
                f"{endpoints_desired} ready {desired.value} endpoint(s) behind Service {name}",
            )
        )
    elif stalled:
        conditions.append(Condition(READY, "False", stalled.reason, stalled.message))
    elif scaled_to_zero:
        conditions.append(
            Condition(
                READY,
                "False",
                "ScaledToZero",
                f"spec.replicas is 0: no {desired.value} pods serve Service {name} until it is scaled up",
            )
        )
    elif phase:
        conditions.append(
            Condition(
                READY,
                "False",
                "CutoverInProgress",
                f"cutover {old.value if old else '?'} -> {desired.value}: {phase}",
            )
        )
    else:
        steps = starting_steps(observed, name, desired)
        conditions.append(
            Condition(
                READY,
                "False",
                "WaitingForEndpoints",
                f"waiting for ready {desired.value} pods behind Service {name}"
                + (f": {steps}" if steps else ""),
            )
        )

    progressing = not ready and stalled is None and not scaled_to_zero
    conditions.append(
        Condition(
            RECONCILING,
            "True" if progressing else "False",
            "Progressing" if progressing else ("Stalled" if stalled else "Reconciled"),
            conditions[0].message if progressing else "",
        )
    )
    conditions.append(stalled or Condition(STALLED, "False", "NotStalled", ""))
    conditions.extend(spec_conditions(resolved))

    dep = new_dep or {}
    status: dict[str, Any] = {
        "runtime": desired.value,
        "stage": resolved.stage.value,
        "servedModelName": resolved.served_model_name,
        "endpoint": f"http://{name}.{resolved.namespace}.svc:8000/v1",
        "selector": selector_string(name, desired),
        "replicas": (dep.get("status") or {}).get("replicas", 0),
        "readyReplicas": (dep.get("status") or {}).get("readyReplicas", 0),
        "cutover": {
            "phase": phase,
            "from": old.value,
            "to": desired.value,
            "message": CUTOVER_MESSAGES[phase].format(old=old.value, new=desired.value),
        }
        if phase and old
        else None,
    }
    lora = resolved.vllm.lora if resolved.vllm else None
    if lora:
        status["loraAdapters"] = [adapter.name for adapter in lora.adapters]
    return Plan(apply=objects, keep=keep, conditions=conditions, status=status, requeue_after=requeue)


def spec_conditions(resolved: Resolved) -> list[Condition]:
    """Conditions that follow from the spec alone: runtime decision, memory fit, best practices."""
    fit = resolved.memory_fit
    fit_status = "Unknown" if fit.fits is None else ("True" if fit.fits else "False")
    advice = "; ".join(f"{w.reason}: {w.message}" for w in resolved.warnings)
    return [
        Condition(RUNTIME_SELECTED, "True", resolved.runtime.value.capitalize(), resolved.runtime_reason),
        Condition(MODEL_FITS, fit_status, fit.reason, fit.message),
        Condition(
            BEST_PRACTICES,
            "False" if resolved.warnings else "True",
            resolved.warnings[0].reason if resolved.warnings else "NoCommonMistakes",
            advice,
        ),
    ]


def merge_conditions(
    current: list[dict[str, Any]], new: list[Condition], generation: int, now: datetime
) -> list[dict[str, Any]]:
    """metav1.Condition list; lastTransitionTime moves only when a condition's status flips."""
    previous = {c.get("type"): c for c in current or []}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = []
    for cond in new:
        old = previous.get(cond.type)
        flipped = old is None or old.get("status") != cond.status
        merged.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": stamp if flipped else old.get("lastTransitionTime", stamp),  # type: ignore[union-attr]
            }
        )
    return merged


def transitions(current: list[dict[str, Any]], merged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions whose status or reason changed: each becomes an Event on the LLMService."""
    previous = {c.get("type"): c for c in current or []}
    return [
        c
        for c in merged
        if (p := previous.get(c["type"])) is None
        or p.get("status") != c["status"]
        or p.get("reason") != c["reason"]
    ]


# A condition's first appearance in its usual state is not news; these are not Events.
_UNREMARKABLE_AT_FIRST = {
    (READY, "False"),
    (STALLED, "False"),
    (MODEL_FITS, "True"),
    (BEST_PRACTICES, "True"),
}


def event_worthy(current: list[dict[str, Any]], merged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transitions that become Events: every change of Ready, Stalled and the spec
    conditions, but not Reconciling (it changes exactly when Ready or Stalled does, whose Event
    says why) and not a condition's first appearance in its usual state. A new healthy service
    gets two Events (RuntimeSelected, then Ready) instead of eight: Events were the largest
    class of the operator's writes converging 1,000 services (bench/)."""
    previous = {c.get("type") for c in current or []}
    return [
        c
        for c in transitions(current, merged)
        if c["type"] != RECONCILING
        and not (c["type"] not in previous and (c["type"], c["status"]) in _UNREMARKABLE_AT_FIRST)
    ]
