"""The kinds llmstage reads and writes, and their REST paths.

Paths come from this static table instead of API discovery: the operator touches a fixed set of
kinds, and discovery would cost requests and memory on every start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


# (apiVersion, kind, plural); the cluster-scoped ones are in CLUSTER_SCOPED.
_TABLE = """
llmstage.io/v1alpha1            LLMService               llmservices
apps/v1                         Deployment               deployments
v1                              Service                  services
v1                              PersistentVolumeClaim    persistentvolumeclaims
v1                              Pod                      pods
v1                              ConfigMap                configmaps
v1                              Event                    events
v1                              Node                     nodes
batch/v1                        Job                      jobs
autoscaling/v2                  HorizontalPodAutoscaler  horizontalpodautoscalers
policy/v1                       PodDisruptionBudget      poddisruptionbudgets
networking.k8s.io/v1            NetworkPolicy            networkpolicies
discovery.k8s.io/v1             EndpointSlice            endpointslices
coordination.k8s.io/v1          Lease                    leases
monitoring.coreos.com/v1        PodMonitor               podmonitors
keda.sh/v1alpha1                ScaledObject             scaledobjects
leaderworkerset.x-k8s.io/v1     LeaderWorkerSet          leaderworkersets
inference.networking.k8s.io/v1  InferencePool            inferencepools
gateway.networking.k8s.io/v1    HTTPRoute                httproutes
apiextensions.k8s.io/v1         CustomResourceDefinition customresourcedefinitions
"""
CLUSTER_SCOPED = frozenset({"Node", "CustomResourceDefinition"})

KINDS: dict[tuple[str, str], Kind] = {
    (api_version, kind): Kind(api_version, kind, plural, namespaced=kind not in CLUSTER_SCOPED)
    for api_version, kind, plural in (line.split() for line in _TABLE.strip().splitlines())
}


def kind_of(obj: dict[str, Any]) -> Kind:
    try:
        return KINDS[(obj["apiVersion"], obj["kind"])]
    except KeyError as err:
        raise ValueError(f"llmstage does not manage {obj.get('apiVersion')}/{obj.get('kind')}") from err
