"""Pod-level pieces both runtime templates share: scheduling, resources, spread, update strategy.

The templates show the structure of the Deployment; the merging rules live here, where they can
be read and tested as code.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from llmstage.api.constants import MANAGED_ENV_PREFIX, Runtime
from llmstage.render.labels import selector_labels
from llmstage.resolve.resolved import GPU, Resolved, Resources

# The shared serving port: the Service, both runtimes and every probe use it.
HTTP_PORT = 8000
# Node label set by GPU feature discovery; GPU.product holds a value of it.
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Where the model cache PVC is mounted in every container.
CACHE_MOUNT_PATH = "/models"
# Seconds kube-proxy, endpoint slices and ingress controllers get to stop sending new requests
# to a terminating pod before the server begins its own shutdown.
PRE_STOP_SLEEP_SECONDS = 15
# In-flight generations can take minutes; give them time to finish after the preStop sleep.
TERMINATION_GRACE_PERIOD_SECONDS = 120
# Allowance for scheduling and pulling the (multi-gigabyte) server image, on top of the model
# download and load time, before the Deployment reports ProgressDeadlineExceeded.
IMAGE_PULL_ALLOWANCE_SECONDS = 900
# sizeLimit of each of llmstage's own emptyDirs (HOME, /tmp, the pull step's HOME). Ollama writes
# little there (its key pair, logs, the runner's scratch file); vLLM's are JIT caches (Triton and
# FlashInfer in HOME, torch's in /tmp). Past it the kubelet evicts the pod instead of letting it
# fill the node's disk. Raise spec.resources.ephemeralStorage with them if a model needs more.
SCRATCH_SIZE_LIMIT = {Runtime.OLLAMA: "1Gi", Runtime.VLLM: "8Gi"}


@dataclass(frozen=True)
class ProbeBudget:
    """A startup probe sized to a time budget: failureThreshold x periodSeconds >= budget."""

    budget_seconds: int
    # Short, so a pod turns Ready half a second (on average) after its server can answer (once the startup
    # probe succeeds the kubelet runs the readiness probe at once). Both startup probes are
    # cheap (a file test, GET /health) and stop after their first success; the budget is kept
    # by failureThreshold (the real-node measurement: docs/benchmarks.md, P7).
    period_seconds: int = 1

    @property
    def failure_threshold(self) -> int:
        return max(1, math.ceil(self.budget_seconds / self.period_seconds))


def gpu_toleration(gpu: GPU) -> dict[str, Any]:
    # GPU node pools are tainted with the resource name (NVIDIA's and the clouds' convention);
    # Exists tolerates any value ("present", "true").
    return {"key": gpu.resource_name, "operator": "Exists", "effect": "NoSchedule"}


def tolerations(resolved: Resolved) -> list[dict[str, Any]]:
    """The user's tolerations plus the GPU toleration when the pod asks for GPUs (no duplicates)."""
    merged = [copy.deepcopy(dict(t)) for t in resolved.scheduling.tolerations]
    gpu = resolved.resources.gpu
    if gpu is not None and gpu.count > 0:
        extra = gpu_toleration(gpu)
        if extra not in merged:
            merged.append(extra)
    return merged


def _member(parent: dict[str, Any], key: str, empty: Any) -> Any:
    """parent[key], set to `empty` when missing or null (null means unset in Kubernetes)."""
    if parent.get(key) is None:
        parent[key] = empty
    return parent[key]


def node_requirements(resolved: Resolved) -> list[list[dict[str, Any]]]:
    """What the node must have, as alternatives (ORed) of expressions (ANDed): the GPU product, or
    one of the CPU features vLLM's CPU backend needs for a 16-bit dtype. Empty: any node."""
    gpu = resolved.resources.gpu
    if gpu is not None and gpu.count >= 1 and gpu.product:
        return [[{"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [gpu.product]}]]
    cpu = resolved.vllm.cpu if resolved.vllm else None
    if cpu is not None and cpu.cpu_features:
        return [[{"key": label, "operator": "In", "values": ["true"]}] for label in cpu.cpu_features]
    return []


def affinity(resolved: Resolved) -> dict[str, Any] | None:
    """The user's affinity with the node requirements (node_requirements) ANDed into every node
    selector term.

    Node selector terms are ORed, so each requirement goes into each term (one copy of a term per
    alternative of the requirement); adding a separate term would let pods land on any node that
    matches the user's terms, whatever its GPU or CPU. The user's affinity is free-form in the CRD:
    parts of the wrong shape are passed through untouched for the API server to reject with its own
    message, rather than crash the render.
    """
    merged: dict[str, Any] = copy.deepcopy(resolved.scheduling.affinity or {})
    alternatives = node_requirements(resolved)
    if not alternatives:
        return merged or None
    node_affinity = _member(merged, "nodeAffinity", {})
    required = (
        _member(node_affinity, "requiredDuringSchedulingIgnoredDuringExecution", {})
        if isinstance(node_affinity, dict)
        else None
    )
    terms = _member(required, "nodeSelectorTerms", []) if isinstance(required, dict) else None
    if isinstance(terms, list):
        if not terms:
            terms.append({})
        combined = []
        for term in terms:
            for alternative in alternatives:
                copied = copy.deepcopy(term)
                expressions = _member(copied, "matchExpressions", []) if isinstance(copied, dict) else None
                if isinstance(expressions, list):
                    expressions.extend(copy.deepcopy(alternative))
                combined.append(copied)
        terms[:] = combined
    return merged


def topology_spread_constraints(resolved: Resolved, runtime: Runtime) -> list[dict[str, Any]]:
    """Spread replicas across nodes, then zones, when resolved.topology_spread is on.

    ScheduleAnyway, not DoNotSchedule: GPU nodes are scarce, and a hard constraint leaves a replica
    Pending when the only node with a free GPU already runs one. The scheduler still scores spread
    placements first. matchLabelKeys keeps a rollout's new pods from counting the old ones.
    """
    if not resolved.topology_spread:
        return []
    selector = {"matchLabels": selector_labels(resolved.name, runtime)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": copy.deepcopy(selector),
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def container_resources(resources: Resources) -> dict[str, Any]:
    """Requests for CPU and memory; a memory limit; no CPU limit; GPUs as limits.

    No CPU limit: throttling a token generator only adds latency, and requests already reserve
    the CPU. Memory limit = request so a model that does not fit fails loudly (OOMKilled) on its
    own pod instead of evicting neighbours. Extended resources (GPUs) need only the limit.
    """
    limits: dict[str, Any] = {"memory": resources.memory}
    if resources.gpu is not None and resources.gpu.count > 0:
        limits[resources.gpu.resource_name] = resources.gpu.count
    requests = {"cpu": resources.cpu, "memory": resources.memory}
    if resources.ephemeral_storage:
        # A request only: the scheduler picks a node with the disk; a limit would evict the pod.
        requests["ephemeral-storage"] = resources.ephemeral_storage
    return {"requests": requests, "limits": limits}


def min_replicas(resolved: Resolved) -> int:
    """The fewest pods the service runs: replicas, or the autoscaler's minimum."""
    if resolved.autoscaling is not None:
        return resolved.autoscaling.min_replicas
    return resolved.replicas if resolved.replicas is not None else 1


def surge_first(resolved: Resolved) -> bool:
    """A GPU service that may run a single pod, whose cache lets a second pod start beside it (a
    claim per pod, ReadWriteMany): its rollouts start the new pod first (maxSurge 1), so it keeps
    serving, as long as the cluster has room for one more pod; the operator switches the rollout to
    replacing (maxSurge 0, maxUnavailable 1) when the surge pod finds no room (controller/plan.py)."""
    gpu = resolved.resources.gpu
    return (
        gpu is not None
        and gpu.count > 0
        and not resolved.cache.shared_single_attach
        and min_replicas(resolved) == 1
    )


def update_strategy(resolved: Resolved, surge_blocked: bool = False) -> dict[str, Any]:
    """Recreate with a shared ReadWriteOnce(Pod) cache; otherwise a rolling update.

    Shared ReadWriteOnce: a new pod on another node cannot attach the volume while the old pod
    holds it (Multi-Attach error), so the old pod must go first; ReadWriteOncePod refuses even a
    pod on the same node. A claim per pod has no such conflict: each new pod brings its own. On
    GPUs with two pods or more: surge 0, unavailable 1, because a surge pod needs a spare GPU that
    scarce GPU pools rarely have and would stay Pending, while the other pods keep serving. A GPU
    service that may run one pod surges first (surge_first) unless `surge_blocked`: the operator saw
    its surge pod find no room. On CPU: surge 1, unavailable 0, so serving capacity never drops.
    """
    if resolved.cache.shared_single_attach:
        return {"type": "Recreate"}
    gpu = resolved.resources.gpu
    if gpu is not None and gpu.count > 0 and (surge_blocked or not surge_first(resolved)):
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def extra_env(user_env: dict[str, str], reserved: frozenset[str]) -> list[dict[str, str]]:
    """The user's extra variables, sorted, without those llmstage sets itself.

    llmstage's own variables (port, paths, the typed settings) win: overriding OLLAMA_HOST or
    HF_HOME through env would break the Service port or the cache silently. The CRD rejects them
    already; this keeps a spec that bypassed admission from producing duplicate names.
    """
    return [
        {"name": key, "value": value}
        for key, value in sorted(user_env.items())
        if key not in reserved and not key.startswith(MANAGED_ENV_PREFIX)
    ]


def without(env: list[dict[str, str]], names: set[str]) -> list[dict[str, str]]:
    """env without the variables a container sets itself (no duplicate names in one container)."""
    return [variable for variable in env if variable["name"] not in names]


def pod_labels(resolved: Resolved, own: dict[str, str]) -> dict[str, str]:
    """spec.pod.labels under llmstage's own (the CRD keeps the user off llmstage's prefixes)."""
    return {**resolved.pod.labels, **own}


def pod_security_context(resolved: Resolved, own_id: int) -> dict[str, Any]:
    """Non-root with the runtime's user and group (own_id), or the IDs of the install's serving
    defaults, or none at all where the platform assigns them (OpenShift's restricted-v2 SCC rejects
    a pod whose IDs are outside the namespace's range, and sets them when they are left out).
    fsGroup makes the cache volume writable; skipping the recursive chown of a cache that already
    has the right group matters when it holds 100+ GB."""
    asked = resolved.pod_security
    ids = (
        {}
        if asked.platform_assigns_ids
        else {
            "runAsUser": asked.run_as_user or own_id,
            "runAsGroup": asked.run_as_group or own_id,
            "fsGroup": asked.fs_group or asked.run_as_group or own_id,
        }
    )
    return {
        "runAsNonRoot": True,
        **ids,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_annotations(resolved: Resolved) -> dict[str, str]:
    # `kubectl logs POD` and `kubectl exec` pick the server, not the init container.
    return {**resolved.pod.annotations, "kubectl.kubernetes.io/default-container": "server"}
