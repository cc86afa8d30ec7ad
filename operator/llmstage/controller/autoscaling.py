"""The reconciler's side of spec.autoscaling.autoscaler: what to hold back, and when to stall.

    autoscaler_step(resolved, observed, facts, objects) -> (objects to apply, Stalled condition | None)

- KEDA not installed (no scaledobjects.keda.sh CRD at operator start): the ScaledObject cannot be
  applied. The rest is applied (the Deployment then runs one pod, unscaled) and the service is
  Stalled with a message saying what to install, rather than silently not autoscaling.
- Switching hpa -> keda: KEDA's admission webhook refuses a ScaledObject for a Deployment that
  another HPA already targets ("the workload ... is already managed by the hpa ..."), so the
  ScaledObject waits until our HPA is pruned (its deletion event brings the next reconcile).
- Switching keda -> hpa: our HPA waits until the ScaledObject (and with it KEDA's own HPA) is gone,
  so two HPAs never drive the same Deployment.
"""

from __future__ import annotations

from typing import Any, Protocol

from llmstage.render.labels import workload_name
from llmstage.resolve.resolved import Autoscaler, ClusterFacts, Resolved

KEDA_MISSING = "KEDANotInstalled"
HPA, SCALED_OBJECT = "HorizontalPodAutoscaler", "ScaledObject"


class _Observed(Protocol):
    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...


def keda_missing_message(resolved: Resolved) -> str:
    return (
        f"spec.autoscaling.autoscaler is keda, but the cluster has no KEDA (CustomResourceDefinition "
        f"scaledobjects.keda.sh not found when the operator started), so no ScaledObject scales "
        f"{workload_name(resolved.name, resolved.runtime)}: install KEDA (e.g. helm install keda "
        f"kedacore/keda --namespace keda --create-namespace) and restart the operator, or set "
        f"spec.autoscaling.autoscaler hpa"
    )


def autoscaler_step(
    resolved: Resolved, observed: _Observed, facts: ClusterFacts, objects: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """The objects to apply now, and (reason, message) of a Stalled condition when KEDA is missing."""
    autoscaling = resolved.autoscaling
    if autoscaling is None:
        return objects, None
    workload = workload_name(resolved.name, resolved.runtime)
    if autoscaling.autoscaler is Autoscaler.KEDA:
        held = not facts.keda_crd or observed.get(HPA, workload) is not None
        kept = [o for o in objects if not (held and o["kind"] == SCALED_OBJECT)]
        return kept, None if facts.keda_crd else (KEDA_MISSING, keda_missing_message(resolved))
    if observed.get(SCALED_OBJECT, workload) is not None:
        return [o for o in objects if o["kind"] != HPA], None
    return objects, None


def scaled_to_zero_message(resolved: Resolved) -> str:
    """Ready's message with no pods on purpose: spec.replicas 0, or KEDA with minReplicas 0."""
    if resolved.autoscaling is None:
        return (
            f"spec.replicas is 0: no {resolved.runtime.value} pods serve Service {resolved.name} "
            f"until it is scaled up"
        )
    return (
        f"KEDA scaled {workload_name(resolved.name, resolved.runtime)} to zero (spec.autoscaling."
        f"minReplicas 0): requests to Service {resolved.name} fail until a pod is ready again; "
        f"KEDA starts one when spec.autoscaling.keda.wakeQuery is above 0, and the first pod then "
        f"needs the model load (and a download if the cache is empty) before it answers"
    )
