"""Behaviour of the renderers, one rule per test (the goldens pin the full output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.api.models import Runtime, Stage
from llmstage.render import (
    cache_claim_name,
    owner_reference,
    render,
    render_deployment,
    runtime_objects,
    selector_labels,
    selector_string,
    workload_name,
)
from llmstage.render.workload import to_json
from llmstage.resolve.resolved import (
    GPU,
    Autoscaler,
    ClusterFacts,
    ModelCache,
    OllamaRegistry,
    Resolved,
    Resources,
    Scheduling,
)

from testkit.render_fixtures import (
    API_KEY,
    CASES,
    DEV_OLLAMA,
    DEV_OLLAMA_GPU,
    DEV_OLLAMA_REGISTRY,
    DEV_VLLM_GPU,
    HF_TOKEN,
    PRODUCTION_OLLAMA,
    PRODUCTION_VLLM,
    PRODUCTION_VLLM_70B_TP,
    PRODUCTION_VLLM_KEDA,
    PRODUCTION_VLLM_LORA,
    PRODUCTION_VLLM_PER_POD,
    PRODUCTION_VLLM_SOURCE_OCI_LORA,
    PROMETHEUS,
    STAGING_OLLAMA,
    STAGING_OLLAMA_EXISTING_CLAIM,
    STAGING_OLLAMA_SCALE_TO_ZERO,
    WAKE_QUERY,
    WITH_POD_MONITOR,
    pod_specs,
)

ALL = [pytest.param(resolved, facts, id=case) for case, (resolved, facts) in sorted(CASES.items())]
# The cases whose pods run in a Deployment; a multi-node replica's LeaderWorkerSet has its own
# tests (test_multi_node_layout.py), and shares the pod checks below through pod_specs.
DEPLOYMENTS = [
    pytest.param(resolved, facts, id=case)
    for case, (resolved, facts) in sorted(CASES.items())
    if not resolved.multi_node
]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds)), f"one object per kind expected, got {kinds}"
    return {o["kind"]: o for o in objects}


def pod_spec(resolved: Resolved) -> dict[str, Any]:
    spec: dict[str, Any] = render_deployment(resolved)["spec"]["template"]["spec"]
    return spec


def runtime_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's containers but the gateway in front of the runtime."""
    return [c for c in spec["containers"] if c["name"] != "gateway"]


def server(resolved: Resolved) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(resolved)["containers"][0]
    assert container["name"] == "server"
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def args_of(resolved: Resolved) -> dict[str, str]:
    """The flags after the positional model."""
    pairs = [arg.removeprefix("--").split("=", 1) for arg in server(resolved)["args"][1:]]
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


# ---------------------------------------------------------------- names, labels, selectors


def test_names_per_runtime_let_both_deployments_coexist() -> None:
    assert workload_name("chat", Runtime.OLLAMA) == "chat-ollama"
    assert workload_name("chat", Runtime.VLLM) == "chat-vllm"
    assert cache_claim_name("chat", Runtime.VLLM) == "chat-vllm-cache"
    kinds = by_kind(render(PRODUCTION_VLLM, WITH_POD_MONITOR))
    assert kinds["Deployment"]["metadata"]["name"] == "chat-vllm"
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == "chat-vllm-cache"
    assert kinds["Service"]["metadata"]["name"] == "chat"
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "PodMonitor"):
        assert kinds[kind]["metadata"]["name"] == "chat-vllm"


def test_selector_string_is_sorted_and_matches_the_selector_labels() -> None:
    assert selector_string("chat", Runtime.VLLM) == (
        "app.kubernetes.io/component=server,app.kubernetes.io/instance=chat,"
        "app.kubernetes.io/name=llmstage,llmstage.io/runtime=vllm"
    )
    parsed = dict(part.split("=") for part in selector_string("chat", Runtime.OLLAMA).split(","))
    assert parsed == selector_labels("chat", Runtime.OLLAMA)


@pytest.mark.parametrize(("resolved", "facts"), ALL)
def test_every_object_has_namespace_and_the_standard_labels(resolved: Resolved, facts: ClusterFacts) -> None:
    for obj in render(resolved, facts):
        meta = obj["metadata"]
        assert meta["namespace"] == resolved.namespace
        assert "ownerReferences" not in meta  # the operator sets them
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "llmstage"
        assert labels["app.kubernetes.io/instance"] == resolved.name
        assert labels["app.kubernetes.io/managed-by"] == "llmstage"
        assert labels["app.kubernetes.io/component"] in {"server", "cache"}
        assert labels["llmstage.io/stage"] == resolved.stage.value
        assert labels["llmstage.io/runtime"] == resolved.runtime.value


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_pod_selector_is_stable_and_never_contains_the_stage(resolved: Resolved, facts: ClusterFacts) -> None:
    deployment = render_deployment(resolved)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == selector_labels(resolved.name, resolved.runtime)
    assert "llmstage.io/stage" not in selector
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["llmstage.io/stage"] == resolved.stage.value


def test_promotion_with_the_same_runtime_keeps_the_deployment_selector() -> None:
    staging = render_deployment(STAGING_OLLAMA)
    production = render_deployment(replace(STAGING_OLLAMA, stage=Stage.PRODUCTION))
    assert staging["metadata"]["name"] == production["metadata"]["name"]
    assert staging["spec"]["selector"] == production["spec"]["selector"]


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_selectors_of_service_pdb_monitor_and_spread_match_the_pods(
    resolved: Resolved, facts: ClusterFacts
) -> None:
    kinds = by_kind(render(resolved, facts))
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selectors = [kinds["Service"]["spec"]["selector"]]
    selectors += [
        kinds[k]["spec"]["selector"]["matchLabels"]
        for k in ("PodDisruptionBudget", "PodMonitor")
        if k in kinds
    ]
    selectors += [
        c["labelSelector"]["matchLabels"]
        for c in kinds["Deployment"]["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()


def test_owner_reference_points_at_the_llmservice() -> None:
    assert owner_reference(PRODUCTION_VLLM) == {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "name": "chat",
        "uid": PRODUCTION_VLLM.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


@pytest.mark.parametrize(("resolved", "facts"), ALL)
def test_runtime_objects_lists_every_rendered_object_but_the_shared_ones(
    resolved: Resolved, facts: ClusterFacts
) -> None:
    """The Service and the NetworkPolicy serve both runtimes: they are not kept through a cutover."""
    listed = {(r.api_version, r.kind, r.name) for r in runtime_objects(resolved.name, resolved.runtime)}
    rendered = {
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in render(resolved, facts)
        # Shared by both runtimes and following the serving one: the Service, the NetworkPolicy and
        # spec.routing's objects.
        if o["kind"] not in ("Service", "NetworkPolicy", "InferencePool", "HTTPRoute")
    }
    assert rendered <= listed


# ---------------------------------------------------------------- Service and cutover


def test_service_selects_the_serving_runtime_during_a_cutover() -> None:
    objects = render(PRODUCTION_VLLM, serving_runtime=Runtime.OLLAMA)
    kinds = by_kind(objects)
    service = kinds["Service"]
    assert service["spec"]["selector"] == selector_labels("chat", Runtime.OLLAMA)
    assert service["metadata"]["labels"]["llmstage.io/runtime"] == "ollama"
    # ... while the new runtime's workload is rendered beside it
    assert kinds["Deployment"]["metadata"]["name"] == "chat-vllm"
    assert render(PRODUCTION_VLLM)[2]["spec"]["selector"] == selector_labels("chat", Runtime.VLLM)


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_service_has_one_stable_port_for_both_runtimes(resolved: Resolved, facts: ClusterFacts) -> None:
    service = by_kind(render(resolved, facts))["Service"]
    assert service["metadata"]["name"] == resolved.name
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
    ]
    # The port is the gateway's (render/gateway.py); the runtime listens on the pod's loopback.
    assert "ports" not in server(resolved)
    (gateway,) = [c for c in pod_spec(resolved)["containers"] if c["name"] == "gateway"]
    assert gateway["ports"][0] == {"name": "http", "containerPort": 8000, "protocol": "TCP"}


# ---------------------------------------------------------------- replicas and autoscaling


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_autoscaling_on_means_no_replicas_field(resolved: Resolved, facts: ClusterFacts) -> None:
    kinds = by_kind(render(resolved, facts))
    if resolved.autoscaling is not None:
        assert "replicas" not in kinds["Deployment"]["spec"]
        # One autoscaler, never both: KEDA creates its own HPA from the ScaledObject.
        keda = resolved.autoscaling.autoscaler is Autoscaler.KEDA
        assert ("ScaledObject" in kinds, "HorizontalPodAutoscaler" in kinds) == (keda, not keda)
    else:
        assert kinds["Deployment"]["spec"]["replicas"] == resolved.replicas
        assert "HorizontalPodAutoscaler" not in kinds and "ScaledObject" not in kinds


def test_vllm_scales_on_the_queue_depth_pods_metric() -> None:
    hpa = by_kind(render(PRODUCTION_VLLM))["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "chat-vllm",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "vllm:num_requests_waiting"},
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }
    ]
    renamed = by_kind(render(PRODUCTION_VLLM_70B_TP))["HorizontalPodAutoscaler"]
    assert renamed["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"


def test_ollama_scales_on_cpu_utilisation() -> None:
    hpa = by_kind(render(STAGING_OLLAMA))["HorizontalPodAutoscaler"]
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]


@pytest.mark.parametrize("resolved", [STAGING_OLLAMA, PRODUCTION_VLLM], ids=["ollama", "vllm"])
def test_hpa_adds_one_pod_at_a_time_and_scales_down_slowly(resolved: Resolved) -> None:
    behavior = by_kind(render(resolved))["HorizontalPodAutoscaler"]["spec"]["behavior"]
    assert behavior["scaleUp"]["policies"][0]["type"] == "Pods"
    assert behavior["scaleUp"]["policies"][0]["value"] == 1
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 600
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


# ---------------------------------------------------------------- optional objects


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_pdb_and_spread_follow_the_resolved_flags(resolved: Resolved, facts: ClusterFacts) -> None:
    kinds = by_kind(render(resolved, facts))
    assert ("PodDisruptionBudget" in kinds) == resolved.pod_disruption_budget
    spread = kinds["Deployment"]["spec"]["template"]["spec"].get("topologySpreadConstraints")
    assert bool(spread) == resolved.topology_spread
    if spread:
        assert spread[0]["topologyKey"] == "kubernetes.io/hostname"


def test_pdb_never_blocks_a_drain_forever() -> None:
    pdb = by_kind(render(PRODUCTION_OLLAMA))["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1
    assert "minAvailable" not in pdb
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize(
    ("resolved", "facts", "expected"),
    [
        (PRODUCTION_VLLM, WITH_POD_MONITOR, True),
        (PRODUCTION_VLLM, ClusterFacts(), False),
        (PRODUCTION_OLLAMA, WITH_POD_MONITOR, False),  # Ollama has no /metrics
    ],
)
def test_pod_monitor_only_for_vllm_when_the_crd_exists(
    resolved: Resolved, facts: ClusterFacts, expected: bool
) -> None:
    kinds = by_kind(render(resolved, facts))
    assert ("PodMonitor" in kinds) is expected
    if expected:
        assert kinds["PodMonitor"]["spec"]["podMetricsEndpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s"}
        ]


def test_cache_claim_takes_size_class_and_access_mode_from_resolved() -> None:
    claim = by_kind(render(PRODUCTION_VLLM))["PersistentVolumeClaim"]
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "cache"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "shared-nfs",
    }
    assert "storageClassName" not in by_kind(render(DEV_OLLAMA))["PersistentVolumeClaim"]["spec"]
    claim_name = pod_spec(PRODUCTION_VLLM)["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim_name == "chat-vllm-cache"


def test_a_claim_per_pod_is_an_ephemeral_volume_and_no_claim_object() -> None:
    objects = render(PRODUCTION_VLLM_PER_POD)
    assert "PersistentVolumeClaim" not in by_kind(objects)
    (volume,) = [v for v in pod_spec(PRODUCTION_VLLM_PER_POD)["volumes"] if v["name"] == "model-cache"]
    template = volume["ephemeral"]["volumeClaimTemplate"]
    # No storageClassName: the cluster's default class; ReadWriteOnce, which every class offers.
    assert template["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "50Gi"}},
    }
    # Labelled like our objects but not managed-by llmstage: Kubernetes owns it (through the pod),
    # so the operator's watch of its own claims and the pruning never see it.
    labels = template["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "chat" and labels["app.kubernetes.io/component"] == "cache"
    assert "app.kubernetes.io/managed-by" not in labels
    with_class = replace(
        PRODUCTION_VLLM_PER_POD, cache=ModelCache(size="9Gi", storage_class_name="gp3", per_pod=True)
    )
    (volume,) = [v for v in pod_spec(with_class)["volumes"] if v["name"] == "model-cache"]
    assert volume["ephemeral"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"


def test_an_existing_claim_is_mounted_and_never_rendered() -> None:
    assert "PersistentVolumeClaim" not in by_kind(render(STAGING_OLLAMA_EXISTING_CLAIM))
    (volume,) = [v for v in pod_spec(STAGING_OLLAMA_EXISTING_CLAIM)["volumes"] if v["name"] == "model-cache"]
    assert volume == {"name": "model-cache", "persistentVolumeClaim": {"claimName": "llama-weights"}}


@pytest.mark.parametrize(
    ("resolved", "strategy"),
    [
        (DEV_OLLAMA, {"type": "Recreate"}),
        (DEV_VLLM_GPU, {"type": "Recreate"}),
        (
            replace(DEV_OLLAMA, cache=ModelCache(size="9Gi", access_mode="ReadWriteOncePod")),
            {"type": "Recreate"},
        ),
        (STAGING_OLLAMA, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        (PRODUCTION_VLLM, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        # A ReadWriteOnce claim per pod: no Multi-Attach, each new pod brings its own.
        (
            replace(STAGING_OLLAMA, cache=ModelCache(size="9Gi", per_pod=True)),
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        ),
        (
            PRODUCTION_VLLM_PER_POD,
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        ),
    ],
    ids=["rwo-cpu", "rwo-gpu", "rwop-cpu", "rwx-cpu", "rwx-gpu", "per-pod-cpu", "per-pod-gpu"],
)
def test_update_strategy_follows_the_cache_access_mode_and_gpus(
    resolved: Resolved, strategy: dict[str, Any]
) -> None:
    assert render_deployment(resolved)["spec"]["strategy"] == strategy


SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
REPLACE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


@pytest.mark.parametrize(
    "resolved",
    [
        PRODUCTION_VLLM_70B_TP,  # autoscaled from 1, ReadWriteMany cache
        replace(PRODUCTION_VLLM_PER_POD, autoscaling=None, replicas=1),  # one pod, a claim per pod
    ],
    ids=["70b-rwx-min-1", "per-pod-1-replica"],
)
def test_a_gpu_service_that_may_run_one_pod_surges_unless_the_surge_found_no_room(resolved: Resolved) -> None:
    assert render_deployment(resolved)["spec"]["strategy"] == SURGE
    assert render_deployment(resolved, surge_blocked=True)["spec"]["strategy"] == REPLACE
    assert by_kind(render(resolved, surge_blocked=True))["Deployment"]["spec"]["strategy"] == REPLACE


def test_surge_blocked_changes_nothing_where_there_is_no_surge() -> None:
    for resolved in (PRODUCTION_VLLM_PER_POD, DEV_VLLM_GPU, STAGING_OLLAMA, DEV_OLLAMA):
        assert render(resolved, surge_blocked=True) == render(resolved)


# ---------------------------------------------------------------- vLLM


@pytest.mark.parametrize(
    "resolved", [DEV_VLLM_GPU, PRODUCTION_VLLM, PRODUCTION_VLLM_70B_TP], ids=["dev", "prod", "70b"]
)
def test_vllm_tensor_parallel_size_equals_the_gpu_count(resolved: Resolved) -> None:
    assert resolved.resources.gpu is not None
    count = resolved.resources.gpu.count
    assert args_of(resolved)["tensor-parallel-size"] == str(count)
    assert server(resolved)["resources"]["limits"]["nvidia.com/gpu"] == count


def test_vllm_args() -> None:
    args = server(PRODUCTION_VLLM_70B_TP)["args"]
    assert args == [
        # Positional, after the image's `vllm serve`: --model is deprecated since vLLM 0.12.
        "meta-llama/Llama-3.1-70B-Instruct",
        "--revision=1605565b47bb9346c5515c34102e054115b4f98b",
        "--served-model-name=assistant",
        # Loopback: clients reach it through the gateway on 8000 (render/gateway.py).
        "--host=127.0.0.1",
        "--port=8001",
        "--tensor-parallel-size=4",
        "--gpu-memory-utilization=0.92",
        "--max-model-len=16384",
        "--dtype=bfloat16",
        # In-flight requests drain on SIGTERM: the grace period (120) less preStop (15) and 15 s.
        "--shutdown-timeout=90",
        "--kv-cache-dtype=fp8",  # extra args last, verbatim
        "--enable-chunked-prefill",
    ]
    assert "revision" not in args_of(PRODUCTION_VLLM)
    assert "quantization" not in args_of(PRODUCTION_VLLM)
    quantized = replace(PRODUCTION_VLLM, vllm=replace(PRODUCTION_VLLM.vllm, quantization="fp8"))  # type: ignore[type-var]
    assert args_of(quantized)["quantization"] == "fp8"


def test_vllm_keeps_its_own_batch_size_unless_the_spec_caps_it() -> None:
    """--max-num-seqs equal to the expected users switched off continuous batching (max-num-seqs=1
    for two users on two replicas): only an explicit spec.vllm.maxNumSeqs renders the flag."""
    assert "max-num-seqs" not in args_of(PRODUCTION_VLLM)
    assert args_of(DEV_VLLM_GPU)["max-num-seqs"] == "8"  # spec.vllm.maxNumSeqs set


@pytest.mark.parametrize("resolved", [PRODUCTION_VLLM, DEV_VLLM_GPU, PRODUCTION_VLLM_70B_TP])
def test_vllm_containers_name_a_user_for_torch(resolved: Resolved) -> None:
    """UID 2000 has no passwd entry in vLLM's images (no USER, no vllm user); torch's import calls
    getpass.getuser(), which reads LOGNAME or USER before the passwd database (the real-node tests
    run vLLM's CPU image as this user)."""
    spec = pod_spec(resolved)
    assert spec["securityContext"]["runAsUser"] == 2000
    for container in spec["initContainers"] + runtime_containers(spec):
        env = env_of(container)
        assert env["USER"]["value"] == env["LOGNAME"]["value"] == "vllm", container["name"]
        assert env["HOME"]["value"] == "/home/vllm"


def test_vllm_downloads_in_an_init_container_before_the_load_budget() -> None:
    """The download itself needs the Hugging Face Hub and the real image: not shown here."""
    spec = pod_spec(PRODUCTION_VLLM_70B_TP)
    (init,) = spec["initContainers"]
    assert init["name"] == "download-model"
    assert init["image"] == spec["containers"][0]["image"]
    env = env_of(init)
    assert env["LLMSTAGE_MODEL"]["value"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert env["LLMSTAGE_REVISION"]["value"] == "1605565b47bb9346c5515c34102e054115b4f98b"
    assert env["HF_HOME"] == env_of(spec["containers"][0])["HF_HOME"]
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": HF_TOKEN.name, "key": HF_TOKEN.key}
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "void"
    assert "nvidia.com/gpu" not in init["resources"]["limits"]
    script = init["command"][-1]
    assert init["command"][:2] == ["python3", "-c"]
    compile(script, "download-model", "exec")  # valid Python
    assert '"*.safetensors", "*.bin"' in script and "original/**/*" in script
    assert "meta-llama" not in script  # the repository comes in through the environment
    # A 141 GB download fits the progress deadline at 25 MB/s; the probe only covers the load.
    deadline = render_deployment(PRODUCTION_VLLM_70B_TP)["spec"]["progressDeadlineSeconds"]
    assert deadline >= 141e9 / 25e6


# A stand-in for huggingface_hub: the script's own logic runs for real, the Hub does not.
FAKE_HUB = """
import json, os
RANKS = json.loads(os.environ["FAKE_RANKS"])
CACHE = os.environ["FAKE_CACHE"]
def offline():
    if os.environ.get("FAKE_OFFLINE"):
        raise OSError("no route to the Hub")
class HfApi:
    def list_repo_files(self, repo, revision=None):
        offline()
        return ["config.json", "model.safetensors"]
def snapshot_download(repo, revision=None, local_dir=None, local_files_only=False, **kwargs):
    folder = local_dir or os.path.join(CACHE, repo, revision or "main")
    if local_files_only:  # the cache only, as huggingface_hub does
        if not os.path.isdir(folder):
            raise FileNotFoundError(folder)
        return folder
    offline()
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([repo, revision, local_dir]) + "\\n")
    os.makedirs(folder, exist_ok=True)
    if local_dir:
        with open(os.path.join(local_dir, "adapter_config.json"), "w") as f:
            json.dump({"r": RANKS[repo], "peft_type": "LORA"}, f)
        open(os.path.join(local_dir, "adapter_model.safetensors"), "w").close()
    else:
        for name in ("config.json", "model.safetensors"):
            open(os.path.join(folder, name), "w").close()
    return folder
"""


def run_download_step(
    resolved: Resolved, tmp_path: Path, ranks: dict[str, int], offline: bool = False
) -> subprocess.CompletedProcess[str]:
    (init,) = pod_spec(resolved)["initContainers"]
    (tmp_path / "hub").mkdir(exist_ok=True)
    (tmp_path / "hub" / "huggingface_hub.py").write_text(FAKE_HUB)
    env = {e["name"]: e["value"] for e in init["env"] if "value" in e}
    # Paths of the pod's cache volume, moved under tmp_path.
    env["LLMSTAGE_LORA"] = env["LLMSTAGE_LORA"].replace("/models/", f"{tmp_path}/models/")
    env |= {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(tmp_path / "hub"),
        "FAKE_RANKS": json.dumps(ranks),
        "FAKE_LOG": str(tmp_path / "downloads.log"),
        "FAKE_CACHE": str(tmp_path / "hf-cache"),
        **({"FAKE_OFFLINE": "1"} if offline else {}),
    }
    return subprocess.run(
        [sys.executable, "-c", init["command"][-1]], env=env, capture_output=True, text=True, check=False
    )


def test_lora_adapters_are_downloaded_to_the_paths_vllm_is_given(tmp_path: Path) -> None:
    """The download step's script, run with a stand-in Hub: each adapter lands in the folder its
    --lora-modules entry names; the base model is downloaded first."""
    result = run_download_step(
        PRODUCTION_VLLM_LORA, tmp_path, {"acme/llama31-8b-sql-lora": 16, "acme/llama31-8b-support-lora": 64}
    )
    assert result.returncode == 0, result.stderr
    downloads = [json.loads(line) for line in (tmp_path / "downloads.log").read_text().splitlines()]
    args = server(PRODUCTION_VLLM_LORA)["args"]
    modules = [json.loads(a) for a in args[args.index("--lora-modules") + 1 :] if a.startswith("{")]
    assert downloads[0][0] == PRODUCTION_VLLM_LORA.model.hugging_face_id
    assert [(repo, rev) for repo, rev, _ in downloads[1:]] == [
        ("acme/llama31-8b-sql-lora", None),
        ("acme/llama31-8b-support-lora", "v2"),
    ]
    assert [d[2].replace(f"{tmp_path}", "") for d in downloads[1:]] == [m["path"] for m in modules]
    assert [m["name"] for m in modules] == ["sql", "support-v2"]
    assert {m["base_model_name"] for m in modules} == {PRODUCTION_VLLM_LORA.served_model_name}
    assert "--enable-lora" in args and "--max-loras=2" in args and "--max-lora-rank=64" in args
    assert args.count("--lora-modules") == 1  # a second flag would replace the first one's list


def test_a_restart_with_the_cache_filled_does_not_ask_the_hub(tmp_path: Path) -> None:
    """The step listed the repository's files on every start, so a pod restarted without a route
    to the Hub (an outage, an air-gapped node) failed although the weights were on its volume."""
    ranks = {"acme/llama31-8b-sql-lora": 16, "acme/llama31-8b-support-lora": 64}
    assert run_download_step(PRODUCTION_VLLM_LORA, tmp_path, ranks).returncode == 0
    log = tmp_path / "downloads.log"
    first = log.read_text()
    again = run_download_step(PRODUCTION_VLLM_LORA, tmp_path, ranks, offline=True)
    assert again.returncode == 0, again.stderr
    assert log.read_text() == first  # nothing downloaded, nothing listed
    assert "is in the cache" in again.stdout and "the Hub is not asked" in again.stdout
    # An empty cache without the Hub fails, with the Hub's error.
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = run_download_step(PRODUCTION_VLLM_LORA, empty, ranks, offline=True)
    assert failed.returncode != 0 and "no route to the Hub" in failed.stderr


def test_with_weights_from_elsewhere_the_step_downloads_the_adapters_only(tmp_path: Path) -> None:
    """spec.model.source oci (or pvc, s3, gcs) with adapters: download-lora fetches no base model."""
    result = run_download_step(
        PRODUCTION_VLLM_SOURCE_OCI_LORA,
        tmp_path,
        {"acme/llama31-8b-sql-lora": 16, "acme/llama31-8b-support-lora": 64},
    )
    assert result.returncode == 0, result.stderr
    downloads = [json.loads(line) for line in (tmp_path / "downloads.log").read_text().splitlines()]
    assert [repo for repo, _, _ in downloads] == ["acme/llama31-8b-sql-lora", "acme/llama31-8b-support-lora"]
    assert all(local_dir for _, _, local_dir in downloads)


def test_a_lora_adapter_above_the_max_rank_stops_the_download_step_with_the_fix(tmp_path: Path) -> None:
    result = run_download_step(
        PRODUCTION_VLLM_LORA, tmp_path, {"acme/llama31-8b-sql-lora": 16, "acme/llama31-8b-support-lora": 128}
    )
    assert result.returncode == 1
    assert (
        "has rank 128, above vLLM's --max-lora-rank 64: set spec.lora.maxRank to at least 128"
        in result.stderr
    )


def test_secrets_are_rendered_only_by_reference() -> None:
    env = env_of(server(PRODUCTION_VLLM))
    assert "HF_TOKEN" not in env  # the download step's only
    download = next(c for c in pod_spec(PRODUCTION_VLLM)["initContainers"] if c["name"] == "download-model")
    assert env_of(download)["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": HF_TOKEN.name, "key": HF_TOKEN.key}},
    }
    assert env["VLLM_API_KEY"] == {
        "name": "VLLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": API_KEY.name, "key": API_KEY.key}},
    }
    assert not any(arg.startswith("--api-key") for arg in server(PRODUCTION_VLLM)["args"])
    # No Secret objects, no literal values for anything secret-like, anywhere.
    for case, (resolved, facts) in CASES.items():
        for obj in render(resolved, facts):
            assert obj["kind"] != "Secret", case
        for spec in pod_specs(resolved):
            for container in spec.get("initContainers", []) + spec["containers"]:
                for variable in container["env"]:
                    if any(word in variable["name"] for word in ("TOKEN", "KEY", "SECRET", "PASSWORD")):
                        assert "value" not in variable, (case, variable)


def test_no_api_key_env_without_a_ref() -> None:
    env = env_of(server(DEV_VLLM_GPU))
    assert "VLLM_API_KEY" not in env


def test_the_hugging_face_token_reaches_the_download_step_only() -> None:
    """The server reads the cache offline: a token there would only widen what a compromised (or
    --trust-remote-code) server could read."""
    spec = pod_spec(DEV_VLLM_GPU)
    holders = [
        c["name"] for c in spec.get("initContainers", []) + spec["containers"] if "HF_TOKEN" in env_of(c)
    ]
    assert holders == ["download-model"]
    assert env_of(server(DEV_VLLM_GPU))["HF_HUB_OFFLINE"]["value"] == "1"


def test_vllm_caches_live_on_the_cache_volume() -> None:
    container = server(PRODUCTION_VLLM)
    env = env_of(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["HF_HOME"]["value"].startswith(mounts["model-cache"] + "/")
    assert env["VLLM_CACHE_ROOT"]["value"].startswith(mounts["model-cache"] + "/")
    assert env["HOME"]["value"] == mounts["home"]


@pytest.mark.parametrize(("resolved", "size"), [(PRODUCTION_VLLM, "2Gi"), (PRODUCTION_VLLM_70B_TP, "8Gi")])
def test_dev_shm_is_a_memory_volume_sized_for_tensor_parallelism(resolved: Resolved, size: str) -> None:
    spec = pod_spec(resolved)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in spec["containers"][0]["volumeMounts"]


def test_vllm_probes_use_health_and_the_startup_budget_grows_with_the_model() -> None:
    def startup_seconds(resolved: Resolved) -> int:
        probe = server(resolved)["startupProbe"]
        assert probe["httpGet"] == {"path": "/health", "port": 8000}
        return int(probe["periodSeconds"] * probe["failureThreshold"])

    container = server(PRODUCTION_VLLM)
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    # Same endpoint (the only one that reflects the engine), different roles: readiness takes a
    # pod out within 15 s, liveness restarts one whose engine died only after a minute of 503s.
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert (
        readiness["periodSeconds"] * readiness["failureThreshold"]
        < liveness["periodSeconds"] * liveness["failureThreshold"]
    )
    small, large = startup_seconds(PRODUCTION_VLLM), startup_seconds(PRODUCTION_VLLM_70B_TP)
    assert 10 * 60 <= small < large
    assert 20 * 60 <= large <= 40 * 60  # tens of minutes for 70B
    unknown = replace(PRODUCTION_VLLM, model=replace(PRODUCTION_VLLM.model, parameters_billion=None))
    assert startup_seconds(unknown) >= large
    # The Deployment does not report a failed rollout while a model may still be loading.
    deployment = render_deployment(PRODUCTION_VLLM_70B_TP)
    assert deployment["spec"]["progressDeadlineSeconds"] > large


def test_vllm_pod_settings_for_gpus_and_shutdown() -> None:
    spec = pod_spec(PRODUCTION_VLLM)
    assert spec["enableServiceLinks"] is False
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["priorityClassName"] == "llm-serving"
    assert spec["terminationGracePeriodSeconds"] > 15
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "15"]}}}
    assert spec["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert spec["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4"]}
                        ]
                    }
                ]
            }
        }
    }


def test_gpu_product_is_anded_into_every_user_node_selector_term() -> None:
    spec = pod_spec(PRODUCTION_VLLM_70B_TP)
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 2
    for term in terms:
        assert {
            "key": "nvidia.com/gpu.product",
            "operator": "In",
            "values": ["NVIDIA-H100-80GB-HBM3"],
        } in term["matchExpressions"]
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    # The user already tolerates the GPU taint: no duplicate.
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    # The input is not mutated by the merge.
    assert PRODUCTION_VLLM_70B_TP.scheduling.affinity is not None
    user_terms = PRODUCTION_VLLM_70B_TP.scheduling.affinity["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert all(len(term["matchExpressions"]) == 1 for term in user_terms)


def test_gpu_product_merge_treats_null_as_unset_and_keeps_the_rest_of_the_affinity() -> None:
    anti_affinity = {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 50,
                "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}},
            }
        ]
    }
    user = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": None},
        "podAntiAffinity": anti_affinity,
    }
    spec = pod_spec(replace(PRODUCTION_VLLM, scheduling=Scheduling(affinity=user)))
    assert spec["affinity"]["podAntiAffinity"] == anti_affinity
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4"]}
                ]
            }
        ]
    }


def test_gpu_resource_name_drives_limits_and_toleration() -> None:
    amd = replace(
        DEV_VLLM_GPU,
        resources=Resources(cpu="4", memory="24Gi", gpu=GPU(count=2, resource_name="amd.com/gpu")),
    )
    spec = pod_spec(amd)
    assert spec["containers"][0]["resources"]["limits"] == {"memory": "24Gi", "amd.com/gpu": 2}
    assert spec["tolerations"] == [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "affinity" not in spec  # no product asked for


# ---------------------------------------------------------------- Ollama


def test_ollama_env_is_explicit() -> None:
    env = env_of(server(STAGING_OLLAMA))
    values = {name: e.get("value") for name, e in env.items()}
    assert values["OLLAMA_HOST"] == "127.0.0.1:8001"  # loopback: the gateway serves port 8000
    assert values["OLLAMA_NUM_PARALLEL"] == "3"
    assert values["OLLAMA_CONTEXT_LENGTH"] == "8192"
    assert values["OLLAMA_KEEP_ALIVE"] == "-1"
    assert values["OLLAMA_MODELS"] == "/models"
    assert values["OLLAMA_FLASH_ATTENTION"] == "1"  # the user's extra env


def test_user_env_cannot_override_what_llmstage_sets() -> None:
    settings = replace(DEV_OLLAMA.ollama, env={"OLLAMA_HOST": "0.0.0.0:11434", "OLLAMA_DEBUG": "1"})  # type: ignore[type-var]
    container = server(replace(DEV_OLLAMA, ollama=settings))
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert env_of(container)["OLLAMA_HOST"]["value"] == "127.0.0.1:8001"
    assert env_of(container)["OLLAMA_DEBUG"]["value"] == "1"


def test_user_env_may_replace_the_ollama_defaults_that_are_only_defaults() -> None:
    user = {"OLLAMA_MAX_LOADED_MODELS": "2", "NVIDIA_VISIBLE_DEVICES": "all"}
    container = server(replace(DEV_OLLAMA, ollama=replace(DEV_OLLAMA.ollama, env=user)))  # type: ignore[type-var]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert env_of(container)["OLLAMA_MAX_LOADED_MODELS"]["value"] == "2"
    assert env_of(container)["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"


def test_ollama_pulls_the_model_in_an_init_container_into_the_cache() -> None:
    spec = pod_spec(DEV_OLLAMA)
    (init,) = spec["initContainers"]
    assert init["name"] == "pull-model"
    assert init["image"] == spec["containers"][0]["image"] == "ollama/ollama:0.17.4"
    script = init["command"][-1]
    assert 'ollama pull "$LLMSTAGE_PULL"' in script
    assert env_of(init)["LLMSTAGE_PULL"]["value"] == "llama3.1:8b"
    assert env_of(init)["OLLAMA_MODELS"]["value"] == env_of(server(DEV_OLLAMA))["OLLAMA_MODELS"]["value"]
    assert {"name": "model-cache", "mountPath": "/models"} in init["volumeMounts"]
    # The served name is the tag: nothing to copy (the script copies only when LLMSTAGE_MODEL is set).
    assert "LLMSTAGE_MODEL" not in env_of(init)


@pytest.mark.parametrize("resolved", [DEV_OLLAMA, STAGING_OLLAMA, DEV_OLLAMA_REGISTRY])
def test_ollama_never_prunes_and_pulls_one_pod_at_a_time(resolved: Resolved) -> None:
    """Every `ollama serve` start deletes partial and unreferenced blobs unless OLLAMA_NOPRUNE is
    set (server/routes.go Serve), i.e. another pod's download in progress on a shared cache; and
    two pulls of one blob write the same BLOB-partial file (server/download.go). Two pods pulling
    into one volume at once for real is the real-node tests'; whether the ubuntu
    base of the upstream image ships flock was not checked here (the script says so if not)."""
    spec = pod_spec(resolved)
    for container in spec["initContainers"] + runtime_containers(spec):
        assert env_of(container)["OLLAMA_NOPRUNE"]["value"] == "1", container["name"]
    script = spec["initContainers"][0]["command"][-1]
    lock, pull = script.index("flock 9"), script.index("ollama pull")
    assert '9>>"$OLLAMA_MODELS/.llmstage-pull.lock"' in script
    assert lock < script.index('ollama show "$LLMSTAGE_PULL"') < pull  # checked and pulled under the lock


BLOB = "a" * 64
FAKE_OLLAMA = f"""#!/bin/sh
# Records each foreground call (`serve` runs in the background: its start is what `list`, the wait
# for it, shows); `show` finds nothing, `pull` writes the manifest and its blob as Ollama does.
[ "$1" = serve ] && exec sleep 30
echo "$*" >> "$CALLS"
case "$1" in
  show) exit 1 ;;
  pull) manifest="$OLLAMA_MODELS/manifests/$LLMSTAGE_PULL_MANIFEST"
        mkdir -p "$(dirname "$manifest")" "$OLLAMA_MODELS/blobs"
        echo '{{"layers":[{{"digest":"sha256:{BLOB}"}}]}}' > "$manifest"
        : > "$OLLAMA_MODELS/blobs/sha256-{BLOB}" ;;
esac
"""


def run_pull_step(tmp_path: Path, resolved: Resolved) -> list[str]:
    """The rendered pull-model script under /bin/sh with a fake `ollama`: the calls it made."""
    init = pod_spec(resolved)["initContainers"][0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "ollama").write_text(FAKE_OLLAMA)
    (bin_dir / "ollama").chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {k: v["value"] for k, v in env_of(init).items() if "value" in v}
    env |= {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "OLLAMA_MODELS": str(tmp_path / "models"),
        "HOME": str(tmp_path),
        "CALLS": str(calls),
    }
    (tmp_path / "models").mkdir(exist_ok=True)
    done = subprocess.run(init["command"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return calls.read_text().split("\n")[:-1]


def test_a_model_already_in_the_cache_starts_no_server_in_the_pull_step(tmp_path: Path) -> None:
    """A restart, or a new pod on a filled cache: the manifest and every blob it names are there,
    so the step ends at once instead of starting `ollama serve` to ask (part of P7's start)."""
    assert run_pull_step(tmp_path, DEV_OLLAMA) == ["list", "show llama3.1:8b", "pull llama3.1:8b"]
    assert run_pull_step(tmp_path, DEV_OLLAMA) == []
    # A blob missing (deleted by hand, a disk restored in part): the step pulls again.
    (blob,) = (tmp_path / "models" / "blobs").iterdir()
    blob.unlink()
    assert "pull llama3.1:8b" in run_pull_step(tmp_path, DEV_OLLAMA)


def test_a_cached_model_under_another_served_name_is_copied_before_the_step_skips(tmp_path: Path) -> None:
    served = replace(DEV_OLLAMA, served_model_name="chat")
    first = run_pull_step(tmp_path, served)
    assert first[-2:] == ["pull llama3.1:8b", "cp llama3.1:8b chat"]
    # The fake `cp` wrote no copy, so the copy still differs: the step starts the server again.
    assert run_pull_step(tmp_path, served)[0] == "list"
    manifests = tmp_path / "models" / "manifests"
    env = env_of(pod_spec(served)["initContainers"][0])
    copy = manifests / env["LLMSTAGE_MODEL_MANIFEST"]["value"]
    copy.parent.mkdir(parents=True)
    copy.write_bytes((manifests / env["LLMSTAGE_PULL_MANIFEST"]["value"]).read_bytes())
    assert run_pull_step(tmp_path, served) == []


def test_a_served_name_other_than_the_tag_is_copied_after_the_pull() -> None:
    """Clients send status.servedModelName; Ollama 404s a name it does not have, so the pulled
    model is copied to it (`ollama cp`, as KubeAI does), unless the copy is already identical."""
    served = replace(DEV_OLLAMA, served_model_name="meta-llama/Llama-3.1-8B-Instruct")
    spec = pod_spec(served)
    init, main = spec["initContainers"][0], spec["containers"][0]
    script = init["command"][-1]
    assert 'ollama cp "$LLMSTAGE_PULL" "$LLMSTAGE_MODEL"' in script
    assert script.index("ollama pull") < script.index("ollama cp")
    env = env_of(init)
    assert env["LLMSTAGE_PULL"]["value"] == "llama3.1:8b"
    assert env["LLMSTAGE_MODEL"]["value"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert env["LLMSTAGE_PULL_MANIFEST"]["value"] == "registry.ollama.ai/library/llama3.1/8b"
    assert (
        env["LLMSTAGE_MODEL_MANIFEST"]["value"]
        == "registry.ollama.ai/meta-llama/Llama-3.1-8B-Instruct/latest"
    )
    assert 'cmp -s "$manifests/$LLMSTAGE_PULL_MANIFEST" "$manifests/$LLMSTAGE_MODEL_MANIFEST"' in script
    # The server loads and serves the name clients send.
    assert env_of(main)["LLMSTAGE_MODEL"]["value"] == "meta-llama/Llama-3.1-8B-Instruct"
    # Names that are the same model for Ollama need no copy (default tag, case).
    same = replace(
        DEV_OLLAMA,
        model=replace(DEV_OLLAMA.model, ollama_tag="llama3.1"),
        served_model_name="Llama3.1:latest",
    )
    assert "LLMSTAGE_MODEL" not in env_of(pod_spec(same)["initContainers"][0])


def test_a_private_registry_is_pulled_with_its_ca_and_key_then_copied() -> None:
    spec = pod_spec(DEV_OLLAMA_REGISTRY)
    init = spec["initContainers"][0]
    env = env_of(init)
    assert env["LLMSTAGE_PULL"]["value"] == "registry.internal:5000/library/smollm2:135m"
    assert env["LLMSTAGE_MODEL"]["value"] == "chat"
    assert "LLMSTAGE_PULL_INSECURE" not in env  # HTTPS: the script passes --insecure only when it is set
    assert env["SSL_CERT_FILE"]["value"] == "/etc/llmstage/registry-ca/ca.crt"
    mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert mounts["registry-ca"] == {
        "name": "registry-ca",
        "mountPath": "/etc/llmstage/registry-ca",
        "readOnly": True,
    }
    assert mounts["registry-key"] == {
        "name": "registry-key",
        "mountPath": "/home/ollama/.ollama",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["registry-key"]["secret"] == {
        "secretName": "ollama-registry-key",
        "items": [{"key": "id_ed25519", "path": "id_ed25519"}],
        "defaultMode": 0o440,
    }
    assert volumes["registry-ca"]["configMap"] == {
        "name": "registry-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    # The key is for the pull only: the server never sees it.
    server_mounts = {m["name"] for m in spec["containers"][0]["volumeMounts"]}
    assert "registry-key" not in server_mounts and "SSL_CERT_FILE" not in env_of(spec["containers"][0])
    insecure = replace(
        DEV_OLLAMA_REGISTRY,
        ollama=replace(  # type: ignore[type-var]
            DEV_OLLAMA_REGISTRY.ollama,
            registry=OllamaRegistry(host="registry.internal:5000", insecure=True),
        ),
    )
    insecure_init = pod_spec(insecure)["initContainers"][0]
    assert env_of(insecure_init)["LLMSTAGE_PULL_INSECURE"]["value"] == "1"
    assert 'ollama pull --insecure "$LLMSTAGE_PULL"' in insecure_init["command"][-1]
    assert "SSL_CERT_FILE" not in env_of(insecure_init)


def test_model_names_never_reach_a_shell_script() -> None:
    hostile = replace(
        DEV_OLLAMA,
        model=replace(DEV_OLLAMA.model, ollama_tag='x"; rm -rf / #'),
        served_model_name='y"; rm -rf / #',
    )
    spec = pod_spec(hostile)
    assert env_of(spec["initContainers"][0])["LLMSTAGE_PULL"]["value"] == 'x"; rm -rf / #'
    assert env_of(spec["initContainers"][0])["LLMSTAGE_MODEL"]["value"] == 'y"; rm -rf / #'
    assert "rm -rf /" not in json.dumps(spec["initContainers"][0]["command"])
    assert "rm -rf /" not in json.dumps(spec["containers"][0]["command"])
    assert "rm -rf /" not in json.dumps(spec["containers"][0]["startupProbe"])
    vllm = replace(PRODUCTION_VLLM, model=replace(PRODUCTION_VLLM.model, hugging_face_id='a/b"; rm -rf /'))
    assert "rm -rf /" not in json.dumps(pod_spec(vllm)["initContainers"][0]["command"])


def test_no_ollama_probe_loads_the_model_so_no_timeout_can_abort_a_load() -> None:
    """Ollama aborts a load when the request that started it goes away, and the kubelet kills an
    exec probe at its timeout: a probe that loads restarts a long load from zero forever. The load
    is the loader's, in the server container; the startup probe waits for its marker. That a
    running pod then loads and serves (and restarts on a failed load) is for the real-node tests;
    the scripts were run here against an Ollama 0.12.10 binary built from the module (its output
    format checked unchanged in 0.17.4's cmd/cmd.go)."""
    container = server(DEV_OLLAMA)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "ollama" not in json.dumps(container[probe]), probe
    startup = container["startupProbe"]
    assert startup["exec"]["command"] == ["/bin/sh", "-c", 'test -e "$LLMSTAGE_LOADED"']
    assert env_of(container)["LLMSTAGE_LOADED"]["value"].startswith("/tmp/")
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 300 + 5 * 8  # the load budget of an 8B model: 300 s + 5 s per billion
    assert container["readinessProbe"]["httpGet"]["port"] == 8000  # the gateway's port
    script = container["command"][-1]
    assert script.rstrip().endswith("exec ollama serve")  # the server is the main process
    assert 'ollama run "$LLMSTAGE_MODEL" "$prompt"' in script
    assert "kill -HUP $$" in script  # a failed load restarts the container, with a non-zero status


def test_the_loader_detects_embedding_models_from_their_capabilities() -> None:
    """`ollama run MODEL ""` fails for embedding models ("embedding models require input text"):
    the loader reads the Capabilities section of `ollama show` and sends text to those."""
    script = server(DEV_OLLAMA)["command"][-1]
    assert 'info=$(ollama show "$LLMSTAGE_MODEL")' in script
    awk = script[script.index("awk '") + 5 : script.index("'; then")]
    # `ollama show` of 0.12.10 and 0.17.4 (cmd/cmd.go showInfo): sections of indented rows, padded
    # with spaces.
    show_generative = (
        "  Model\n    architecture        llama      \n    embedding length    576        \n\n"
        '  Capabilities\n    completion    \n    tools    \n\n  Parameters\n    stop    "<|im_end|>"    \n\n'
    )
    show_embedding = "  Model\n    architecture    bert    \n\n  Capabilities\n    embedding    \n\n"

    def is_embedding(show: str) -> bool:
        return subprocess.run(["awk", awk], input=show, text=True).returncode == 0

    assert is_embedding(show_embedding) and not is_embedding(show_generative)


def test_ollama_gpu_is_optional() -> None:
    cpu, gpu = pod_spec(DEV_OLLAMA), pod_spec(DEV_OLLAMA_GPU)
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"]["limits"]
    assert "tolerations" not in cpu and "runtimeClassName" not in cpu
    assert env_of(cpu["containers"][0])["NVIDIA_VISIBLE_DEVICES"]["value"] == "void"
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert gpu["runtimeClassName"] == "nvidia"
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(gpu["containers"][0])  # the device plugin sets it


# ---------------------------------------------------------------- security


@pytest.mark.parametrize(("resolved", "facts"), ALL)
def test_every_pod_is_locked_down(resolved: Resolved, facts: ClusterFacts) -> None:
    for spec in pod_specs(resolved):
        check_locked_down(resolved, spec)


def check_locked_down(resolved: Resolved, spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    # Never root; no IDs at all only where the platform assigns them (OpenShift's restricted-v2).
    if resolved.pod_security.platform_assigns_ids:
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(spec["securityContext"])
    else:
        assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # No API token in a server unless spec.pod asks for one.
    assert spec["automountServiceAccountToken"] is resolved.pod.automount_service_account_token
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert not container["securityContext"].get("privileged", False)
        assert container["image"].split(":")[-1] not in ("", "latest")  # pinned
        # Read-only root wherever the runtime allows it: everything but containers with GPUs, whose
        # root the NVIDIA container toolkit writes into.
        has_gpu = any("gpu" in key for key in container["resources"].get("limits", {}))
        assert container["securityContext"].get("readOnlyRootFilesystem", False) is not has_gpu, container[
            "name"
        ]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        if container["name"] == "gateway":  # nginx writes its configuration and pid under /tmp only
            assert mounts == {"/tmp"}
        elif not has_gpu:  # everything it writes is a volume: HOME, /tmp, the cache
            assert {"/tmp", env_of(container)["HOME"]["value"]} <= mounts, container["name"]


@pytest.mark.parametrize(("resolved", "facts"), ALL)
def test_no_duplicate_names_in_keyed_lists(resolved: Resolved, facts: ClusterFacts) -> None:
    """Server-side apply rejects duplicate keys in env, volumes, mounts, containers and ports."""
    for spec in pod_specs(resolved):
        check_unique_names(spec)


def check_unique_names(spec: dict[str, Any]) -> None:
    containers = spec.get("initContainers", []) + spec["containers"]
    for items in (
        [spec["volumes"], containers]
        + [c["env"] for c in containers]
        + [c["volumeMounts"] for c in containers]
    ):
        names = [item.get("name", item.get("mountPath")) for item in items]
        assert len(names) == len(set(names)), names
    volumes = {v["name"] for v in spec["volumes"]}
    for container in containers:
        assert {m["name"] for m in container["volumeMounts"]} <= volumes


# ---------------------------------------------------------------- purity and quoting


@pytest.mark.parametrize(("resolved", "facts"), DEPLOYMENTS)
def test_rendering_is_deterministic_and_does_not_share_state(resolved: Resolved, facts: ClusterFacts) -> None:
    first = render(resolved, facts)
    by_kind(first)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"].clear()
    assert render(resolved, facts) == render(resolved, facts) != first


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'with "quotes"',
        "colon: space",
        "# hash",
        "{braces}",
        "multi\nline",
        "tab\t",
        "é ü 中文",
        "emoji 😀",
        "line\u2028separator",
        "nel\x85",
        "del\x7f",
        "'single'",
        "- dash",
        "yes",
        "0.9",
        "null",
    ],
)
def test_strings_from_users_survive_the_template_exactly(text: str) -> None:
    assert yaml.safe_load(f"key: {to_json(text)}") == {"key": text}
    resolved = replace(
        PRODUCTION_VLLM,
        served_model_name=text,
        scheduling=Scheduling(node_selector={"pool": text}),
        vllm=replace(PRODUCTION_VLLM.vllm, extra_args=(text,)),  # type: ignore[type-var]
    )
    container = server(resolved)
    assert f"--served-model-name={text}" in container["args"]
    assert container["args"][-1] == text
    assert pod_spec(resolved)["nodeSelector"] == {"pool": text}


def test_runtime_without_its_settings_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="runtime vllm without vllm settings"):
        render(replace(PRODUCTION_VLLM, vllm=None))
    with pytest.raises(ValueError, match="runtime ollama without ollama settings"):
        render(replace(DEV_OLLAMA, ollama=None))


# ---------------------------------------------------------------- KEDA (spec.autoscaling.autoscaler keda)


def test_keda_scales_vllm_on_the_waiting_requests_of_its_own_pods_from_prometheus() -> None:
    scaled = by_kind(render(PRODUCTION_VLLM_KEDA))["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["name"] == "chat-vllm"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-vllm"}
    # KEDA's own default is 0: the bounds are always written out.
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 8)
    assert spec["triggers"] == [
        {
            "type": "prometheus",
            "name": "queue",
            "metricType": "AverageValue",  # KEDA divides by the replica count: a per-pod target
            "metadata": {
                "serverAddress": PROMETHEUS,
                "query": 'sum(vllm:num_requests_waiting{namespace="team-a",pod=~"chat-vllm-.+"})',
                "threshold": "4",
            },
        }
    ]
    # The same behaviour as the HPA it replaces: KEDA passes it to the HPA it creates.
    hpa_behavior = by_kind(render(PRODUCTION_VLLM))["HorizontalPodAutoscaler"]["spec"]["behavior"]
    assert spec["advanced"] == {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior}}
    assert "cooldownPeriod" not in spec  # only with minReplicas 0


def test_keda_query_replaces_the_default_queue_query() -> None:
    custom = replace(
        PRODUCTION_VLLM_KEDA,
        autoscaling=replace(  # type: ignore[type-var]
            PRODUCTION_VLLM_KEDA.autoscaling,
            keda=replace(PRODUCTION_VLLM_KEDA.autoscaling.keda, query="sum(my_queue)"),
        ),
    )
    trigger = by_kind(render(custom))["ScaledObject"]["spec"]["triggers"][0]
    assert trigger["metadata"]["query"] == "sum(my_queue)"


def test_scale_to_zero_adds_a_wake_trigger_that_only_decides_between_zero_and_one_pod() -> None:
    spec = by_kind(render(STAGING_OLLAMA_SCALE_TO_ZERO))["ScaledObject"]["spec"]
    assert spec["minReplicaCount"] == 0 and spec["cooldownPeriod"] == 900
    cpu, wake = spec["triggers"]
    # Ollama has no metrics: CPU, which KEDA's webhook refuses as the only trigger with minReplicaCount 0.
    assert cpu == {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert wake["type"] == "prometheus" and wake["metadata"]["query"] == WAKE_QUERY
    assert wake["metadata"]["activationThreshold"] == "0"  # any request wakes it
    assert float(wake["metadata"]["threshold"]) >= 1e6  # never asks for a second pod


def test_no_hpa_next_to_a_scaled_object_and_no_scaled_object_with_hpa() -> None:
    assert "HorizontalPodAutoscaler" not in by_kind(render(PRODUCTION_VLLM_KEDA))
    assert "ScaledObject" not in by_kind(render(PRODUCTION_VLLM))
    assert PRODUCTION_VLLM.autoscaling.autoscaler is Autoscaler.HPA
