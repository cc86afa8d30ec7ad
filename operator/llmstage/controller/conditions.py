"""Condition and Event bookkeeping: metav1.Conditions on the LLMService's status and the
Events their changes become.

    merge_conditions(current, new, generation, now)   lastTransitionTime moves only on a flip
    event_worthy(current, merged)                      which changes become Events
    event_for(body, condition, now)                    the Event object for one of them
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
RUNTIME_SELECTED, MODEL_FITS, BEST_PRACTICES = "RuntimeSelected", "ModelFits", "FollowsBestPractices"


@dataclass(frozen=True)
class Condition:
    """A condition the plan wants. merge_conditions turns it into the stored metav1.Condition
    (api.status.Condition, with observedGeneration and lastTransitionTime)."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


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


# A condition's first appearance in its usual state is not news; these are not Events. The
# runtime decision is not either: a new service's RuntimeSelected is in its status, and a change
# of runtime later (a promotion) is an Event.
_UNREMARKABLE_AT_FIRST = {
    (READY, "False"),
    (STALLED, "False"),
    (RUNTIME_SELECTED, "True"),
    (MODEL_FITS, "True"),
    (BEST_PRACTICES, "True"),
}


def _first_ready(previous: dict[Any, dict[str, Any]], cond: dict[str, Any]) -> bool:
    """Ready becoming True for the first time in the service's life: routine, not news.

    Known without stored history: RuntimeSelected is always True, so its lastTransitionTime is
    the service's first status write; a Ready that has been False since that very write has
    never been True. After an outage, a cutover or a scale to zero, Ready flipped to False
    later, and its return is an Event."""
    ready, selected = previous.get(READY), previous.get(RUNTIME_SELECTED)
    return (
        cond["type"] == READY
        and cond["status"] == "True"
        and ready is not None
        and selected is not None
        and ready.get("status") != "True"
        and ready.get("lastTransitionTime") is not None
        and ready.get("lastTransitionTime") == selected.get("lastTransitionTime")
    )


def event_worthy(current: list[dict[str, Any]], merged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transitions that become Events: what someone may act on. Problems (Stalled, Ready
    lost, a model that does not fit, a common mistake) as Warnings; recoveries and changes of a
    running service (a new runtime, Ready again after an outage or a cutover) as Normal. Not
    Reconciling (it changes exactly when Ready or Stalled does), not a condition's first
    appearance in its usual state, and not a new service becoming Ready: a healthy start is in
    the status and costs no Event (the writes per service: docs/benchmarks.md)."""
    previous = {c.get("type"): c for c in current or []}
    changes = transitions(current, merged)
    # Stalled and Ready turn False together with the same reason and message: one Event says it.
    stalled = {c["reason"] for c in changes if c["type"] == STALLED and c["status"] == "True"}
    return [
        c
        for c in changes
        if c["type"] != RECONCILING
        and not (c["type"] not in previous and (c["type"], c["status"]) in _UNREMARKABLE_AT_FIRST)
        and not _first_ready(previous, c)
        and not (c["type"] == READY and c["status"] == "False" and c["reason"] in stalled)
    ]


def event_for(body: dict[str, Any], cond: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The v1 Event recording one condition change of the LLMService `body`: Normal when the
    condition is in its good state, else Warning."""
    meta = body["metadata"]
    good = (cond["status"] == "True") != (cond["type"] in (STALLED, RECONCILING))
    if cond["type"] in (BEST_PRACTICES, MODEL_FITS):
        good = cond["status"] != "False"
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": "Normal" if good else "Warning",
        "reason": cond["reason"] or cond["type"],
        "message": f"{cond['type']}={cond['status']}: {cond['message']}"[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "llmstage"},
        "reportingComponent": "llmstage",
    }
