"""One replica over several GPU nodes: the layout the fit chooses or the spec asks for, the
LeaderWorkerSet it renders, and the plan's rules for groups (LWS missing, Deployment <-> LWS)."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.controller.conditions import Condition
from llmstage.controller.plan import plan
from llmstage.render import render
from llmstage.resolve import SpecError
from llmstage.resolve.resolved import ClusterFacts, Resolved

from testkit.plan_fixtures import NOW, endpoints, observed, resolved, service

H100 = "NVIDIA-H100-80GB-HBM3"
KEY = {"apiKeySecretRef": {"name": "key"}}
WITH_LWS = ClusterFacts(lws_crd=True)


def llama_405b(gpu: dict[str, Any], **spec: Any) -> Resolved:
    return resolved(
        stage="production",
        model={"name": "llama3.1:405b"},
        expectedConcurrency=50,
        resources={"gpu": gpu},
        vllm={**KEY, **spec.pop("vllm", {})},
        **spec,
    )


def conditions(p: Any) -> dict[str, Condition]:
    return {c.type: c for c in p.conditions}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def server(template: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in template["spec"]["containers"] if c["name"] == "server")


# ---------------------------------------------------------------- the layout


def test_a_model_too_large_for_one_node_spans_the_fewest_nodes_it_fits() -> None:
    r = llama_405b({"count": 8, "product": H100})
    assert r.resources.gpu is not None and r.resources.gpu.nodes == 2 and r.multi_node
    assert r.vllm is not None
    assert (r.vllm.tensor_parallel_size, r.vllm.pipeline_parallel_size) == (8, 2)
    fit = r.memory_fit
    assert fit.fits is True and fit.reason == "Fits"
    assert fit.message.startswith(
        "2 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 2 (spec.resources.gpu.nodes unset: the model does "
        "not fit on one node's 8 GPUs); fits: 756.0 GiB weights + 98.4 GiB KV cache"
    )
    # 16 GPUs: 1.5 GiB overhead each, 16 x 79.6 GiB x 0.9 available.
    assert "+ 24.0 GiB overhead = 878.5 GiB <= 1146.9 GiB available (2 nodes x 8 x" in fit.message
    # Every pod of a group loads the weights: a claim per pod, never one ReadWriteOnce claim.
    assert r.cache.per_pod


def test_the_spec_can_ask_for_nodes_and_say_one() -> None:
    asked = llama_405b({"count": 8, "product": H100, "nodes": 3})
    assert asked.resources.gpu is not None and asked.resources.gpu.nodes == 3
    assert asked.memory_fit.message.startswith("3 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 3; fits:")
    one = llama_405b({"count": 8, "product": H100, "nodes": 1})
    assert not one.multi_node and one.memory_fit.reason == "DoesNotFit"
    assert (
        "spec.resources.gpu.nodes 2 (2 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 2)" in one.memory_fit.message
    )


def test_fewer_gpus_than_a_node_holds_grow_the_count_first() -> None:
    r = llama_405b({"count": 4, "product": H100})
    assert not r.multi_node and r.memory_fit.reason == "DoesNotFit"
    assert "spec.resources.gpu.nodes" not in r.memory_fit.message


def test_a_model_that_fits_one_node_stays_in_a_deployment() -> None:
    r = resolved(
        stage="production",
        model={"name": "llama3.1:70b"},
        resources={"gpu": {"count": 8, "product": H100}},
        vllm=KEY,
    )
    assert not r.multi_node
    assert [o["kind"] for o in render(r)][:2] == ["Deployment", "Service"]


def test_ollama_cannot_span_nodes() -> None:
    # runtime auto picks Ollama in dev: the API cannot see it, resolve refuses it.
    with pytest.raises(SpecError) as err:
        resolved(resources={"gpu": {"count": 8, "nodes": 2}})
    assert err.value.field == "spec.resources.gpu.nodes"
    assert "needs vLLM, and the runtime is Ollama" in err.value.message


def test_a_chosen_layout_refuses_a_smaller_tensor_parallel_size_and_its_own_flags() -> None:
    with pytest.raises(SpecError) as err:
        llama_405b({"count": 8, "product": H100}, vllm={"tensorParallelSize": 4})
    assert err.value.field == "spec.vllm.tensorParallelSize"
    with pytest.raises(SpecError) as err:
        llama_405b({"count": 8, "product": H100}, vllm={"extraArgs": ["--nnodes=4"]})
    assert err.value.field == "spec.vllm.extraArgs" and "--nnodes=4" in err.value.message


# ---------------------------------------------------------------- the LeaderWorkerSet


def test_the_group_is_a_leader_with_the_api_server_and_headless_workers() -> None:
    objects = render(llama_405b({"count": 8, "product": H100}), WITH_LWS)
    assert "Deployment" not in [o["kind"] for o in objects]
    lws = by_kind(objects, "LeaderWorkerSet")
    assert lws["metadata"]["name"] == "chat-vllm" and "replicas" not in lws["spec"]  # the HPA owns it
    group = lws["spec"]["leaderWorkerTemplate"]
    assert (group["size"], group["restartPolicy"]) == (2, "RecreateGroupOnPodRestart")
    assert lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {
        "maxUnavailable": 0,
        "maxSurge": 1,
    }
    leader, worker = server(group["leaderTemplate"]), server(group["workerTemplate"])
    layout = ["--pipeline-parallel-size=2", "--distributed-executor-backend=mp", "--nnodes=2"]
    assert leader["args"][-5:] == [*layout, "--node-rank=0", "--master-addr=$(LWS_LEADER_ADDRESS)"]
    assert worker["args"][-6:] == [
        *layout,
        "--node-rank=$(LWS_WORKER_INDEX)",
        "--master-addr=$(LWS_LEADER_ADDRESS)",
        "--headless",
    ]
    assert "--tensor-parallel-size=8" in leader["args"] and "--tensor-parallel-size=8" in worker["args"]
    pod_ip = {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert pod_ip in leader["env"] and pod_ip in worker["env"]
    assert "readinessProbe" in leader and "--host=127.0.0.1" in leader["args"]
    assert not {"readinessProbe", "livenessProbe", "startupProbe", "ports"} & set(worker)
    # The leader serves the API through its gateway; a worker serves none, so has none.
    names = [
        [c["name"] for c in t["spec"]["containers"]]
        for t in (group["leaderTemplate"], group["workerTemplate"])
    ]
    assert names == [["server", "gateway"], ["server"]]
    # Both roles land on the product's nodes and ask for all 8 GPUs of one.
    for template in (group["leaderTemplate"], group["workerTemplate"]):
        terms = template["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [H100]
        assert server(template)["resources"]["limits"]["nvidia.com/gpu"] == 8


def test_only_leaders_are_behind_the_service_and_the_autoscaler_scales_groups() -> None:
    objects = render(llama_405b({"count": 8, "product": H100}), WITH_LWS)
    group = by_kind(objects, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    selector = by_kind(objects, "Service")["spec"]["selector"]
    leader_labels = group["leaderTemplate"]["metadata"]["labels"]
    worker_labels = group["workerTemplate"]["metadata"]["labels"]
    assert selector.items() <= leader_labels.items()
    assert not selector.items() <= worker_labels.items()
    assert worker_labels["app.kubernetes.io/component"] == "worker"
    hpa = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "chat-vllm",
    }
    # A drain may take one pod of all the groups' pods at a time: each eviction restarts a group.
    pdb = by_kind(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= leader_labels.items() and pdb.items() <= worker_labels.items()


# ---------------------------------------------------------------- the plan


def lws(available: bool) -> dict[str, Any]:
    return {
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "chat-vllm", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "readyReplicas": 1 if available else 0,
            "conditions": [{"type": "Available", "status": "True" if available else "False"}],
        },
    }


def vllm_deployment() -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "chat-vllm", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


def test_without_leader_worker_set_the_service_is_stalled_naming_it() -> None:
    p = plan(llama_405b({"count": 8, "product": H100}), observed(), NOW, facts=ClusterFacts())
    kinds = {o["kind"] for o in p.apply}
    assert not kinds & {"LeaderWorkerSet", "HorizontalPodAutoscaler"}
    assert "Service" in kinds
    stalled = conditions(p)["Stalled"]
    assert (stalled.status, stalled.reason) == ("True", "LeaderWorkerSetNotInstalled")
    assert "leaderworkersets.leaderworkerset.x-k8s.io not found" in stalled.message
    assert "2 nodes of 8 GPUs" in stalled.message and "install LeaderWorkerSet" in stalled.message
    assert conditions(p)["Ready"].reason == "LeaderWorkerSetNotInstalled"


def test_a_group_ready_behind_the_service_is_ready_and_counts_groups() -> None:
    live = observed(service("vllm"), lws(True), slices=endpoints("chat-vllm-0"))
    p = plan(llama_405b({"count": 8, "product": H100}), live, NOW, facts=WITH_LWS)
    ready = conditions(p)["Ready"]
    assert ready.status == "True" and ready.message == "1 ready vllm endpoint(s) behind Service chat"
    assert (p.status["replicas"], p.status["readyReplicas"]) == (1, 1)
    assert p.keep == set()


def test_deployment_to_groups_keeps_the_deployment_until_a_group_is_available() -> None:
    target = llama_405b({"count": 8, "product": H100})
    starting = observed(service("vllm"), vllm_deployment(), lws(False), slices=endpoints("chat-vllm-7c9-a"))
    p = plan(target, starting, NOW, facts=WITH_LWS)
    assert p.keep == {("Deployment", "chat-vllm")}  # its pods serve until a group does
    assert by_kind(p.apply, "Service")["spec"]["selector"]["llmstage.io/runtime"] == "vllm"
    done = observed(service("vllm"), vllm_deployment(), lws(True), slices=endpoints("chat-vllm-0"))
    assert plan(target, done, NOW, facts=WITH_LWS).keep == set()


def test_groups_to_a_deployment_keeps_the_groups_until_it_is_available() -> None:
    one_node = resolved(
        stage="production",
        model={"name": "llama3.1:70b"},
        resources={"gpu": {"count": 8, "product": H100}},
        vllm=KEY,
    )
    starting = observed(service("vllm"), lws(True), slices=endpoints("chat-vllm-0"))
    assert plan(one_node, starting, NOW).keep == {("LeaderWorkerSet", "chat-vllm")}


def test_a_promotion_to_groups_switches_the_service_when_a_group_is_ready() -> None:
    ollama = {
        "kind": "Deployment",
        "metadata": {"name": "chat-ollama", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }
    target = llama_405b({"count": 8, "product": H100})
    before = plan(target, observed(service("ollama"), ollama, lws(False)), NOW, facts=WITH_LWS)
    assert by_kind(before.apply, "Service")["spec"]["selector"]["llmstage.io/runtime"] == "ollama"
    assert ("Deployment", "chat-ollama") in before.keep
    after = plan(target, observed(service("ollama"), ollama, lws(True)), NOW, facts=WITH_LWS)
    assert by_kind(after.apply, "Service")["spec"]["selector"]["llmstage.io/runtime"] == "vllm"
