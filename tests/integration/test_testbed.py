"""Smoke tests proving the test bed is a real cluster: scheduler, taints, endpoints, GC, HPA."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from testkit import wait_until

H100 = "NVIDIA-H100-80GB-HBM3"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_deployment(name: str, *, tolerate: bool) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "server",
                "image": "registry.invalid/gpu-server:1",
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
            }
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "nvidia.com/gpu.product", "operator": "In", "values": [H100]}
                            ]
                        }
                    ]
                }
            }
        },
    }
    if tolerate:
        pod_spec["tolerations"] = [GPU_TOLERATION]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"app={app}").items)


def test_nodes_are_ready_with_gpu_allocatable(api_client: client.ApiClient) -> None:
    nodes = {n.metadata.name: n for n in client.CoreV1Api(api_client).list_node().items}
    h100 = [f"gpu-h100-{i}" for i in range(4)]  # two 2-node groups (tests/integration/test_multi_node.py)
    assert {"cpu-0", "cpu-1", "gpu-l4-0", *h100} <= set(nodes)
    for name, gpus, product in [("gpu-l4-0", "4", "NVIDIA-L4"), *((n, "8", H100) for n in h100)]:
        node = nodes[name]
        assert node.status.allocatable["nvidia.com/gpu"] == gpus
        assert node.metadata.labels["nvidia.com/gpu.product"] == product
        assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in node.spec.taints)
    for node in nodes.values():
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", node.metadata.name


def test_server_reports_a_real_version(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1" and int(info.minor) >= 36, info.git_version
    assert info.git_version.startswith("v1."), info.git_version


def test_a_gpu_pod_lands_on_the_h100_node_and_becomes_ready(
    api_client: client.ApiClient, namespace: str
) -> None:
    """(a) scheduling on the extended resource, toleration and product affinity; (c) endpoints."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("vllm", tolerate=True))
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "vllm"},
            "spec": {"selector": {"app": "vllm"}, "ports": [{"name": "http", "port": 8000}]},
        },
    )

    def ready_pod() -> client.V1Pod | None:
        for pod in pods_of(core, namespace, "vllm"):
            conds = {c.type: c.status for c in pod.status.conditions or []}
            if pod.status.phase == "Running" and conds.get("Ready") == "True" and pod.status.pod_ip:
                return pod
        return None

    pod = wait_until(ready_pod, timeout=60, what="a Running and Ready GPU pod")
    assert pod.spec.node_name.startswith("gpu-h100-")

    def ready_endpoints() -> list[str]:
        slices = (
            client.DiscoveryV1Api(api_client)
            .list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=vllm")
            .items
        )
        return [a for s in slices for e in s.endpoints or [] if e.conditions.ready for a in e.addresses]

    addresses = wait_until(ready_endpoints, timeout=60, what="a ready endpoint in the EndpointSlice")
    assert addresses == [pod.status.pod_ip]

    deploy = wait_until(
        lambda: (d := apps.read_namespaced_deployment("vllm", namespace)).status.available_replicas and d,
        timeout=60,
        what="Deployment Available",
    )
    assert deploy.status.ready_replicas == 1


def test_a_gpu_pod_without_the_toleration_stays_pending(api_client: client.ApiClient, namespace: str) -> None:
    """(b) the taint keeps it off the GPU nodes and the affinity off the CPU nodes."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("no-toleration", tolerate=False))

    def unschedulable() -> client.V1PodCondition | None:
        for pod in pods_of(core, namespace, "no-toleration"):
            for cond in pod.status.conditions or []:
                if cond.type == "PodScheduled" and cond.status == "False":
                    return cond
        return None

    cond = wait_until(unschedulable, timeout=60, what="PodScheduled=False")
    assert cond.reason == "Unschedulable"
    # The GPU nodes refuse it for the taint (so does the real node, where there is one: it is
    # tainted too), the two CPU nodes for the product affinity.
    tainted = sum(
        1
        for node in core.list_node().items
        if any(t.effect == "NoSchedule" for t in node.spec.taints or [])
        and node.metadata.name.startswith(("gpu-", "real-"))
    )
    assert tainted >= 2
    assert f"{tainted} node(s) had untolerated taint" in cond.message, cond.message
    assert "2 node(s) didn't match Pod's node affinity" in cond.message, cond.message
    pod = pods_of(core, namespace, "no-toleration")[0]
    assert pod.status.phase == "Pending" and not pod.spec.node_name


def test_deleting_an_owner_garbage_collects_its_dependents(
    api_client: client.ApiClient, namespace: str
) -> None:
    """(d) the garbage collector follows ownerReferences."""
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    def gone() -> bool:
        names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        return "dependent" not in names

    wait_until(gone, timeout=60, what="the dependent ConfigMap to be garbage-collected")


def test_the_hpa_controller_processes_an_autoscaling_v2_hpa(
    api_client: client.ApiClient, namespace: str
) -> None:
    """(e) the real HPA controller picks the object up and writes conditions."""
    apps = client.AppsV1Api(api_client)
    deploy = gpu_deployment("scaled", tolerate=True)
    deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "1"}
    apps.create_namespaced_deployment(namespace, deploy)
    hpa_api = client.AutoscalingV2Api(api_client)
    hpa_api.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "scaled"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    )

    def conditions() -> dict[str, str]:
        hpa = hpa_api.read_namespaced_horizontal_pod_autoscaler("scaled", namespace)
        return {c.type: c.status for c in hpa.status.conditions or []}

    conds = wait_until(conditions, timeout=60, what="HPA status conditions")
    assert conds.get("AbleToScale") == "True", conds
    # No metrics.k8s.io on the test bed (see README): the controller says so in ScalingActive.
    assert "ScalingActive" in conds, conds


def test_a_claim_on_the_default_storage_class_binds(api_client: client.ApiClient, namespace: str) -> None:
    """Model-cache PVCs bind (kwok's volume stages provision them), so their pods schedule."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "cache"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}},
        },
    )
    claim = wait_until(
        lambda: (
            (c := core.read_namespaced_persistent_volume_claim("cache", namespace)).status.phase == "Bound"
            and c
        ),
        timeout=60,
        what="the claim to bind",
    )
    # ReadWriteOnce only, like the default classes of EKS, GKE and AKS (hack/cluster/storage.yaml).
    assert claim.spec.storage_class_name == "kwok-rwo"
    assert claim.status.capacity["storage"] == "50Gi"


def test_read_write_many_binds_on_kwok_volume_and_stays_pending_on_the_rwo_only_default(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    for name, storage_class in (("refused", "kwok-rwo"), ("shared", "kwok-volume")):
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    wait_until(
        lambda: core.read_namespaced_persistent_volume_claim("shared", namespace).status.phase == "Bound",
        timeout=60,
        what="the ReadWriteMany claim on kwok-volume to bind",
    )
    # kwok has handled the first claim too by then: no PersistentVolume for it.
    refused = core.read_namespaced_persistent_volume_claim("refused", namespace)
    assert refused.status.phase == "Pending" and not refused.spec.volume_name
