"""The objects the operator applies for one LLMService: the rendered objects plus its ownerReference.

    desired_objects(resolved, facts, serving_runtime=None) -> list[dict]

One function for the operator's plan and `llmstage render`, so what a pull request shows is what
the cluster gets. Pure: no I/O, fresh dicts on every call.
"""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render import render
from llmstage.render.labels import owner_reference
from llmstage.resolve.resolved import ClusterFacts, Resolved


def desired_objects(
    resolved: Resolved,
    facts: ClusterFacts = ClusterFacts(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    serving_runtime: Runtime | None = None,
    surge_blocked: bool = False,
) -> list[dict[str, Any]]:
    """render(...) with the ownerReference the garbage collector and the operator's watches follow."""
    owner = owner_reference(resolved)
    objects = render(resolved, facts, serving_runtime=serving_runtime, surge_blocked=surge_blocked)
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [dict(owner)]
    return objects
