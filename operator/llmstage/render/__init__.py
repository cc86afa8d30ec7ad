"""Pure renderers: a Resolved LLMService (+ ClusterFacts) -> the Kubernetes objects that serve it.

No I/O and no clock: the same input gives the same objects in the same order, as plain dicts.
OwnerReferences are left to the operator (see `owner_reference`).

Objects, in order (dependencies first):

    PersistentVolumeClaim    NAME-RUNTIME-cache  model cache, when shared and not the user's claim
                                                 (a claim per pod is in the Deployment's template)
    Deployment               NAME-RUNTIME        the runtime's server (from templates/*.j2), or
    LeaderWorkerSet          NAME-vllm           when one replica spans several nodes (leaderworkerset.py)
    Service                  NAME                port 8000 `http`, selects `serving_runtime`'s pods
    NetworkPolicy            NAME                who may reach the pods (spec.networkPolicy, on by default)
    HorizontalPodAutoscaler  NAME-RUNTIME        when autoscaling is on (autoscaler hpa)
    ScaledObject             NAME-RUNTIME        when autoscaling is on with autoscaler keda
    PodDisruptionBudget      NAME-RUNTIME        when resolved.pod_disruption_budget
    PodMonitor               NAME-vllm           vLLM only, when facts.pod_monitor_crd
    InferencePool, HTTPRoute NAME                spec.routing (routing.py)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmstage.api.constants import Runtime
from llmstage.render.autoscaling import render_autoscaler
from llmstage.render.disruption import render_disruption_budget
from llmstage.render.keda import render_scaled_object
from llmstage.render.labels import (
    cache_claim_name,
    owner_reference,
    selector_labels,
    selector_string,
    service_name,
    workload_name,
)
from llmstage.render.leaderworkerset import API_VERSION as LWS_API_VERSION
from llmstage.render.leaderworkerset import KIND as LWS_KIND
from llmstage.render.leaderworkerset import render_leader_worker_set
from llmstage.render.monitoring import render_pod_monitor
from llmstage.render.network import render_network_policy
from llmstage.render.routing import render_routing
from llmstage.render.service import render_service
from llmstage.render.storage import render_cache_claim
from llmstage.resolve.resolved import ClusterFacts, Resolved

__all__ = [
    "ObjectRef",
    "cache_claim_name",
    "owner_reference",
    "render",
    "render_autoscaler",
    "render_cache_claim",
    "render_deployment",
    "render_disruption_budget",
    "render_network_policy",
    "render_pod_monitor",
    "render_scaled_object",
    "render_service",
    "runtime_objects",
    "selector_labels",
    "selector_string",
    "service_name",
    "workload_name",
]


class ObjectRef(NamedTuple):
    api_version: str
    kind: str
    name: str


def render_deployment(resolved: Resolved, surge_blocked: bool = False) -> dict[str, Any]:
    """The workload of resolved.runtime, from that runtime's template: its Deployment, or for a
    replica over several nodes the LeaderWorkerSet built from it. surge_blocked: a rollout's extra
    pod found no room, so the rollout replaces pods instead (render/pod.py update_strategy)."""
    # Imported here: the template modules load Jinja2, which a caller of the names alone skips.
    from llmstage.render import ollama, vllm

    if resolved.runtime is Runtime.OLLAMA:
        if resolved.ollama is None:
            raise ValueError(f"{resolved.namespace}/{resolved.name}: runtime ollama without ollama settings")
        return ollama.render_deployment(resolved, resolved.ollama, surge_blocked)
    if resolved.vllm is None:
        raise ValueError(f"{resolved.namespace}/{resolved.name}: runtime vllm without vllm settings")
    deployment = vllm.render_deployment(resolved, resolved.vllm, surge_blocked)
    if resolved.multi_node:
        return render_leader_worker_set(resolved, deployment)
    return deployment


def render(
    resolved: Resolved,
    facts: ClusterFacts = ClusterFacts(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    serving_runtime: Runtime | None = None,
    surge_blocked: bool = False,
) -> list[dict[str, Any]]:
    """Every object for resolved.runtime, plus the Service selecting `serving_runtime`'s pods.

    serving_runtime defaults to resolved.runtime. During a cutover the operator renders the new
    runtime's objects while passing the old runtime here, so traffic moves only when it says so.
    """
    optional = (
        render_autoscaler(resolved),
        render_scaled_object(resolved),
        render_disruption_budget(resolved),
        render_pod_monitor(resolved, facts),
    )
    claim = render_cache_claim(resolved)
    network_policy = render_network_policy(resolved, facts)
    return [
        *([claim] if claim is not None else []),
        render_deployment(resolved, surge_blocked),
        render_service(resolved, serving_runtime or resolved.runtime),
        *([network_policy] if network_policy is not None else []),
        *(obj for obj in optional if obj is not None),
        *render_routing(resolved, serving_runtime or resolved.runtime),
    ]


def runtime_objects(name: str, runtime: Runtime) -> list[ObjectRef]:
    """Every object `render` may create for one runtime, except the shared Service.

    The operator's plan keeps the old runtime's objects during a cutover, until the Service's
    endpoints are all pods of the new runtime (controller/plan.py). Objects it did not render,
    such as a PodMonitor on a cluster without the CRD, are simply not found.
    """
    workload = workload_name(name, runtime)
    refs = [
        ObjectRef("v1", "PersistentVolumeClaim", cache_claim_name(name, runtime)),
        ObjectRef("apps/v1", "Deployment", workload),
        ObjectRef(LWS_API_VERSION, LWS_KIND, workload),
        ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", workload),
        ObjectRef("keda.sh/v1alpha1", "ScaledObject", workload),
        ObjectRef("policy/v1", "PodDisruptionBudget", workload),
    ]
    if runtime is Runtime.VLLM:
        refs.append(ObjectRef("monitoring.coreos.com/v1", "PodMonitor", workload))
    return refs
