"""A multi-node vLLM replica: the LeaderWorkerSet that runs one group of pods per replica.

    render_leader_worker_set(resolved, deployment) -> LeaderWorkerSet
    workload_ref(resolved) -> {apiVersion, kind, name}     what the HPA, KEDA and the plan target

The group's pods are the vLLM Deployment's pod (templates/vllm-deployment.yaml.j2), so a
multi-node replica runs exactly the image, download step, volumes, security context and
scheduling of a single-node one; only the server's role differs, as vLLM's multi-node recipe with
its multiprocessing executor has it (docs/serving/parallelism_scaling.md, 0.32.0; the flags are
in both 0.12.0 and 0.32.0, vllm/config/parallel.py ParallelConfig.nnodes, node_rank, master_addr):

    leader (LWS worker index 0)  vllm serve MODEL ... --tensor-parallel-size=GPUS_PER_NODE
                                   --pipeline-parallel-size=NODES --distributed-executor-backend=mp
                                   --nnodes=NODES --node-rank=0 --master-addr=$(LWS_LEADER_ADDRESS)
                                 the API server: probes, the http port, the Service's endpoint
    workers (index 1..NODES-1)   the same, --node-rank=$(LWS_WORKER_INDEX) --headless: no API
                                 server, so no probes, no port, not behind the Service

LWS's pod webhook puts LWS_LEADER_ADDRESS (the leader's DNS name in the group's headless
Service) and LWS_WORKER_INDEX into every container (sigs.k8s.io/lws api/leaderworkerset/v1:
LwsLeaderAddress, LwsWorkerIndex), and the kubelet expands $(VAR) in args from the container's
environment, so no shell wraps vLLM. VLLM_HOST_IP is the pod's IP: vLLM otherwise finds its
address by routing towards 8.8.8.8 (vllm/utils/network_utils.py get_ip), which fails on a cluster
without a default route. vLLM's rendezvous port is its default, 29501 (ParallelConfig.master_port).

Workers carry app.kubernetes.io/component=worker, so every selector of the server component (the
Service, the PodMonitor, the topology spread, the HPA's pods) sees the leaders only: one endpoint
and one metrics source per group. The group restarts as a unit (RecreateGroupOnPodRestart): a
pipeline stage cannot rejoin a running engine. Rollouts surge one group and never take one
down first (maxSurge 1, maxUnavailable 0), like the Deployment's strategy.
"""

from __future__ import annotations

import copy
from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.gateway import CONTAINER as GATEWAY_CONTAINER
from llmstage.render.labels import COMPONENT_LABEL, workload_name
from llmstage.resolve.resolved import Resolved

API_VERSION = "leaderworkerset.x-k8s.io/v1"
KIND = "LeaderWorkerSet"
WORKER = "worker"  # app.kubernetes.io/component of the pods that are not the group's leader
SERVER_CONTAINER = "server"
# Set by LWS on each pod (sigs.k8s.io/lws api/leaderworkerset/v1 RevisionKey): a rollout's new
# groups do not count the old ones in the topology spread.
REVISION_LABEL = "leaderworkerset.sigs.k8s.io/template-revision-hash"
# vLLM's multi-node executor without Ray: the supported backend for nnodes > 1
# (vllm/config/parallel.py: "nnodes > 1 can only be set when distributed executor backend is mp").
EXECUTOR = "mp"


def workload_ref(resolved: Resolved, runtime: Runtime | None = None) -> dict[str, str]:
    """The object that runs resolved's pods: what the HPA and KEDA scale."""
    name = workload_name(resolved.name, runtime or resolved.runtime)
    if resolved.multi_node:
        return {"apiVersion": API_VERSION, "kind": KIND, "name": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def group_args(nodes: int, leader: bool) -> list[str]:
    """What a pod of the group adds to the single-node server's arguments."""
    return [
        f"--pipeline-parallel-size={nodes}",
        f"--distributed-executor-backend={EXECUTOR}",
        f"--nnodes={nodes}",
        "--node-rank=0" if leader else "--node-rank=$(LWS_WORKER_INDEX)",
        "--master-addr=$(LWS_LEADER_ADDRESS)",
        *([] if leader else ["--headless"]),
    ]


def _pod_template(template: dict[str, Any], nodes: int, leader: bool) -> dict[str, Any]:
    pod = copy.deepcopy(template)
    spec = pod["spec"]
    if not leader:
        # A worker serves no API: no gateway in front of it (render/gateway.py).
        spec["containers"] = [c for c in spec["containers"] if c["name"] != GATEWAY_CONTAINER]
    for container in spec["containers"]:
        if container["name"] != SERVER_CONTAINER:
            continue
        container["args"] = [*container["args"], *group_args(nodes, leader)]
        env = [e for e in container.get("env", []) if e["name"] != "VLLM_HOST_IP"]
        env.append({"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        container["env"] = env
        if not leader:
            # --headless starts no API server: an HTTP probe would fail on a healthy worker.
            for field in ("ports", "startupProbe", "readinessProbe", "livenessProbe", "lifecycle"):
                container.pop(field, None)
    for constraint in spec.get("topologySpreadConstraints", []):
        constraint["matchLabelKeys"] = [REVISION_LABEL]
    if not leader:
        pod["metadata"]["labels"] = {**pod["metadata"]["labels"], COMPONENT_LABEL: WORKER}
        # Spreading is about serving replicas, i.e. leaders; a group's pods each need a whole node.
        spec.pop("topologySpreadConstraints", None)
    return pod


def render_leader_worker_set(resolved: Resolved, deployment: dict[str, Any]) -> dict[str, Any]:
    """The vLLM Deployment of `resolved` as a LeaderWorkerSet of groups of gpu.nodes pods."""
    gpu = resolved.resources.gpu
    if gpu is None or gpu.nodes < 2:
        raise ValueError(f"{resolved.namespace}/{resolved.name}: a LeaderWorkerSet needs 2 or more nodes")
    template = deployment["spec"]["template"]
    spec: dict[str, Any] = {}
    if "replicas" in deployment["spec"]:
        spec["replicas"] = deployment["spec"]["replicas"]  # absent: the autoscaler owns it
    spec |= {
        # Workers start with the leader: vLLM's leader serves only once every stage has joined.
        "startupPolicy": "LeaderCreated",
        "rolloutStrategy": {
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "leaderWorkerTemplate": {
            "size": gpu.nodes,
            "restartPolicy": "RecreateGroupOnPodRestart",
            "leaderTemplate": _pod_template(template, gpu.nodes, leader=True),
            "workerTemplate": _pod_template(template, gpu.nodes, leader=False),
        },
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": copy.deepcopy(deployment["metadata"]),
        "spec": spec,
    }
