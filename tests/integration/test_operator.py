"""The operator against the local control plane: each scenario in its own namespace."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from testkit import OperatorProcess, wait_until
from testkit.services import GROUP, PLURAL, VERSION, LLMServices

H100 = "NVIDIA-H100-80GB-HBM3"


def production_spec(product: str = H100, gpus: int = 1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "stage": "production",
        "replicas": 1,
        "resources": {"gpu": {"count": gpus, "product": product}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
    }
    spec.update(extra)
    return spec


class Cluster(LLMServices):
    """LLMServices in one namespace, and the objects the operator makes for them."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.apps = client.AppsV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)

    def ready_endpoint_pods(self, service: str) -> list[str]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.ns, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return [
            e.target_ref.name
            for s in slices
            for e in s.endpoints or []
            if e.conditions.ready and e.target_ref is not None
        ]

    def deployments(self) -> dict[str, client.V1Deployment]:
        return {d.metadata.name: d for d in self.apps.list_namespaced_deployment(self.ns).items}


@pytest.fixture
def cluster(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Cluster:
    c = Cluster(api_client, namespace)
    c.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "llm-api-key"}, "stringData": {"api-key": "test-key"}}
    )
    return c


def test_dev_service_becomes_ready_with_an_ollama_pod_behind_its_service(cluster: Cluster) -> None:
    svc = cluster.create("chat")
    ready = cluster.wait_condition("chat", "Ready")
    assert ready["reason"] == "EndpointsReady"
    pods = cluster.ready_endpoint_pods("chat")
    assert len(pods) == 1 and pods[0].startswith("chat-ollama-")
    status = cluster.get("chat")["status"]
    assert status["runtime"] == "ollama" and status["stage"] == "dev"
    assert status["endpoint"] == f"http://chat.{cluster.ns}.svc:8000/v1"
    assert status["observedGeneration"] == svc["metadata"]["generation"]
    assert status["readyReplicas"] == 1
    selected = cluster.condition("chat", "RuntimeSelected")
    assert selected is not None and selected["status"] == "True"
    for child in cluster.deployments().values():
        ref = child.metadata.owner_references[0]
        assert ref.kind == "LLMService" and ref.name == "chat" and ref.controller


def test_production_vllm_lands_on_the_h100_with_tensor_parallel_equal_to_its_gpus(cluster: Cluster) -> None:
    cluster.create("prod", **production_spec(gpus=2))
    cluster.wait_condition("prod", "Ready")
    pods = cluster.core.list_namespaced_pod(cluster.ns, label_selector="llmstage.io/runtime=vllm").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.spec.node_name.startswith("gpu-h100-")  # any of the four H100 nodes
    args = " ".join(pod.spec.containers[0].args or []) + " " + " ".join(pod.spec.containers[0].command or [])
    assert "--tensor-parallel-size=2" in args.replace("--tensor-parallel-size 2", "--tensor-parallel-size=2")
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"


def test_promotion_switches_runtime_without_the_service_losing_endpoints(cluster: Cluster) -> None:
    cluster.create("promo", stage="staging", replicas=1)
    cluster.wait_condition("promo", "Ready")
    assert cluster.get("promo")["status"]["runtime"] == "ollama"

    empty_observations: list[float] = []
    observations = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal observations
        while not stop.is_set():
            if not cluster.ready_endpoint_pods("promo"):
                empty_observations.append(time.monotonic())
            observations += 1
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        cluster.patch_spec("promo", production_spec())
        gen = cluster.get("promo")["metadata"]["generation"]

        def promoted() -> bool:
            status = cluster.get("promo").get("status") or {}
            ready: dict[str, Any] = next(
                (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
            )
            return (
                status.get("runtime") == "vllm"
                and ready.get("status") == "True"
                and status.get("observedGeneration") == gen
                and "promo-ollama" not in cluster.deployments()
            )

        wait_until(promoted, timeout=90, interval=0.2, what="promotion to vLLM with the old Deployment gone")
        time.sleep(1)
    finally:
        stop.set()
        poller.join()
    assert observations >= 10  # the poller really watched the cutover
    assert empty_observations == [], f"the Service had no ready endpoints {len(empty_observations)} times"
    pods = cluster.ready_endpoint_pods("promo")
    assert pods and all(p.startswith("promo-vllm-") for p in pods)


def test_unschedulable_gpu_product_stalls_while_the_old_runtime_keeps_serving(cluster: Cluster) -> None:
    cluster.create("stuck", stage="staging", replicas=1)
    cluster.wait_condition("stuck", "Ready")
    cluster.patch_spec("stuck", production_spec(product="NVIDIA-B200"))
    stalled = cluster.wait_condition("stuck", "Stalled", timeout=60)
    assert stalled["reason"] == "Unschedulable"
    assert "node affinity" in stalled["message"] or "didn't match" in stalled["message"], stalled["message"]
    assert "ollama keeps serving" in stalled["message"]
    pods = cluster.ready_endpoint_pods("stuck")
    assert pods and all(p.startswith("stuck-ollama-") for p in pods)
    assert "stuck-ollama" in cluster.deployments()


def test_drift_is_repaired_and_foreign_annotations_are_left_alone(cluster: Cluster) -> None:
    cluster.create("drift")
    cluster.wait_condition("drift", "Ready")
    cluster.core.delete_namespaced_service("drift", cluster.ns)
    wait_until(
        lambda: cluster.core.list_namespaced_service(cluster.ns, field_selector="metadata.name=drift").items,
        timeout=15,
        what="the deleted Service to come back",
    )

    dep = cluster.apps.read_namespaced_deployment("drift-ollama", cluster.ns)
    original_env = {e.name: e.value for e in dep.spec.template.spec.containers[0].env or []}
    cluster.apps.patch_namespaced_deployment(
        "drift-ollama",
        cluster.ns,
        {
            "metadata": {"annotations": {"example.com/owner": "team-a"}},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": dep.spec.template.spec.containers[0].name,
                                "env": [{"name": "OLLAMA_NUM_PARALLEL", "value": "99"}],
                            }
                        ]
                    }
                }
            },
        },
    )

    def restored() -> bool:
        d = cluster.apps.read_namespaced_deployment("drift-ollama", cluster.ns)
        env = {e.name: e.value for e in d.spec.template.spec.containers[0].env or []}
        return env.get("OLLAMA_NUM_PARALLEL") == original_env.get("OLLAMA_NUM_PARALLEL")

    wait_until(restored, timeout=15, what="OLLAMA_NUM_PARALLEL restored")
    d = cluster.apps.read_namespaced_deployment("drift-ollama", cluster.ns)
    assert d.metadata.annotations.get("example.com/owner") == "team-a"


def test_replicas_owned_by_the_hpa_are_not_reverted(cluster: Cluster) -> None:
    cluster.create("scaled", stage="staging", autoscaling={"minReplicas": 1, "maxReplicas": 4})
    cluster.wait_condition("scaled", "Ready")
    assert cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler("scaled-ollama", cluster.ns)
    # What the HPA controller does: write the scale subresource.
    cluster.apps.patch_namespaced_deployment_scale("scaled-ollama", cluster.ns, {"spec": {"replicas": 3}})
    # Give the operator every chance to fight back: it reacts to this Deployment's events.
    wait_until(
        lambda: (
            cluster.apps.read_namespaced_deployment("scaled-ollama", cluster.ns).status.ready_replicas == 3
        ),
        timeout=30,
        what="3 ready replicas",
    )
    time.sleep(3)
    assert cluster.apps.read_namespaced_deployment("scaled-ollama", cluster.ns).spec.replicas == 3


def test_fixed_replicas_follow_the_scale_subresource(cluster: Cluster, kubectl) -> None:
    cluster.create("fixed", replicas=1)
    cluster.wait_condition("fixed", "Ready")
    kubectl("scale", "-n", cluster.ns, "llms/fixed", "--replicas=2")
    wait_until(
        lambda: cluster.apps.read_namespaced_deployment("fixed-ollama", cluster.ns).spec.replicas == 2,
        timeout=15,
        what="Deployment scaled to 2 through the LLMService scale subresource",
    )
    wait_until(
        lambda: cluster.get("fixed")["status"].get("readyReplicas") == 2,
        timeout=30,
        what="status.readyReplicas 2",
    )


def test_observed_generation_follows_generation(cluster: Cluster) -> None:
    cluster.create("gen")
    cluster.wait_condition("gen", "Ready")
    updated = cluster.patch_spec("gen", {"expectedConcurrency": 3})
    gen = updated["metadata"]["generation"]
    wait_until(
        lambda: cluster.get("gen")["status"].get("observedGeneration") == gen,
        timeout=15,
        what="observedGeneration to catch up",
    )
    ready = cluster.condition("gen", "Ready")
    assert ready and ready["observedGeneration"] == gen


def test_deleting_the_service_removes_every_child(cluster: Cluster) -> None:
    cluster.create("gone", stage="staging")
    cluster.wait_condition("gone", "Ready")
    assert cluster.deployments()
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.ns, PLURAL, "gone")

    def children() -> list[str]:
        return (
            [d for d in cluster.deployments()]
            + [s.metadata.name for s in cluster.core.list_namespaced_service(cluster.ns).items]
            + [
                h.metadata.name
                for h in cluster.autoscaling.list_namespaced_horizontal_pod_autoscaler(cluster.ns).items
            ]
            + [
                p.metadata.name
                for p in cluster.core.list_namespaced_persistent_volume_claim(cluster.ns).items
            ]
        )

    wait_until(lambda: not children(), timeout=60, what=f"children to be garbage-collected: {children()}")


def test_an_invalid_spec_stalls_with_a_message_and_others_keep_working(cluster: Cluster) -> None:
    # Ollama pulls any tag, but vLLM needs to know the Hugging Face repository of a model.
    cluster.create("unknown", model={"name": "no-such-model:1b"}, **production_spec())
    stalled = cluster.wait_condition("unknown", "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "spec.model.huggingFaceId" in stalled["message"], stalled["message"]
    assert not cluster.deployments(), "nothing is applied for a spec that cannot be served"
    cluster.create("fine")
    cluster.wait_condition("fine", "Ready")


def test_pod_settings_reach_every_container_and_a_bad_volume_stalls_naming_it(cluster: Cluster) -> None:
    """spec.pod, env, envFrom and ephemeral storage end up in the pods the ReplicaSet creates; a
    volume only the API server can check is rejected at apply and reported, nothing half-applied.
    The session's operator allows the ServiceAccount models-reader (tests/integration/conftest.py)."""
    cluster.core.create_namespaced_service_account(cluster.ns, {"metadata": {"name": "models-reader"}})
    cluster.create(
        "platform",
        resources={"ephemeralStorage": "5Gi"},
        ollama={
            "env": {"HTTPS_PROXY": "http://proxy:3128"},
            "envFrom": [{"configMapRef": {"name": "proxy"}}],
        },
        pod={
            "serviceAccountName": "models-reader",
            "imagePullSecrets": [{"name": "mirror-pull"}],
            "labels": {"team": "ml"},
            "annotations": {"example.com/owner": "ml-platform"},
            "volumes": [{"name": "mirror-ca", "configMap": {"name": "mirror-ca", "optional": True}}],
            "volumeMounts": [{"name": "mirror-ca", "mountPath": "/etc/ssl/mirror", "readOnly": True}],
        },
    )
    cluster.wait_condition("platform", "Ready")
    pods = cluster.core.list_namespaced_pod(cluster.ns, label_selector="team=ml").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.spec.service_account_name == "models-reader"
    assert pod.spec.automount_service_account_token is False
    assert [s.name for s in pod.spec.image_pull_secrets] == ["mirror-pull"]
    assert pod.metadata.annotations["example.com/owner"] == "ml-platform"
    assert pod.metadata.labels["app.kubernetes.io/instance"] == "platform"
    assert any(v.name == "mirror-ca" and v.config_map.name == "mirror-ca" for v in pod.spec.volumes)
    # The runtime's containers (the API: "the server container and the model download step"); the
    # gateway in front of the server gets none of the runtime's settings.
    runtime = [c for c in [*pod.spec.init_containers, *pod.spec.containers] if c.name != "gateway"]
    (gateway,) = [c for c in pod.spec.containers if c.name == "gateway"]
    assert not gateway.env_from and "HTTPS_PROXY" not in {e.name for e in gateway.env or []}
    assert "mirror-ca" not in {m.name for m in gateway.volume_mounts}
    for container in runtime:
        assert any(
            m.name == "mirror-ca" and m.mount_path == "/etc/ssl/mirror" for m in container.volume_mounts
        )
        assert {e.name: e.value for e in container.env}["HTTPS_PROXY"] == "http://proxy:3128"
        assert [s.config_map_ref.name for s in container.env_from] == ["proxy"]
    assert pod.spec.containers[0].resources.requests["ephemeral-storage"] == "5Gi"

    bad = {"name": "scratch", "configMap": {"name": "mirror-ca", "defaultMode": 99999}}
    cluster.create("badvol", pod={"volumes": [bad]})
    stalled = cluster.wait_condition("badvol", "Stalled")
    assert stalled["reason"] == "ApplyRejected", stalled
    assert "defaultMode" in stalled["message"], stalled["message"]
    assert "badvol-ollama" not in cluster.deployments()


def test_lora_adapters_are_served_under_their_names_and_listed_in_status(cluster: Cluster) -> None:
    """On a kwok GPU node: the args and the status (vLLM itself cannot run here)."""
    adapters = [
        {"name": "sql", "huggingFaceId": "acme/sql-lora"},
        {"name": "faq", "huggingFaceId": "acme/faq-lora"},
    ]
    cluster.create("tuned", **production_spec(lora={"maxRank": 32, "adapters": adapters}))
    cluster.wait_condition("tuned", "Ready")
    status = cluster.get("tuned")["status"]
    assert status["loraAdapters"] == ["sql", "faq"] and status["servedModelName"] == "llama3.1:8b"
    (pod,) = cluster.core.list_namespaced_pod(
        cluster.ns, label_selector="app.kubernetes.io/instance=tuned"
    ).items
    args = pod.spec.containers[0].args
    assert "--enable-lora" in args and "--max-loras=2" in args and "--max-lora-rank=32" in args
    modules = [json.loads(a) for a in args[args.index("--lora-modules") + 1 :] if a.startswith("{")]
    assert [m["name"] for m in modules] == ["sql", "faq"]


def test_a_cache_claim_that_cannot_bind_stalls_naming_its_storage_class(cluster: Cluster) -> None:
    cluster.create("nodisk", cache={"storageClassName": "no-such-class"})
    stalled = cluster.wait_condition("nodisk", "Stalled", timeout=60)
    assert stalled["reason"] == "Unschedulable", stalled
    assert (
        "The model cache claim nodisk-ollama-cache (StorageClass no-such-class, ReadWriteOnce) is Pending"
        in (stalled["message"])
    ), stalled["message"]


def test_weights_from_a_claim_are_mounted_read_only_and_served_offline(cluster: Cluster) -> None:
    """spec.model.source.pvc on a kwok GPU node: the pod's volume, args and variables (vLLM itself
    cannot run here, and nothing reads the claim's files)."""
    cluster.core.create_namespaced_persistent_volume_claim(
        cluster.ns,
        {
            "metadata": {"name": "models"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    source = {"pvc": {"claimName": "models", "path": "/llama-3.1-8b-instruct"}}
    cluster.create("local", **production_spec(), model={"name": "llama3.1:8b", "source": source})
    cluster.wait_condition("local", "Ready")
    (pod,) = cluster.core.list_namespaced_pod(
        cluster.ns, label_selector="app.kubernetes.io/instance=local"
    ).items
    assert not pod.spec.init_containers  # nothing to download
    server = pod.spec.containers[0]
    assert server.args[0] == "/model-source/llama-3.1-8b-instruct"
    assert {e.name: e.value for e in server.env}["HF_HUB_OFFLINE"] == "1"
    volume = next(v for v in pod.spec.volumes if v.name == "model-source")
    assert volume.persistent_volume_claim.claim_name == "models" and volume.persistent_volume_claim.read_only
    mount = next(m for m in server.volume_mounts if m.name == "model-source")
    assert mount.mount_path == "/model-source" and mount.read_only


def test_weights_from_s3_are_downloaded_with_the_secret_by_reference(cluster: Cluster) -> None:
    cluster.core.create_namespaced_secret(
        cluster.ns,
        {
            "metadata": {"name": "models-s3"},
            "stringData": {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"},
        },
    )
    source = {
        "s3": {
            "url": "s3://models/llama-3.1-8b-instruct",
            "endpoint": "http://minio.storage.svc:9000",
            "credentialsSecretRef": {"name": "models-s3"},
        }
    }
    cluster.create("bucket", **production_spec(), model={"name": "llama3.1:8b", "source": source})
    cluster.wait_condition("bucket", "Ready")
    (pod,) = cluster.core.list_namespaced_pod(
        cluster.ns, label_selector="app.kubernetes.io/instance=bucket"
    ).items
    (init,) = pod.spec.init_containers
    assert init.name == "download-model" and init.command[:2] == ["python3", "-c"]
    env = {e.name: e for e in init.env}
    assert env["LLMSTAGE_SOURCE_ENDPOINT"].value == "http://minio.storage.svc:9000"
    secret_ref = env["LLMSTAGE_SOURCE_SECRET_ACCESS_KEY"].value_from.secret_key_ref
    assert (secret_ref.name, secret_ref.key) == ("models-s3", "AWS_SECRET_ACCESS_KEY")
    assert pod.spec.containers[0].args[0] == "/models/s3/models/llama-3.1-8b-instruct"


def test_a_vllm_source_in_an_ollama_stage_is_a_warning_not_an_error(cluster: Cluster) -> None:
    """The same spec is promoted from dev (Ollama pulls the tag) to production (vLLM reads the bucket)."""
    source = {"s3": {"url": "s3://models/llama-3.1-8b-instruct"}}
    cluster.create("devsrc", model={"name": "llama3.1:8b", "source": source})
    cluster.wait_condition("devsrc", "Ready")
    practices = cluster.condition("devsrc", "FollowsBestPractices")
    assert practices is not None and practices["status"] == "False"
    assert "spec.model.source.s3 holds weights for vLLM" in practices["message"], practices


def test_lora_adapters_from_a_claim_and_a_bucket(cluster: Cluster) -> None:
    """spec.lora.adapters[].source on a kwok GPU node: volumes, steps and --lora-modules paths."""
    adapters = [
        {"name": "sql", "huggingFaceId": "acme/sql-lora"},
        {"name": "legal", "source": {"pvc": {"claimName": "adapters", "path": "/legal"}}},
        {"name": "faq", "source": {"s3": {"url": "s3://adapters/faq", "endpoint": "http://minio:9000"}}},
    ]
    cluster.core.create_namespaced_persistent_volume_claim(
        cluster.ns,
        {
            "metadata": {"name": "adapters"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    cluster.create("mixed", **production_spec(lora={"adapters": adapters}))
    cluster.wait_condition("mixed", "Ready")
    assert cluster.get("mixed")["status"]["loraAdapters"] == ["sql", "legal", "faq"]
    (pod,) = cluster.core.list_namespaced_pod(
        cluster.ns, label_selector="app.kubernetes.io/instance=mixed"
    ).items
    assert [c.name for c in pod.spec.init_containers] == ["download-model", "download-lora-2"]
    args = pod.spec.containers[0].args
    paths = {m["name"]: m["path"] for m in (json.loads(a) for a in args if a.startswith("{"))}
    assert paths == {
        "sql": "/models/lora/acme--sql-lora",
        "legal": "/lora-source/1/legal",
        "faq": "/models/lora/s3/adapters/faq",
    }
    volume = next(v for v in pod.spec.volumes if v.name == "lora-source-1")
    assert (
        volume.persistent_volume_claim.claim_name == "adapters" and volume.persistent_volume_claim.read_only
    )
