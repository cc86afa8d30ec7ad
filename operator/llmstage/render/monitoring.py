"""The PodMonitor (Prometheus Operator) for vLLM's /metrics."""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.gateway import METRICS_PORT_NAME
from llmstage.render.labels import SERVER, labels_for, metadata, selector_labels, workload_name
from llmstage.resolve.resolved import ClusterFacts, Resolved


def render_pod_monitor(resolved: Resolved, facts: ClusterFacts) -> dict[str, Any] | None:
    """Only for vLLM (Ollama has no /metrics) and only when the cluster has the CRD.

    /metrics is not behind vLLM's API key, so no credentials are needed. Every vLLM series carries
    `model_name` (the served model name), which identifies the LLMService in dashboards.
    """
    if not facts.pod_monitor_crd or resolved.runtime is not Runtime.VLLM:
        return None
    meta = metadata(resolved, workload_name(resolved.name, resolved.runtime), SERVER)
    # The install's labels (a Prometheus' podMonitorSelector) under llmstage's own.
    meta["labels"] = {**resolved.pod_monitor_labels, **labels_for(resolved, SERVER, resolved.runtime)}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(resolved.name, resolved.runtime)},
            "podMetricsEndpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s"}],
        },
    }
