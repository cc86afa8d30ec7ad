"""Statuses that must not stay Reconciling forever: a service scaled to zero, and pods the API
server refuses to create (both come up in the fuzz of tests/integration/test_reliability.py).
And which condition changes become Events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from llmstage.controller.conditions import Condition, event_worthy, merge_conditions
from llmstage.controller.observed import Observed
from llmstage.controller.plan import plan
from llmstage.resolve.resolved import Resolved

from testkit.plan_fixtures import NOW, resolved_at


def resolved(**spec: Any) -> Resolved:
    return resolved_at(2, **spec)


def ollama_deployment(**status: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "chat-ollama", "generation": 2},
        "status": {"observedGeneration": 2, **status},
    }


def conditions(children: list[dict[str, Any]], **spec: Any) -> dict[str, Condition]:
    observed = Observed(children={(c["kind"], c["metadata"]["name"]): c for c in children})
    return {c.type: c for c in plan(resolved(**spec), observed, NOW).conditions}


def test_scaled_to_zero_is_done_not_progressing() -> None:
    c = conditions([ollama_deployment()], replicas=0)
    assert (c["Ready"].status, c["Ready"].reason) == ("False", "ScaledToZero")
    assert "spec.replicas is 0" in c["Ready"].message
    assert c["Reconciling"].status == "False" and c["Stalled"].status == "False"


def test_scaling_down_to_zero_is_progressing_until_the_pods_are_gone() -> None:
    c = conditions([ollama_deployment(replicas=1, readyReplicas=1)], replicas=0)
    assert c["Reconciling"].status == "True"


def test_pods_the_api_server_refuses_to_create_stall_with_its_message() -> None:
    refused = ollama_deployment(
        conditions=[
            {"type": "Available", "status": "False"},
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "chat-ollama-5d9-" is forbidden: no PriorityClass with name gold was found',
            },
        ]
    )
    c = conditions([refused], scheduling={"priorityClassName": "gold"})
    assert (c["Stalled"].status, c["Stalled"].reason) == ("True", "PodCreationFailed")
    assert "no PriorityClass with name gold" in c["Stalled"].message
    assert c["Ready"].reason == "PodCreationFailed" and c["Reconciling"].status == "False"


def test_a_new_service_gets_events_only_for_its_problems_then_for_what_changes_later() -> None:
    first = [
        Condition("Ready", "False", "WaitingForEndpoints", ""),
        Condition("Reconciling", "True", "Progressing", ""),
        Condition("Stalled", "False", "NotStalled", ""),
        Condition("RuntimeSelected", "True", "Ollama", "stage dev"),
        Condition("ModelFits", "True", "Fits", ""),
        Condition("FollowsBestPractices", "False", "NoApiKey", "production without an API key"),
    ]
    created = merge_conditions([], first, 1, NOW)
    assert [c["type"] for c in event_worthy([], created)] == ["FollowsBestPractices"]
    now_ready = [
        Condition("Ready", "True", "EndpointsReady", ""),
        Condition("Reconciling", "False", "Reconciled", ""),
        *first[2:],
    ]
    later = NOW + timedelta(seconds=40)
    ready = merge_conditions(created, now_ready, 1, later)
    assert event_worthy(created, ready) == []  # the first Ready is routine: it is in the status
    # An outage and the return: both are news.
    lost = merge_conditions(ready, first, 1, later + timedelta(minutes=5))
    assert [(c["type"], c["status"]) for c in event_worthy(ready, lost)] == [("Ready", "False")]
    back = merge_conditions(lost, now_ready, 1, later + timedelta(minutes=6))
    assert [(c["type"], c["status"]) for c in event_worthy(lost, back)] == [("Ready", "True")]
    # A promotion: the new runtime is news.
    promoted = merge_conditions(
        back, [*now_ready[:3], Condition("RuntimeSelected", "True", "Vllm", "")], 2, later
    )
    assert [c["reason"] for c in event_worthy(back, promoted)] == ["Vllm"]
    stuck = [
        Condition("Ready", "False", "Unschedulable", "no H100"),
        Condition("Reconciling", "False", "Stalled", ""),
        Condition("Stalled", "True", "Unschedulable", "no H100"),
    ]
    stalled = merge_conditions(ready, stuck, 1, NOW)
    # Ready and Stalled say the same: one Warning.
    assert [(c["type"], c["status"]) for c in event_worthy(ready, stalled)] == [("Stalled", "True")]
