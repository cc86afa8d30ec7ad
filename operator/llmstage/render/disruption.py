"""The PodDisruptionBudget (production): keep serving through node drains."""

from __future__ import annotations

from typing import Any

from llmstage.render.labels import SERVER, metadata, selector_labels, workload_name
from llmstage.resolve.resolved import Resolved


def render_disruption_budget(resolved: Resolved) -> dict[str, Any] | None:
    """maxUnavailable 1: a drain takes one replica at a time and never blocks forever, even at
    one replica. AlwaysAllow lets drains evict pods that never became ready (a model that does
    not load), which would otherwise hold a node hostage."""
    if not resolved.pod_disruption_budget:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(resolved, workload_name(resolved.name, resolved.runtime), SERVER),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(resolved.name, resolved.runtime)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
