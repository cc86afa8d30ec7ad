"""Rollouts of a GPU service that may run one pod: a surge where the cluster has room, a
replacement (with the outage said in status) where it has none."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from llmstage.controller.plan import plan
from llmstage.render.rollout import outage_seconds, rollout_findings

from testkit.plan_fixtures import NOW, PRODUCTION, endpoints, observed, resolved, service

# One pod, a claim per pod: a second pod can start beside the first.
ONE_POD = {**PRODUCTION, "cache": {"mode": "PerPod"}}
NO_GPU_LEFT = (
    "0/5 nodes are available: 1 Insufficient nvidia.com/gpu, 4 node(s) didn't match Pod's node affinity"
)
NO_NODE_MATCHES = "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector"
GRACE = 120.0
SURGE = {"maxSurge": 1, "maxUnavailable": 0}
REPLACE = {"maxSurge": 0, "maxUnavailable": 1}


def rolling(ready: int = 1, replicas: int = 2) -> dict[str, Any]:
    """The vLLM Deployment mid-rollout: the old pod ready, the surge pod not."""
    return {
        "kind": "Deployment",
        "metadata": {"name": "chat-vllm", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "readyReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
        },
    }


def pending(since: datetime, message: str = NO_GPU_LEFT) -> dict[str, Any]:
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"metadata": {"name": "chat-vllm-new-1"}, "status": {"conditions": [condition]}}


def run(
    waited: float,
    *,
    message: str = NO_GPU_LEFT,
    spec: dict[str, Any] = ONE_POD,
    ready: int = 1,
    later: float = 0,
) -> Any:
    """The plan `later` seconds after NOW, for a surge pod pending since `waited` s before NOW."""
    live = observed(
        service("vllm"),
        rolling(ready=ready),
        slices=endpoints("chat-vllm-old-1") if ready else [],
        pods=[pending(NOW - timedelta(seconds=waited), message)],
    )
    return plan(resolved(**spec), live, NOW + timedelta(seconds=later), unschedulable_grace=GRACE)


def strategy(p: Any) -> dict[str, Any]:
    deployment = next(o for o in p.apply if o["kind"] == "Deployment")
    return dict(deployment["spec"]["strategy"].get("rollingUpdate") or deployment["spec"]["strategy"])


def condition(p: Any, kind: str) -> Any:
    return next(c for c in p.conditions if c.type == kind)


def test_with_room_the_rollout_surges_and_nothing_is_said() -> None:
    live = observed(service("vllm"), rolling(ready=1), slices=endpoints("chat-vllm-old-1"))
    p = plan(resolved(**ONE_POD), live, NOW, unschedulable_grace=GRACE)
    assert strategy(p) == SURGE
    assert condition(p, "Ready").status == "True" and condition(p, "Reconciling").status == "False"


def test_a_surge_pod_without_room_waits_the_grace_and_says_what_happens_then() -> None:
    p = run(30)
    assert strategy(p) == SURGE
    reconciling = condition(p, "Reconciling")
    assert (reconciling.status, reconciling.reason) == ("True", "WaitingForRoom")
    deadline = (NOW - timedelta(seconds=30) + timedelta(seconds=GRACE)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        f"if none appears by {deadline}" in reconciling.message
        and "Insufficient nvidia.com/gpu" in reconciling.message
    )
    assert p.requeue_after == pytest.approx(GRACE - 30)
    assert condition(p, "Ready").status == "True"  # the old pod still serves
    # The same message a few seconds later: no status write per reconcile.
    assert condition(run(30, later=5), "Reconciling").message == reconciling.message


def test_after_the_grace_the_rollout_replaces_the_pod_and_says_for_how_long() -> None:
    p = run(GRACE + 1)
    assert strategy(p) == REPLACE
    reconciling = condition(p, "Reconciling")
    assert (reconciling.status, reconciling.reason) == ("True", "ReplacingWithoutSurge")
    minutes = -(-outage_seconds(resolved(**ONE_POD)) // 60)
    assert f"unavailable for up to {minutes} minutes" in reconciling.message
    assert "download and load the model" in reconciling.message  # a claim per pod starts empty
    assert condition(p, "Stalled").status == "False"


def test_a_pod_no_node_matches_is_not_a_lack_of_room() -> None:
    """A typo in a selector must not cost the serving pod: no fallback, the Deployment keeps it."""
    p = run(GRACE + 1, message=NO_NODE_MATCHES)
    assert strategy(p) == SURGE
    assert condition(p, "Reconciling").reason != "ReplacingWithoutSurge"


def test_the_replacement_gets_its_own_grace_before_stalled() -> None:
    # The old pod is gone (no ready pod), the new one still has no node: not yet Stalled...
    assert condition(run(GRACE + 60, ready=0), "Stalled").status == "False"
    # ...but after a second grace it is.
    stalled = condition(run(2 * GRACE + 1, ready=0), "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "Unschedulable")


@pytest.mark.parametrize(
    "spec",
    [
        {**PRODUCTION, "replicas": 2, "cache": {"mode": "PerPod"}},  # two pods: the other one serves
        PRODUCTION,  # a shared ReadWriteOnce cache: Recreate
    ],
    ids=["two-replicas", "shared-rwo"],
)
def test_services_that_do_not_surge_are_left_as_they_were(spec: dict[str, Any]) -> None:
    p = run(GRACE + 1, spec=spec)
    assert condition(p, "Reconciling").reason not in ("WaitingForRoom", "ReplacingWithoutSurge")


def test_a_production_gpu_service_that_recreates_its_only_pod_is_told_in_advance() -> None:
    (finding,) = rollout_findings(resolved(**PRODUCTION))
    assert finding.reason == "RolloutReplacesOnlyPod"
    minutes = -(-outage_seconds(resolved(**PRODUCTION)) // 60)
    assert f"unavailable for up to {minutes} minutes, the time the new pod may take to load the model" in (
        finding.message
    )
    best = condition(plan(resolved(**PRODUCTION), observed(), NOW), "FollowsBestPractices")
    assert best.status == "False" and "RolloutReplacesOnlyPod" in best.message
    assert rollout_findings(resolved(**ONE_POD)) == ()
    assert rollout_findings(resolved(**{**PRODUCTION, "replicas": 2})) == ()
    assert rollout_findings(resolved()) == ()  # dev: an outage there is no news
