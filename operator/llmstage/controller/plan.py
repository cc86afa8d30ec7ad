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

A runtime's pods run in a Deployment, or for a replica over several nodes in a LeaderWorkerSet
(whose group leaders are the Service's endpoints); "the Deployment" above means either. When a
vLLM service changes between the two (nodes 1 <-> several), both select the same Service, so
the old workload is only kept until the new one is Available: never zero ready replicas or groups.

A GPU service that may run a single pod rolls out with a surge (render/pod.py surge_first): the
new pod starts beside the serving one. When no node has room for it for `unschedulable_grace`,
the plan renders the rollout as a replacement instead (maxSurge 0, maxUnavailable 1) and says in
Reconciling for how long the service will be unavailable (render/rollout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmstage.api.constants import CutoverPhase, Runtime
from llmstage.controller.addons import addons_step
from llmstage.controller.autoscaling import autoscaler_step, scaled_to_zero_message
from llmstage.controller.cache import ChildKey
from llmstage.controller.conditions import (
    BEST_PRACTICES,
    MODEL_FITS,
    READY,
    RECONCILING,
    RUNTIME_SELECTED,
    STALLED,
    Condition,
)
from llmstage.controller.config import DEFAULT_UNSCHEDULABLE_GRACE
from llmstage.controller.observed import (
    VOLUME_BINDING,
    Observed,
    Pending,
    container_config_error,
    deployment_available,
    ready_endpoints,
    replica_failure,
    serving_runtime,
    starting_steps,
    surge_without_room,
    unschedulable,
)
from llmstage.render import runtime_objects
from llmstage.render.desired import desired_objects
from llmstage.render.labels import cache_claim_name, selector_string, workload_name
from llmstage.render.leaderworkerset import KIND as LWS_KIND
from llmstage.render.pod import surge_first
from llmstage.render.rollout import outage_text, rollout_findings
from llmstage.render.storage import CACHE_VOLUME
from llmstage.resolve.resolved import ClusterFacts, Resolved

CUTOVER_MESSAGES = {
    CutoverPhase.STARTING: "{new} pods are starting beside {old}; the Service stays on {old}",
    CutoverPhase.SWITCHING: (
        "{new} is available; the Service moved to {new}, waiting for its endpoints to follow"
    ),
    CutoverPhase.DRAINING: "the Service's endpoints are all {new} pods; removing the {old} Deployment",
}


@dataclass
class Plan:
    apply: list[dict[str, Any]]
    keep: set[ChildKey]  # owned, not desired now, but must not be pruned yet (old runtime)
    conditions: list[Condition]
    status: dict[str, Any]  # everything in status but conditions and observedGeneration
    requeue_after: float | None = None


@dataclass(frozen=True)
class Cutover:
    """Where a runtime cutover stands; old is None (and phase None) when there is none."""

    old: Runtime | None
    phase: CutoverPhase | None
    keep: set[ChildKey]  # the old runtime's objects that must outlive this reconcile
    switch_now: bool  # the Service selects the desired runtime's pods


@dataclass(frozen=True)
class Surge:
    """A rollout's surge pod that no node has room for: still waiting (within the grace), or
    blocked (the rollout replaces the serving pod instead)."""

    waiting: Pending | None = None
    blocked: Pending | None = None
    deadline: datetime | None = None  # when waiting turns into blocked
    requeue_after: float | None = None


@dataclass(frozen=True)
class Stall:
    """A Stalled=True condition, or the time to look again before the grace runs out."""

    condition: Condition | None = None
    requeue_after: float | None = None


def plan(
    resolved: Resolved,
    observed: Observed,
    now: datetime,
    *,
    facts: ClusterFacts | None = None,
    unschedulable_grace: float = DEFAULT_UNSCHEDULABLE_GRACE,
    render: Callable[..., list[dict[str, Any]]] = desired_objects,
) -> Plan:
    """`render` is desired_objects or a memo of it with the same signature (RenderCache)."""
    facts = facts or ClusterFacts()
    name, desired = resolved.name, resolved.runtime
    serving = serving_runtime(observed, name)
    new_dep = observed.get(workload_kind(resolved), workload_name(name, desired))
    new_available = deployment_available(new_dep)

    cutover = cutover_state(resolved, observed, serving, new_available)
    surge = surge_state(resolved, observed, now, unschedulable_grace)
    objects = render(
        resolved,
        facts,
        serving_runtime=desired if cutover.switch_now else cutover.old,
        surge_blocked=surge.blocked is not None,
    )
    objects, autoscaler_stalled = autoscaler_step(resolved, observed, facts, objects)
    objects, addon_stalled = addons_step(resolved, facts, objects)
    # A surging service first gets a grace to find room, then one to schedule the replacement.
    stall_grace = unschedulable_grace * (2 if surge_first(resolved) else 1)
    stall = stall_state(
        resolved,
        observed,
        new_dep,
        new_available,
        cutover.old,
        now,
        stall_grace,
        addon_stalled or autoscaler_stalled,
    )
    conditions = runtime_conditions(
        resolved, observed, serving, new_dep, new_available, cutover, stall, surge
    )
    conditions.extend(spec_conditions(resolved))
    waits = [t for t in (stall.requeue_after, surge.requeue_after) if t is not None]
    return Plan(
        apply=objects,
        keep=cutover.keep,
        conditions=conditions,
        status=status_fields(resolved, new_dep, cutover),
        requeue_after=min(waits) if waits else None,
    )


def surge_state(resolved: Resolved, observed: Observed, now: datetime, grace: float) -> Surge:
    """Whether a surge_first service's extra pod has found no room, and for how long."""
    if not surge_first(resolved):
        return Surge()
    pending = surge_without_room(observed, resolved.name, resolved.runtime, now)
    if pending is None:
        return Surge()
    deadline = now - timedelta(seconds=pending.waited) + timedelta(seconds=grace)
    if pending.waited < grace:
        return Surge(waiting=pending, deadline=deadline, requeue_after=max(0.5, grace - pending.waited))
    return Surge(blocked=pending, deadline=deadline)


def cutover_state(
    resolved: Resolved, observed: Observed, serving: Runtime | None, new_available: bool
) -> Cutover:
    """The cutover phase, derived from the cluster (so it survives operator restarts)."""
    name, desired = resolved.name, resolved.runtime
    # The other runtime's Deployment still existing means a cutover is under way (from either
    # side): it is only deleted once the Service's endpoints are all pods of the new runtime.
    old = next((r for r in Runtime if r != desired and _workloads(observed, name, r)), None)
    # Once switched, stay switched: flapping the selector back would drop live connections twice.
    switch_now = old is None or new_available or serving == desired
    if old is None:
        # Same runtime, other kind of workload (a Deployment becoming a LeaderWorkerSet or back):
        # its pods serve behind the same selector until the new workload is Available.
        layout_keep = {
            (kind, workload_name(name, desired))
            for kind in _workloads(observed, name, desired)
            if kind != workload_kind(resolved) and not new_available
        }
        return Cutover(None, None, layout_keep, switch_now)
    keep = _runtime_children(name, old) - _runtime_children(name, desired)
    ready_new = ready_endpoints(observed, desired, name)
    if not switch_now:
        phase = CutoverPhase.STARTING
    elif ready_new == 0 or ready_endpoints(observed, None, name) != ready_new:
        phase = CutoverPhase.SWITCHING  # Service switched; wait for the endpoints to follow before deleting
    else:
        phase, keep = CutoverPhase.DRAINING, set()
    return Cutover(old, phase, keep, switch_now)


def workload_kind(resolved: Resolved) -> str:
    """The kind of object that runs resolved's pods."""
    return LWS_KIND if resolved.multi_node else "Deployment"


def _workloads(observed: Observed, name: str, runtime: Runtime) -> list[str]:
    """The kinds of the runtime's workloads that exist (a Deployment, a LeaderWorkerSet, or both)."""
    return [k for k in ("Deployment", LWS_KIND) if observed.get(k, workload_name(name, runtime))]


def _runtime_children(name: str, runtime: Runtime) -> set[ChildKey]:
    """Objects of one runtime that must outlive a cutover until the switch is done."""
    return {(ref.kind, ref.name) for ref in runtime_objects(name, runtime)}


def stall_state(
    resolved: Resolved,
    observed: Observed,
    new_dep: dict[str, Any] | None,
    new_available: bool,
    old: Runtime | None,
    now: datetime,
    unschedulable_grace: float,
    missing_addon: tuple[str, str] | None = None,
) -> Stall:
    """Why the desired runtime's pods cannot start, if a human has to act; the first cause wins."""
    name, desired = resolved.name, resolved.runtime
    config_error = container_config_error(observed, name, desired)
    if config_error:
        return Stall(
            Condition(
                STALLED,
                "True",
                "ContainerConfigError",
                f"{config_error}; create the Secret (or fix the reference in spec) and the "
                f"pods start on their own",
            )
        )
    if (failure := replica_failure(new_dep)) and not new_available:
        # Without this the service waited for endpoints forever (docs/benchmarks.md, the fuzz).
        return Stall(
            Condition(
                STALLED,
                "True",
                "PodCreationFailed",
                f"{resolved.runtime.value} pods cannot be created: {failure}. Fix the reference in "
                f"spec.scheduling (priorityClassName, runtimeClassName) or the namespace's quota or "
                f"pod security level; the pods are created as soon as it allows them",
            )
        )
    if missing_addon:  # KEDA, LeaderWorkerSet or the inference extension (controller/addons.py)
        return Stall(Condition(STALLED, "True", *missing_addon))
    pending = unschedulable(observed, name, desired, now)
    if not pending or new_available:
        return Stall()
    message, waited, pod = pending
    if waited < unschedulable_grace:
        return Stall(requeue_after=max(0.5, unschedulable_grace - waited))
    serving_note = f"; {old.value} keeps serving" if old else ""
    fix = claim_note(resolved, observed, pod, message) or "Fix resources.gpu / scheduling or add capacity."
    return Stall(
        Condition(
            STALLED,
            "True",
            "Unschedulable",
            # The time in the message is when it started, never "for N s": a message that changes
            # at every reconcile makes each status write trigger the next (docs/benchmarks.md).
            f"{resolved.runtime.value} pods cannot be scheduled (pending since "
            f"{(now - timedelta(seconds=waited)).strftime('%Y-%m-%dT%H:%M:%SZ')}): "
            f"{message}{serving_note}. {fix}",
        )
    )


def claim_note(resolved: Resolved, observed: Observed, pod: str, message: str) -> str | None:
    """When the scheduler waits for the model cache claim: which claim, on which StorageClass,
    and where the provisioner says why (default classes of EKS, GKE and AKS are ReadWriteOnce)."""
    if not any(words in message for words in _ABOUT_CLAIMS):
        return None
    cache = resolved.cache
    if cache.claim_name is not None:
        return (
            f"The model cache claim {cache.claim_name} (spec.cache.claimName) must exist in namespace "
            f"{resolved.namespace}, be bound or bindable, and allow {cache.access_mode} for the pods; "
            f"`kubectl describe pvc {cache.claim_name}` shows why it is not."
        )
    if cache.per_pod:
        claim_name = f"{pod}-{CACHE_VOLUME}"
        claim = observed.pod_claims.get(claim_name)
        what = f"The model cache claim {claim_name} of pod {pod} (one claim per pod"
    else:
        claim_name = cache_claim_name(resolved.name, resolved.runtime)
        claim = observed.get("PersistentVolumeClaim", claim_name)
        what = f"The model cache claim {claim_name} ("
    # Not seen yet (the watch lags the scheduler): what it was asked for.
    asked = {"storageClassName": cache.storage_class_name, "accessModes": [cache.access_mode]}
    spec = (claim or {}).get("spec") or asked
    # The API server fills in the default class on the claim: the name it shows is the real one.
    storage_class = spec.get("storageClassName") or "the cluster's default"
    modes = ", ".join(spec.get("accessModes") or []) or "?"
    phase = ((claim or {}).get("status") or {}).get("phase", "Pending")
    what = f"{what}{'; ' if cache.per_pod else ''}StorageClass {storage_class}, {modes}) is {phase}"
    if "ReadWriteMany" in modes:
        advice = (
            f"(the default classes of EKS, GKE and AKS support ReadWriteOnce only: name a class with "
            f"{modes} in spec.cache.storageClassName, or remove spec.cache.accessMode for a claim per pod)"
        )
    else:
        advice = "(name another class in spec.cache.storageClassName)"
    return (
        f"{what}: the class must exist and provision {modes} {advice}; `kubectl describe pvc "
        f"{claim_name}` shows the provisioner's error."
    )


# What the scheduler says when a pod waits for a claim: an unbound claim, a missing class, a
# provisioner that refused it or did not answer in time (its binding step, "VolumeBinding").
_ABOUT_CLAIMS = ("PersistentVolumeClaim", "persistent volume", "persistentvolumeclaim", VOLUME_BINDING)


def scaled_to_zero(resolved: Resolved, new_dep: dict[str, Any] | None, old: Runtime | None) -> bool:
    """Scaled to zero on purpose (kubectl scale --replicas=0, or KEDA with minReplicas 0): nothing
    to wait for, so the operator is done (Reconciling False) rather than waiting for endpoints forever."""
    to_zero = resolved.autoscaling is not None and resolved.autoscaling.min_replicas == 0
    return (
        (resolved.replicas == 0 or to_zero)
        and old is None
        and new_dep is not None
        and (
            (new_dep.get("status") or {}).get("observedGeneration", 0)
            >= new_dep["metadata"].get("generation", 0)
        )
        and not (new_dep.get("status") or {}).get("replicas")
    )


def runtime_conditions(
    resolved: Resolved,
    observed: Observed,
    serving: Runtime | None,
    new_dep: dict[str, Any] | None,
    new_available: bool,
    cutover: Cutover,
    stall: Stall,
    surge: Surge | None = None,
) -> list[Condition]:
    """Ready, Reconciling and Stalled, in that order."""
    name, desired = resolved.name, resolved.runtime
    stalled = stall.condition
    zero = scaled_to_zero(resolved, new_dep, cutover.old)
    endpoints_desired = ready_endpoints(observed, desired, name)
    # Both views must agree, so Ready never shows next to readyReplicas 0 from a lagging status.
    ready = (
        serving == desired
        and endpoints_desired > 0
        and new_available
        and cutover.phase in (None, CutoverPhase.DRAINING)
    )
    if ready:
        ready_condition = Condition(
            READY,
            "True",
            "EndpointsReady",
            f"{endpoints_desired} ready {desired.value} endpoint(s) behind Service {name}",
        )
    elif stalled:
        ready_condition = Condition(READY, "False", stalled.reason, stalled.message)
    elif zero:
        ready_condition = Condition(
            READY,
            "False",
            "ScaledToZero",
            scaled_to_zero_message(resolved),
        )
    elif cutover.phase:
        old = cutover.old.value if cutover.old else "?"
        ready_condition = Condition(
            READY, "False", "CutoverInProgress", f"cutover {old} -> {desired.value}: {cutover.phase.value}"
        )
    else:
        steps = starting_steps(observed, name, desired)
        ready_condition = Condition(
            READY,
            "False",
            "WaitingForEndpoints",
            f"waiting for ready {desired.value} pods behind Service {name}" + (f": {steps}" if steps else ""),
        )

    progressing = not ready and stalled is None and not zero
    reconciling = Condition(
        RECONCILING,
        "True" if progressing else "False",
        "Progressing" if progressing else ("Stalled" if stalled else "Reconciled"),
        ready_condition.message if progressing else "",
    )
    if surge is not None and stalled is None and (surge.waiting or surge.blocked):
        reconciling = surge_condition(resolved, surge)
    return [ready_condition, reconciling, stalled or Condition(STALLED, "False", "NotStalled", "")]


def surge_condition(resolved: Resolved, surge: Surge) -> Condition:
    """Reconciling while a one-pod GPU service's rollout waits for room, or replaces its pod.
    Times are stamps, never "for N s": a message that changes at every reconcile makes each status
    write trigger the next (docs/benchmarks.md)."""
    runtime = resolved.runtime.value
    if surge.blocked is not None:
        return Condition(
            RECONCILING,
            "True",
            "ReplacingWithoutSurge",
            f"no node has room for a second {runtime} pod ({surge.blocked.message}): the rollout replaces "
            f"the serving pod, so the service is {outage_text(resolved)}",
        )
    assert surge.waiting is not None and surge.deadline is not None
    return Condition(
        RECONCILING,
        "True",
        "WaitingForRoom",
        f"a new {runtime} pod waits for room beside the serving one ({surge.waiting.message}); if none "
        f"appears by {surge.deadline.strftime('%Y-%m-%dT%H:%M:%SZ')}, the rollout replaces the serving "
        f"pod and the service is {outage_text(resolved)}",
    )


def status_fields(resolved: Resolved, new_dep: dict[str, Any] | None, cutover: Cutover) -> dict[str, Any]:
    """Everything in status but conditions and observedGeneration."""
    name, desired = resolved.name, resolved.runtime
    dep_status = (new_dep or {}).get("status") or {}
    old, phase = cutover.old, cutover.phase
    status: dict[str, Any] = {
        "runtime": desired.value,
        "stage": resolved.stage.value,
        "servedModelName": resolved.served_model_name,
        "endpoint": f"http://{name}.{resolved.namespace}.svc:8000/v1",
        "selector": selector_string(name, desired),
        "replicas": dep_status.get("replicas", 0),
        "readyReplicas": dep_status.get("readyReplicas", 0),
        "cutover": {
            "phase": phase.value,
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
    return status


def spec_conditions(resolved: Resolved) -> list[Condition]:
    """Conditions that follow from the spec alone: runtime decision, memory fit, best practices."""
    fit = resolved.memory_fit
    fit_status = "Unknown" if fit.fits is None else ("True" if fit.fits else "False")
    warnings = resolved.warnings + rollout_findings(resolved)
    advice = "; ".join(f"{w.reason}: {w.message}" for w in warnings)
    return [
        Condition(RUNTIME_SELECTED, "True", resolved.runtime.value.capitalize(), resolved.runtime_reason),
        Condition(MODEL_FITS, fit_status, fit.reason, fit.message),
        Condition(
            BEST_PRACTICES,
            "False" if warnings else "True",
            warnings[0].reason if warnings else "NoCommonMistakes",
            advice,
        ),
    ]
