"""What the operator watches: each kind, the labels its objects must carry, and the watch cache
method that takes them. kopf registers one handler per entry (controller/handlers.py) and the
direct route from kopf's streams delivers to the same one (controller/kopfwatch.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from llmstage.controller.kube import KINDS
from llmstage.render.labels import APP_NAME, CACHE, COMPONENT_LABEL, MANAGED_BY_LABEL, MANAGER, NAME_LABEL

KEDA_API_VERSION = "keda.sh/v1alpha1"
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"
HTTP_ROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
# Kinds of optional add-ons: the CRD that serves each, and the ClusterFacts field that says it does.
OPTIONAL_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    (KEDA_API_VERSION, "ScaledObject"): ("scaledobjects.keda.sh", "keda_crd"),
    (LWS_API_VERSION, "LeaderWorkerSet"): ("leaderworkersets.leaderworkerset.x-k8s.io", "lws_crd"),
    (INFERENCE_POOL_API_VERSION, "InferencePool"): (
        "inferencepools.inference.networking.k8s.io",
        "inference_pool_crd",
    ),
    (HTTP_ROUTE_API_VERSION, "HTTPRoute"): ("httproutes.gateway.networking.k8s.io", "http_route_crd"),
}

OURS = {MANAGED_BY_LABEL: MANAGER}
CHILD_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    # Watched so that a ScaledObject is pruned when spec.autoscaling.autoscaler goes back to hpa.
    # Without KEDA's CRD kopf logs one "unresolved resources" warning and watches the rest; the
    # same for the kinds below (LeaderWorkerSet, the inference extension's, Gateway API's).
    (KEDA_API_VERSION, "ScaledObject"),
    (LWS_API_VERSION, "LeaderWorkerSet"),
    (INFERENCE_POOL_API_VERSION, "InferencePool"),
    (HTTP_ROUTE_API_VERSION, "HTTPRoute"),
]


@dataclass(frozen=True, eq=False)  # each entry of WATCHES is its own key: hashed by identity
class Watch:
    """One watched kind. `labels` as kopf takes them: a value, kopf.PRESENT or kopf.ABSENT per key;
    `put` names the WatchCache method that stores an object of the kind."""

    group: str
    version: str
    plural: str
    labels: Mapping[str, Any]
    put: str
    handler_id: str

    @property
    def service(self) -> bool:
        """An LLMService itself, rather than an object that belongs to one."""
        return self.put == "put_service"


def _child(api_version: str, kind: str) -> Watch:
    group, _, version = api_version.rpartition("/")
    plural = KINDS[(api_version, kind)].plural
    return Watch(group, version, plural, OURS, "put_child", f"{plural}-event")


WATCHES: tuple[Watch, ...] = (
    Watch("llmstage.io", "v1alpha1", "llmservices", {}, "put_service", "llmservice_event"),
    *(_child(api_version, kind) for api_version, kind in CHILD_KINDS),
    # EndpointSlices carry our Service's labels; pods carry our pod-template labels.
    Watch("discovery.k8s.io", "v1", "endpointslices", OURS, "put_slice", "endpointslices-event"),
    Watch("", "v1", "pods", {NAME_LABEL: APP_NAME}, "put_pod", "pods-event"),
    # Claims per pod (spec.cache mode PerPod) carry our labels but not managed-by: the pod owns
    # them. kopf filters labels on its side: the PVC watch above is the only one.
    Watch(
        "",
        "v1",
        "persistentvolumeclaims",
        {NAME_LABEL: APP_NAME, COMPONENT_LABEL: CACHE, MANAGED_BY_LABEL: kopf.ABSENT},
        "put_pod_claim",
        "pod-claims-event",
    ),
)
