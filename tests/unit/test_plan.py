"""The pure reconcile plan: cutover phases, status conditions, what to keep and what to apply."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from llmstage.controller.conditions import Condition, merge_conditions, transitions
from llmstage.controller.plan import plan
from llmstage.controller.reconciler import contains

from testkit.plan_fixtures import NOW, PRODUCTION, deployment, endpoints, observed, resolved, service


def conditions(p: Any) -> dict[str, Condition]:
    return {c.type: c for c in p.conditions}


def rendered_service_runtime(p: Any) -> str:
    svc = next(o for o in p.apply if o["kind"] == "Service")
    return str(svc["spec"]["selector"]["llmstage.io/runtime"])


def test_a_new_service_applies_everything_and_waits_for_endpoints() -> None:
    p = plan(resolved(), observed(), NOW)
    kinds = sorted(o["kind"] for o in p.apply)
    assert kinds == ["Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Service"]
    assert rendered_service_runtime(p) == "ollama"
    c = conditions(p)
    assert (c["Ready"].status, c["Ready"].reason) == ("False", "WaitingForEndpoints")
    assert c["Reconciling"].status == "True" and c["Stalled"].status == "False"
    assert p.status["cutover"] is None and p.keep == set()


def test_status_lists_the_lora_adapters_only_where_vllm_serves_them() -> None:
    adapters = {
        "adapters": [
            {"name": "sql", "huggingFaceId": "acme/sql-lora"},
            {"name": "faq", "huggingFaceId": "acme/faq"},
        ]
    }
    p = plan(resolved(**PRODUCTION, lora=adapters), observed(), NOW)
    assert p.status["loraAdapters"] == ["sql", "faq"] and p.status["servedModelName"] == "llama3.1:8b"
    assert "loraAdapters" not in plan(resolved(**PRODUCTION), observed(), NOW).status


def test_waiting_says_which_step_starting_pods_are_at() -> None:
    def pod(name: str, step: str | None) -> dict[str, Any]:
        status: dict[str, Any] = {"conditions": [], "containerStatuses": [], "initContainerStatuses": []}
        if step:
            status["initializing"] = step
        return {"metadata": {"name": name}, "status": status}

    pods = [pod("chat-ollama-5d9-a", "pull-model"), pod("chat-ollama-5d9-b", "pull-model"), pod("x-1", None)]
    ready = conditions(plan(resolved(), observed(pods=pods), NOW))["Ready"]
    assert ready.reason == "WaitingForEndpoints"
    assert ready.message == (
        "waiting for ready ollama pods behind Service chat: 2 pods pulling the model into the cache "
        "(kubectl logs POD -c pull-model)"
    )
    idle = conditions(plan(resolved(), observed(pods=[pod("chat-ollama-5d9-a", None)]), NOW))["Ready"]
    assert idle.message == "waiting for ready ollama pods behind Service chat"


def test_ready_needs_ready_endpoints_of_the_resolved_runtime() -> None:
    p = plan(
        resolved(),
        observed(service("ollama"), deployment("ollama", True), slices=endpoints("chat-ollama-5d9-x1")),
        NOW,
    )
    c = conditions(p)
    assert c["Ready"].status == "True" and c["Reconciling"].status == "False"
    assert p.status["endpoint"] == "http://chat.team.svc:8000/v1"
    assert p.status["readyReplicas"] == 1


def test_cutover_starts_beside_the_old_runtime_and_keeps_the_service_on_it() -> None:
    live = observed(service("ollama"), deployment("ollama", True), slices=endpoints("chat-ollama-5d9-x1"))
    p = plan(resolved(**PRODUCTION), live, NOW)
    assert rendered_service_runtime(p) == "ollama"
    assert any(o["kind"] == "Deployment" and o["metadata"]["name"] == "chat-vllm" for o in p.apply)
    assert ("Deployment", "chat-ollama") in p.keep
    assert p.status["cutover"]["phase"] == "Starting"
    assert conditions(p)["Ready"].reason == "CutoverInProgress"


def test_cutover_switches_the_service_once_the_new_deployment_is_available_but_keeps_the_old_pods() -> None:
    live = observed(
        service("ollama"),
        deployment("ollama", True),
        deployment("vllm", True),
        slices=endpoints("chat-ollama-5d9-x1"),
    )
    p = plan(resolved(**PRODUCTION), live, NOW)
    assert rendered_service_runtime(p) == "vllm"
    assert ("Deployment", "chat-ollama") in p.keep
    assert p.status["cutover"]["phase"] == "Switching"


def test_cutover_drains_the_old_runtime_only_when_endpoints_are_all_new() -> None:
    live = observed(
        service("vllm"),
        deployment("ollama", True),
        deployment("vllm", True),
        slices=endpoints("chat-vllm-7c4-y2"),
    )
    p = plan(resolved(**PRODUCTION), live, NOW)
    assert rendered_service_runtime(p) == "vllm"
    assert p.keep == set()  # the old Deployment and its cache claim get pruned
    assert p.status["cutover"]["phase"] == "Draining"


def unschedulable_pod(since: datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat-vllm-7c4-y2"},
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "message": "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector",
                }
            ]
        },
    }


def test_a_cache_claim_the_scheduler_waits_for_names_its_storage_class_and_access_mode() -> None:
    pod = unschedulable_pod(NOW - timedelta(seconds=300))
    pod["status"]["conditions"][0]["message"] = (
        "0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: ..."
    )
    claim = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "chat-vllm-cache"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "gp3"},
        "status": {"phase": "Pending"},
    }
    stuck = plan(
        resolved(**PRODUCTION),
        observed(deployment("vllm", False), claim, pods=[pod]),
        NOW,
        unschedulable_grace=60,
    )
    stalled = conditions(stuck)["Stalled"]
    assert (stalled.status, stalled.reason) == ("True", "Unschedulable")
    assert (
        "The model cache claim chat-vllm-cache (StorageClass gp3, ReadWriteMany) is Pending"
        in stalled.message
    )
    assert "kubectl describe pvc chat-vllm-cache" in stalled.message
    assert "add capacity" not in stalled.message


def volume_binding_failed(since: datetime) -> dict[str, Any]:
    """A pod whose claim a WaitForFirstConsumer provisioner refused (seen on the test bed)."""
    pod = unschedulable_pod(since)
    pod["status"]["conditions"][0].update(
        reason="SchedulerError",
        message='running PreBind plugin "VolumeBinding": binding volumes: provisioning failed for PVC "x"',
    )
    return pod


def test_a_claim_per_pod_that_stays_pending_stalls_naming_the_pod_claim_and_its_class() -> None:
    per_pod = resolved(**{**PRODUCTION, "replicas": 2})
    assert per_pod.cache.per_pod
    claim = {
        "metadata": {"name": "chat-vllm-7c4-y2-model-cache"},
        "spec": {"storageClassName": "standard-rwo", "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Pending"},
    }
    live = observed(deployment("vllm", False), pods=[volume_binding_failed(NOW - timedelta(seconds=300))])
    stalled = conditions(
        plan(per_pod, replace(live, pod_claims={"chat-vllm-7c4-y2-model-cache": claim}), NOW)
    )
    assert (stalled["Stalled"].status, stalled["Stalled"].reason) == ("True", "Unschedulable")
    message = stalled["Stalled"].message
    assert (
        "The model cache claim chat-vllm-7c4-y2-model-cache of pod chat-vllm-7c4-y2 (one claim per pod; "
        "StorageClass standard-rwo, ReadWriteOnce) is Pending" in message
    ), message
    assert "name another class in spec.cache.storageClassName" in message
    # Before the watch has seen the claim: what it was asked for (here the default class).
    unseen = conditions(plan(per_pod, live, NOW))["Stalled"].message
    assert "(one claim per pod; StorageClass the cluster's default, ReadWriteOnce) is Pending" in unseen


def test_a_shared_read_write_many_claim_refused_by_the_class_stalls_and_says_how_to_fix_it() -> None:
    shared = resolved(**{**PRODUCTION, "replicas": 2, "cache": {"accessMode": "ReadWriteMany"}})
    claim = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "chat-vllm-cache"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "gp3"},
    }
    live = observed(
        deployment("vllm", False), claim, pods=[volume_binding_failed(NOW - timedelta(seconds=300))]
    )
    stalled = conditions(plan(shared, live, NOW))["Stalled"]
    assert (stalled.status, stalled.reason) == ("True", "Unschedulable")
    assert (
        "The model cache claim chat-vllm-cache (StorageClass gp3, ReadWriteMany) is Pending"
        in stalled.message
    )
    assert "remove spec.cache.accessMode for a claim per pod" in stalled.message


def test_an_existing_claim_the_pods_wait_for_is_named_as_the_users() -> None:
    mine = resolved(**{**PRODUCTION, "cache": {"claimName": "llama-weights"}})
    pod = unschedulable_pod(NOW - timedelta(seconds=300))
    pod["status"]["conditions"][0]["message"] = (
        '0/4 nodes are available: persistentvolumeclaim "llama-weights" not found.'
    )
    stalled = conditions(plan(mine, observed(deployment("vllm", False), pods=[pod]), NOW))["Stalled"]
    assert "The model cache claim llama-weights (spec.cache.claimName) must exist in namespace team" in (
        stalled.message
    )


def test_a_scheduler_error_that_is_not_about_volumes_is_not_a_stall() -> None:
    pod = volume_binding_failed(NOW - timedelta(seconds=300))
    pod["status"]["conditions"][0]["message"] = 'running PreBind plugin "Other": some transient error'
    p = plan(resolved(**PRODUCTION), observed(deployment("vllm", False), pods=[pod]), NOW)
    assert "Stalled" not in conditions(p) or conditions(p)["Stalled"].status == "False"


def test_unschedulable_new_runtime_waits_for_the_grace_then_stalls_while_the_old_serves() -> None:
    live = observed(
        service("ollama"),
        deployment("ollama", True),
        deployment("vllm", False),
        slices=endpoints("chat-ollama-5d9-x1"),
        pods=[unschedulable_pod(NOW - timedelta(seconds=10))],
    )
    early = plan(resolved(**PRODUCTION), live, NOW, unschedulable_grace=60)
    assert conditions(early)["Stalled"].status == "False"
    assert early.requeue_after == 50

    late = plan(resolved(**PRODUCTION), live, NOW + timedelta(seconds=60), unschedulable_grace=60)
    stalled = conditions(late)["Stalled"]
    assert (stalled.status, stalled.reason) == ("True", "Unschedulable")
    assert "didn't match Pod's node affinity" in stalled.message and "ollama keeps serving" in stalled.message
    assert rendered_service_runtime(late) == "ollama"
    assert ("Deployment", "chat-ollama") in late.keep
    assert conditions(late)["Reconciling"].status == "False"


def test_a_missing_secret_reported_by_the_kubelet_stalls_with_the_fix() -> None:
    pod = {
        "metadata": {"name": "chat-vllm-7c4-y2"},
        "status": {
            "containerStatuses": [
                {
                    "name": "vllm",
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "key" not found',
                        }
                    },
                }
            ]
        },
    }
    p = plan(resolved(**PRODUCTION), observed(service("vllm"), deployment("vllm", False), pods=[pod]), NOW)
    stalled = conditions(p)["Stalled"]
    assert stalled.status == "True" and 'secret "key" not found' in stalled.message
    assert "create the Secret" in stalled.message


def test_spec_conditions_report_the_decision_and_the_article_mistakes() -> None:
    p = plan(resolved(stage="production", runtime="ollama"), observed(), NOW)
    c = conditions(p)
    assert c["RuntimeSelected"].status == "True" and "ollama" in c["RuntimeSelected"].message.lower()
    assert c["FollowsBestPractices"].status == "False"
    assert "production" in c["FollowsBestPractices"].message.lower()


def test_last_transition_time_moves_only_on_a_flip() -> None:
    first = merge_conditions([], [Condition("Ready", "False", "WaitingForEndpoints", "")], 1, NOW)
    later = NOW + timedelta(minutes=5)
    same = merge_conditions(first, [Condition("Ready", "False", "CutoverInProgress", "x")], 2, later)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["observedGeneration"] == 2
    flipped = merge_conditions(same, [Condition("Ready", "True", "EndpointsReady", "")], 2, later)
    assert flipped[0]["lastTransitionTime"] == "2026-11-25T12:05:00Z"
    assert [c["reason"] for c in transitions(first, same)] == ["CutoverInProgress"]
    assert transitions(flipped, flipped) == []


def test_contains_ignores_server_defaults_and_foreign_fields_but_not_changed_values() -> None:
    desired = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["--x=1"]}]}}}}
    live: dict[str, Any] = {
        "metadata": {"annotations": {"other": "tool"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "args": ["--x=1"], "terminationMessagePath": "/dev/termination-log"}
                    ],
                    "dnsPolicy": "ClusterFirst",
                }
            }
        },
    }
    assert contains(live, desired)
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--x=2"]
    assert not contains(live, desired)
    assert not contains({"a": 1}, {"a": True})
    assert contains({"port": 8000}, {"port": 8000.0})
