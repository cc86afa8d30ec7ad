"""The PodDisruptionBudget (production): keep serving through node drains."""

from __future__ import annotations

from typing import Any

from llmstage.render.labels import COMPONENT_LABEL, SERVER, metadata, selector_labels, workload_name
from llmstage.resolve.resolved import Resolved


def render_disruption_budget(resolved: Resolved) -> dict[str, Any] | None:
    """maxUnavailable 1: a drain takes one replica at a time and never blocks forever, even at
    one replica. AlwaysAllow lets drains evict pods that never became ready (a model that does
    not load), which would otherwise hold a node hostage. A multi-node replica's budget counts
    every pod of every group: evicting any of them restarts its group, so one pod at a time."""
    if not resolved.pod_disruption_budget:
        return None
    selector = selector_labels(resolved.name, resolved.runtime)
    if resolved.multi_node:
        selector = {k: v for k, v in selector.items() if k != COMPONENT_LABEL}  # leaders and workers
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(resolved, workload_name(resolved.name, resolved.runtime), SERVER),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
