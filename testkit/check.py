"""Invariants of a converged namespace, shared by the benchmark and the reliability tests:
every LLMService has exactly the children it should, and every child has exactly one live owner.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from llmstage.api.models import LLMService
from llmstage.controller.config import DEFAULT_MONITORING_NAMESPACE
from llmstage.render import render
from llmstage.render.labels import INSTANCE_LABEL
from llmstage.resolve import resolve
from llmstage.resolve.resolved import ClusterFacts

ChildKey = tuple[str, str]  # (kind, name)


# What `llmstage run` assumes without flags (no PodMonitor or KEDA on the test bed).
OPERATOR_DEFAULTS = ClusterFacts(monitoring_namespace=DEFAULT_MONITORING_NAMESPACE)


def rendered(body: dict[str, Any], namespace: str, facts: ClusterFacts | None = None) -> list[dict[str, Any]]:
    """The children the operator renders for `body` (no ownerReferences: those need a live uid)."""
    obj = {**body, "metadata": {**body["metadata"], "namespace": namespace, "uid": "bench"}}
    return render(resolve(LLMService.from_object(obj)), facts or OPERATOR_DEFAULTS)


@dataclass
class Problems:
    missing: dict[str, set[ChildKey]] = field(default_factory=dict)  # service -> children not there
    extra: dict[str, set[ChildKey]] = field(default_factory=dict)  # service -> children it should not have
    orphans: list[str] = field(default_factory=list)  # children without exactly one live controller
    not_ready: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.orphans or self.not_ready)

    def summary(self, limit: int = 5) -> str:
        parts = []
        for label, items in (
            ("missing", self.missing),
            ("extra", self.extra),
        ):
            if items:
                sample = dict(list(items.items())[:limit])
                parts.append(f"{len(items)} service(s) with {label} children, e.g. {sample}")
        if self.orphans:
            parts.append(
                f"{len(self.orphans)} child(ren) without one live owner, e.g. {self.orphans[:limit]}"
            )
        if self.not_ready:
            parts.append(f"{len(self.not_ready)} service(s) not Ready, e.g. {self.not_ready[:limit]}")
        return "; ".join(parts) or "none"


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None
    )


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready=True for the current generation."""
    status = obj.get("status") or {}
    ready = condition(obj, "Ready")
    return (
        ready is not None
        and ready.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
    )


def settled(obj: dict[str, Any]) -> bool:
    """The operator is done with the current generation and says why: Ready, Stalled with a
    reason, or not Reconciling with a reason for not being Ready (ScaledToZero)."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    stalled, reconciling, ready = (
        condition(obj, "Stalled"),
        condition(obj, "Reconciling"),
        condition(obj, "Ready"),
    )
    if is_ready(obj) or bool(stalled and stalled.get("status") == "True" and stalled.get("reason")):
        return True
    return bool(reconciling and reconciling.get("status") == "False" and ready and ready.get("reason"))


def expected_children(service: dict[str, Any]) -> set[ChildKey]:
    ns = service["metadata"]["namespace"]
    return {(o["kind"], o["metadata"]["name"]) for o in rendered(service, ns)}


def check_namespace(
    services: list[dict[str, Any]], children: list[dict[str, Any]], *, require_ready: bool = True
) -> Problems:
    """`children`: every object labelled managed-by=llmstage in the namespace, each with its kind."""
    problems = Problems()
    live = {s["metadata"]["uid"]: s["metadata"]["name"] for s in services}
    by_owner: dict[str, set[ChildKey]] = defaultdict(set)
    for child in children:
        key = child["kind"], child["metadata"]["name"]
        owners = [r for r in child["metadata"].get("ownerReferences") or [] if r.get("kind") == "LLMService"]
        controllers = [r for r in owners if r.get("controller")]
        if len(owners) != 1 or len(controllers) != 1 or controllers[0].get("uid") not in live:
            problems.orphans.append(f"{key[0]}/{key[1]}")
            continue
        owner = live[controllers[0]["uid"]]
        if child["metadata"].get("labels", {}).get(INSTANCE_LABEL) != owner:
            problems.orphans.append(f"{key[0]}/{key[1]} (labelled for another instance)")
        by_owner[owner].add(key)
    for service in services:
        name = service["metadata"]["name"]
        if require_ready and not is_ready(service):
            problems.not_ready.append(name)
        want, have = expected_children(service), by_owner.get(name, set())
        if want - have:
            problems.missing[name] = want - have
        if have - want:
            problems.extra[name] = have - want
    return problems
