"""The HorizontalPodAutoscaler (autoscaling/v2) on the runtime Deployment."""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.labels import SERVER, metadata, workload_name
from llmstage.render.leaderworkerset import workload_ref
from llmstage.resolve.resolved import Autoscaler, Autoscaling, Resolved, ScaleMetric


def _one_pod_at_a_time(window: int, period: int) -> dict[str, Any]:
    """A scaling direction that moves one pod per `period` seconds after `window` seconds."""
    return {
        "stabilizationWindowSeconds": window,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": period}],
    }


# Servers take minutes to become ready, and until then the queue keeps growing. Adding pods one
# at a time, no faster than a new one can start, avoids buying several GPUs for one burst; a long
# scale-down window avoids unloading a model that the next burst needs again.
BEHAVIOR: dict[Runtime, dict[str, Any]] = {
    Runtime.VLLM: {"scaleUp": _one_pod_at_a_time(60, 180), "scaleDown": _one_pod_at_a_time(900, 300)},
    Runtime.OLLAMA: {"scaleUp": _one_pod_at_a_time(30, 60), "scaleDown": _one_pod_at_a_time(600, 300)},
}


def metric(autoscaling: Autoscaling) -> dict[str, Any]:
    """Queue depth per pod (vLLM, through a metrics adapter) or average CPU utilisation.

    resolve() picks CPU for Ollama: it exposes no metrics, so its queue cannot be observed.
    """
    if autoscaling.metric is ScaleMetric.QUEUE:
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": autoscaling.queue_metric_name},
                "target": {"type": "AverageValue", "averageValue": str(autoscaling.target)},
            },
        }
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": autoscaling.target},
        },
    }


def render_autoscaler(resolved: Resolved) -> dict[str, Any] | None:
    autoscaling = resolved.autoscaling
    if autoscaling is None or autoscaling.autoscaler is Autoscaler.KEDA:  # KEDA: render/keda.py
        return None
    name = workload_name(resolved.name, resolved.runtime)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(resolved, name, SERVER),
        "spec": {
            "scaleTargetRef": workload_ref(resolved),
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [metric(autoscaling)],
            "behavior": BEHAVIOR[resolved.runtime],
        },
    }
