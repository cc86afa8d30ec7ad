"""A 405B-class model over two H100 nodes per replica, on the local cluster with the real
LeaderWorkerSet controller (hack/lws.py: its CRDs and webhooks, built from its Go module).

kwok runs the pods (nothing starts: no vLLM, no GPU), so these tests check what the operator and
LWS do with groups: the LeaderWorkerSet, where its pods land, the Service on the leaders, scaling
groups, a killed worker restarting its group, and the promotion rules (never zero ready groups).
Where LWS is not installed the service is Stalled (LeaderWorkerSetNotInstalled): tests/unit/
test_multi_node_layout.py, since the test bed always has it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from testkit import OperatorProcess, wait_until
from testkit.services import LLMServices

H100 = "NVIDIA-H100-80GB-HBM3"
LWS_GROUP, LWS_VERSION, LWS_PLURAL = "leaderworkerset.x-k8s.io", "v1", "leaderworkersets"
LAYOUT = "2 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 2"


def llama_405b(**extra: Any) -> dict[str, Any]:
    """Production 405B on 8 H100s per node; the memory fit chooses 2 nodes per replica."""
    return {
        "stage": "production",
        "model": {"name": "llama3.1:405b"},
        "expectedConcurrency": 50,
        "replicas": 1,
        "resources": {"gpu": {"count": 8, "product": H100}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
        **extra,
    }


class Groups(LLMServices):
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.discovery = client.DiscoveryV1Api(api)
        self.apps = client.AppsV1Api(api)

    def lws(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(LWS_GROUP, LWS_VERSION, self.ns, LWS_PLURAL, name)
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise

    def pods(self, name: str) -> list[client.V1Pod]:
        return list(
            self.core.list_namespaced_pod(self.ns, label_selector=f"app.kubernetes.io/instance={name}").items
        )

    def ready_endpoint_pods(self, service: str) -> list[str]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.ns, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return sorted(
            e.target_ref.name
            for s in slices
            for e in s.endpoints or []
            if e.conditions.ready and e.target_ref is not None
        )

    def ready_groups(self, name: str, count: int) -> list[client.V1Pod] | None:
        """The pods of `count` Available groups of 2, all Running and Ready; None until then."""
        lws = self.lws(f"{name}-vllm") or {}
        status = lws.get("status") or {}
        pods = [p for p in self.pods(name) if p.metadata.deletion_timestamp is None]
        ready = [
            p
            for p in pods
            if p.status.phase == "Running"
            and {c.type: c.status for c in p.status.conditions or []}.get("Ready") == "True"
        ]
        if status.get("readyReplicas") == count and len(ready) == len(pods) == 2 * count:
            return ready
        return None


@pytest.fixture
def groups(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Groups:
    g = Groups(api_client, namespace)
    g.create_api_key_secret()
    return g


def node_products(api_client: client.ApiClient) -> dict[str, str | None]:
    nodes = client.CoreV1Api(api_client).list_node().items
    return {n.metadata.name: (n.metadata.labels or {}).get("nvidia.com/gpu.product") for n in nodes}


@pytest.fixture
def sample_endpoints(groups: Groups) -> Iterator[Callable[[str], list[int]]]:
    """Starts counting the ready endpoints of a Service every 100 ms; the list grows until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(service: str) -> list[int]:
        seen: list[int] = []

        def poll() -> None:
            while not stop.is_set():
                seen.append(len(groups.ready_endpoint_pods(service)))
                time.sleep(0.1)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        threads.append(thread)
        return seen

    yield start
    stop.set()
    for thread in threads:
        thread.join()


def test_a_405b_service_runs_one_group_of_two_h100_nodes_behind_its_leader(
    groups: Groups, api_client: client.ApiClient
) -> None:
    groups.create("big", **llama_405b())
    ready = groups.wait_condition("big", "Ready", timeout=90)
    assert ready["message"] == "1 ready vllm endpoint(s) behind Service big"
    fits = groups.condition("big", "ModelFits")
    assert fits is not None and fits["status"] == "True" and fits["message"].startswith(LAYOUT)

    lws = groups.lws("big-vllm")
    assert lws is not None and "big-vllm" not in {
        d.metadata.name for d in groups.apps.list_namespaced_deployment(groups.ns).items
    }
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    pods = wait_until(lambda: groups.ready_groups("big", 1), timeout=60, what="one ready group of 2 pods")
    products = node_products(api_client)
    nodes = {p.metadata.name: p.spec.node_name for p in pods}
    # Each pod of the group has a whole H100 node (8 GPUs each), two different nodes.
    assert all(products[n] == H100 for n in nodes.values()) and len(set(nodes.values())) == 2
    leader = next(p for p in pods if p.metadata.labels["leaderworkerset.sigs.k8s.io/worker-index"] == "0")
    worker = next(p for p in pods if p is not leader)
    # LWS's webhook gave each pod its index and the leader's address; the args use them.
    env = {e.name: e.value for e in worker.spec.containers[0].env if e.value is not None}
    assert env["LWS_WORKER_INDEX"] == "1" and env["LWS_LEADER_ADDRESS"].startswith("big-vllm-0.big-vllm.")
    assert "--headless" in worker.spec.containers[0].args
    assert worker.metadata.labels["app.kubernetes.io/component"] == "worker"
    # Only the leader serves: the Service's one endpoint.
    assert groups.ready_endpoint_pods("big") == [leader.metadata.name]
    status = groups.get("big")["status"]
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)


def test_groups_scale_up_and_down_as_units(groups: Groups) -> None:
    groups.create("scaled", **llama_405b())
    groups.wait_condition("scaled", "Ready", timeout=90)
    groups.patch_spec("scaled", {"replicas": 2})
    pods = wait_until(lambda: groups.ready_groups("scaled", 2), timeout=90, what="two ready groups")
    assert len({p.spec.node_name for p in pods}) == 4  # four H100 nodes, one pod each
    wait_until(
        lambda: len(groups.ready_endpoint_pods("scaled")) == 2,
        timeout=60,
        what="two leaders behind the Service",
    )
    assert groups.ready_endpoint_pods("scaled") == ["scaled-vllm-0", "scaled-vllm-1"]
    wait_until(
        lambda: groups.get("scaled")["status"].get("readyReplicas") == 2,
        timeout=30,
        what="status with 2 groups",
    )

    groups.patch_spec("scaled", {"replicas": 1})
    wait_until(lambda: groups.ready_groups("scaled", 1), timeout=90, what="back to one group")
    assert groups.ready_endpoint_pods("scaled") == ["scaled-vllm-0"]


def test_a_killed_worker_restarts_its_whole_group(groups: Groups) -> None:
    groups.create("restart", **llama_405b())
    groups.wait_condition("restart", "Ready", timeout=90)
    before = wait_until(lambda: groups.ready_groups("restart", 1), timeout=60, what="one ready group")
    uids = {p.metadata.name: p.metadata.uid for p in before}
    groups.core.delete_namespaced_pod("restart-vllm-0-1", groups.ns)

    def recreated() -> list[client.V1Pod] | None:
        pods = groups.ready_groups("restart", 1)
        # RecreateGroupOnPodRestart: the leader goes too, not only the worker that died.
        if pods and all(uids.get(p.metadata.name) not in (None, p.metadata.uid) for p in pods):
            return pods
        return None

    wait_until(recreated, timeout=90, what="the group recreated, leader included")
    groups.wait_condition("restart", "Ready", timeout=60)


def test_promotion_to_groups_never_leaves_the_service_without_a_ready_endpoint(
    groups: Groups, sample_endpoints: Callable[[str], list[int]]
) -> None:
    # Ollama in staging would need 230+ GiB for 405B; the kwok CPU nodes have 64 (nothing runs).
    groups.create(
        "promo", stage="staging", replicas=1, model={"name": "llama3.1:405b"}, resources={"memory": "8Gi"}
    )
    groups.wait_condition("promo", "Ready", timeout=60)
    assert groups.get("promo")["status"]["runtime"] == "ollama"
    seen = sample_endpoints("promo")
    groups.patch_spec(
        "promo", {**llama_405b(), "resources": {"gpu": {"count": 8, "product": H100}, "memory": None}}
    )

    def promoted() -> bool:
        status = groups.get("promo").get("status") or {}
        ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        deployments = {d.metadata.name for d in groups.apps.list_namespaced_deployment(groups.ns).items}
        return (
            status.get("runtime") == "vllm"
            and ready.get("status") == "True"
            and "promo-ollama" not in deployments
        )

    wait_until(promoted, timeout=120, what="promotion to a vLLM group with the Ollama Deployment gone")
    time.sleep(1)
    assert len(seen) >= 10 and min(seen) >= 1, (
        f"ready endpoints seen during the promotion: {sorted(set(seen))}"
    )
    assert groups.ready_endpoint_pods("promo") == ["promo-vllm-0"]


def test_one_node_to_two_keeps_the_deployment_until_a_group_is_ready(
    groups: Groups, sample_endpoints: Callable[[str], list[int]]
) -> None:
    one_node = llama_405b(model={"name": "llama3.1:70b"})
    groups.create("grow", **one_node)
    groups.wait_condition("grow", "Ready", timeout=60)
    assert "grow-vllm" in {d.metadata.name for d in groups.apps.list_namespaced_deployment(groups.ns).items}
    seen = sample_endpoints("grow")
    groups.patch_spec("grow", {"resources": {"gpu": {"count": 8, "product": H100, "nodes": 2}}})

    def switched() -> bool:
        deployments = {d.metadata.name for d in groups.apps.list_namespaced_deployment(groups.ns).items}
        return "grow-vllm" not in deployments and groups.ready_endpoint_pods("grow") == ["grow-vllm-0"]

    wait_until(switched, timeout=120, what="the Deployment replaced by a ready group")
    groups.wait_condition("grow", "Ready", timeout=30)
    time.sleep(1)
    assert len(seen) >= 10 and min(seen) >= 1, f"ready endpoints seen during the switch: {sorted(set(seen))}"


def test_the_autoscaler_reads_the_groups_through_the_leader_worker_sets_scale(groups: Groups) -> None:
    spec = llama_405b(autoscaling={"minReplicas": 1, "maxReplicas": 2})
    del spec["replicas"]
    groups.create("auto", **spec)
    groups.wait_condition("auto", "Ready", timeout=90)
    hpas = client.AutoscalingV2Api(groups.core.api_client)

    def able_to_scale() -> client.V2HorizontalPodAutoscaler | None:
        hpa = hpas.read_namespaced_horizontal_pod_autoscaler("auto-vllm", groups.ns)
        conds = {c.type: c for c in hpa.status.conditions or []}
        return hpa if "AbleToScale" in conds and conds["AbleToScale"].status == "True" else None

    # The HPA controller got the LeaderWorkerSet's scale subresource (groups, and the leaders as
    # its pod selector); the test bed has no metrics, so it does not scale on them.
    hpa = wait_until(able_to_scale, timeout=60, what="the HPA reading the LeaderWorkerSet's scale")
    assert hpa.spec.scale_target_ref.kind == "LeaderWorkerSet" and hpa.status.current_replicas == 1
