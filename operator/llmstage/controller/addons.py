"""Objects of add-ons the cluster may lack: hold them back and say what to install.

    addons_step(resolved, facts, objects) -> (objects to apply, (reason, message) of Stalled | None)

Like KEDA (controller/autoscaling.py), each add-on's CRD is looked up when the operator starts
(ClusterFacts). Applying a kind the API server does not serve would fail the whole reconcile, so
its objects are left out and the service is Stalled with a message naming what to install:

- LeaderWorkerSet: a replica over several nodes (spec.resources.gpu.nodes, or the memory fit's
  choice) is a LeaderWorkerSet group. Without LWS nothing can run it: the LeaderWorkerSet and
  what scales it (HPA, ScaledObject) are held back.
- The Gateway API Inference Extension and Gateway API (spec.routing): without the InferencePool
  or HTTPRoute CRD, both are held back; the Service serves as without spec.routing.
"""

from __future__ import annotations

from typing import Any

from llmstage.controller.autoscaling import HPA, SCALED_OBJECT
from llmstage.render.leaderworkerset import KIND as LWS
from llmstage.render.routing import HTTP_ROUTE, INFERENCE_POOL
from llmstage.resolve.resolved import ClusterFacts, Resolved

LWS_MISSING = "LeaderWorkerSetNotInstalled"
ROUTING_MISSING = "InferenceExtensionNotInstalled"
LWS_INSTALL = (
    "install LeaderWorkerSet (https://lws.sigs.k8s.io/docs/installation/, e.g. helm install lws "
    "oci://ghcr.io/kubernetes-sigs/lws-charts/lws --namespace lws-system --create-namespace) and "
    "restart the operator"
)


def lws_missing_message(resolved: Resolved) -> str:
    gpu = resolved.resources.gpu
    nodes, count = (gpu.nodes, gpu.count) if gpu else (1, 0)
    return (
        f"one replica needs {nodes} nodes of {count} GPUs (the ModelFits condition says why), which "
        f"llmstage runs as a LeaderWorkerSet group, but the cluster has no LeaderWorkerSet "
        f"(CustomResourceDefinition leaderworkersets.leaderworkerset.x-k8s.io not found when the "
        f"operator started), so no vLLM pod runs: {LWS_INSTALL}, or make the model fit one node "
        f"(spec.vllm.quantization fp8, a smaller spec.vllm.maxModelLen, GPUs with more memory)"
    )


def routing_missing_message(facts: ClusterFacts) -> str:
    missing = [
        crd
        for crd, present in (
            ("inferencepools.inference.networking.k8s.io", facts.inference_pool_crd),
            ("httproutes.gateway.networking.k8s.io", facts.http_route_crd),
        )
        if not present
    ]
    return (
        f"spec.routing asks for an InferencePool behind a Gateway, but the cluster lacks the "
        f"CustomResourceDefinition {' and '.join(missing)} (looked up when the operator started), so "
        f"neither the InferencePool nor the HTTPRoute is applied; the Service serves as without "
        f"spec.routing. Install Gateway API and the Gateway API Inference Extension's CRDs (with a "
        f"Gateway implementation that supports InferencePool, docs/routing.md) and restart the "
        f"operator, or remove spec.routing"
    )


def addons_step(
    resolved: Resolved, facts: ClusterFacts, objects: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """The objects the cluster can take now, and why the service is Stalled if it cannot take all."""
    stalled: tuple[str, str] | None = None
    held: set[str] = set()
    if resolved.routing is not None and not (facts.inference_pool_crd and facts.http_route_crd):
        held |= {INFERENCE_POOL, HTTP_ROUTE}
        stalled = (ROUTING_MISSING, routing_missing_message(facts))
    if resolved.multi_node and not facts.lws_crd:
        held |= {LWS, HPA, SCALED_OBJECT}
        stalled = (LWS_MISSING, lws_missing_message(resolved))  # the worse of the two: nothing serves
    return [o for o in objects if o["kind"] not in held], stalled
