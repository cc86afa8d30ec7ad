"""The KEDA ScaledObject (keda.sh/v1alpha1) on the runtime Deployment: spec.autoscaling.autoscaler keda.

Checked against KEDA v2.20.2 (apis/keda/v1alpha1/scaledobject_types.go, pkg/scalers/
prometheus_scaler.go, cpu_memory_scaler.go, apis/keda/v1alpha1/scaledobject_webhook.go):

- KEDA creates and owns an HPA named keda-hpa-<ScaledObject name> (ownerReference to the
  ScaledObject, our labels copied onto it); the operator renders no HPA of its own then.
- minReplicaCount defaults to 0 in KEDA, so it is always written out.
- KEDA's admission webhook refuses minReplicaCount 0 when every trigger is cpu or memory: scale
  to zero needs a trigger that can see demand while no pod runs (spec.autoscaling.keda.wakeQuery).
- The Prometheus trigger's default metricType is AverageValue: KEDA divides the query's value by
  the replica count, so `threshold` is a per-pod target, like the HPA's Pods metric. A trigger is
  active while its value is above activationThreshold (default 0); KEDA scales from 0 to
  minReplicaCount 1.. as soon as one trigger is active and back to 0 after cooldownPeriod
  seconds (default 300) with none active. An empty query result counts as 0
  (ignoreNullValues defaults to true), which is what a queue query returns with no pods.
"""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import DEFAULT_QUEUE_METRIC
from llmstage.render.autoscaling import BEHAVIOR
from llmstage.render.labels import SERVER, metadata, workload_name
from llmstage.render.leaderworkerset import workload_ref
from llmstage.resolve.resolved import Autoscaler, Autoscaling, Resolved, ScaleMetric

# The wake trigger must only decide between 0 and 1 pod: with a per-pod threshold this high, the
# HPA's ceil(value / threshold) stays at 1 for any realistic request rate, and the queue or CPU
# trigger alone decides how many pods beyond the first.
WAKE_THRESHOLD = "1000000"


def queue_query(resolved: Resolved) -> str:
    """Waiting requests summed over this service's vLLM pods. The Prometheus Operator's PodMonitor
    (rendered when the cluster has the CRD) adds the `namespace` and `pod` labels."""
    pods = workload_name(resolved.name, resolved.runtime)
    return f'sum({DEFAULT_QUEUE_METRIC}{{namespace="{resolved.namespace}",pod=~"{pods}-.+"}})'


def _triggers(resolved: Resolved, autoscaling: Autoscaling) -> list[dict[str, Any]]:
    keda = autoscaling.keda
    triggers: list[dict[str, Any]] = []
    if autoscaling.metric is ScaleMetric.QUEUE:
        triggers.append(
            {
                "type": "prometheus",
                "name": "queue",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": keda.server_address or "",
                    "query": keda.query or queue_query(resolved),
                    "threshold": str(autoscaling.target),
                },
            }
        )
    else:
        triggers.append(
            {
                "type": "cpu",
                "name": "cpu",
                "metricType": "Utilization",
                "metadata": {"value": str(autoscaling.target)},
            }
        )
    if keda.wake_query:
        triggers.append(
            {
                "type": "prometheus",
                "name": "wake",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": keda.server_address or "",
                    "query": keda.wake_query,
                    "threshold": WAKE_THRESHOLD,
                    "activationThreshold": "0",
                },
            }
        )
    return triggers


def render_scaled_object(resolved: Resolved) -> dict[str, Any] | None:
    autoscaling = resolved.autoscaling
    if autoscaling is None or autoscaling.autoscaler is not Autoscaler.KEDA:
        return None
    name = workload_name(resolved.name, resolved.runtime)
    spec: dict[str, Any] = {
        "scaleTargetRef": workload_ref(resolved),
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
    }
    if autoscaling.min_replicas == 0 and autoscaling.keda.cooldown_period is not None:
        spec["cooldownPeriod"] = autoscaling.keda.cooldown_period
    spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": BEHAVIOR[resolved.runtime]}}
    spec["triggers"] = _triggers(resolved, autoscaling)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(resolved, name, SERVER),
        "spec": spec,
    }
