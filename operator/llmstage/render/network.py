"""The NetworkPolicy: who may reach the serving pods.

One per LLMService, named like it and its Service, selecting the serving pods of both runtimes
(so a cutover needs nothing of its own), ingress only:

- the serving port (8000) from spec.networkPolicy.allowedClients; by default from every pod of
  the LLMService's namespace, which is what "same namespace" means to most users;
- on vLLM, the gateway's metrics port (render/gateway.py: /metrics and nothing else) from the
  monitoring namespace the operator is configured with (ClusterFacts.monitoring_namespace).

Nothing else reaches the pods: Ollama's management API (pull, push, delete) and vLLM's routes stay
within the allowed clients. Egress is left open: the download steps need the Hub, the registry or
a bucket. A NetworkPolicy does nothing without a network plugin that enforces it.
"""

from __future__ import annotations

import copy
from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.gateway import METRICS_PORT
from llmstage.render.labels import (
    APP_NAME,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    NAME_LABEL,
    SERVER,
    metadata,
    service_name,
)
from llmstage.render.pod import HTTP_PORT
from llmstage.resolve.resolved import ClusterFacts, Resolved

# Set by the API server on every namespace (NamespaceDefaultLabelName, Kubernetes 1.22+).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
SAME_NAMESPACE: dict[str, Any] = {"podSelector": {}}


def serving_pods(name: str) -> dict[str, str]:
    """Labels of the serving pods of both runtimes (selector_labels without the runtime)."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name, COMPONENT_LABEL: SERVER}


def render_network_policy(resolved: Resolved, facts: ClusterFacts) -> dict[str, Any] | None:
    if not resolved.network.enabled:
        return None
    port = [{"protocol": "TCP", "port": HTTP_PORT}]
    clients = [copy.deepcopy(c) for c in resolved.network.clients] or [dict(SAME_NAMESPACE)]
    ingress: list[dict[str, Any]] = [{"from": clients, "ports": port}]
    if resolved.runtime is Runtime.VLLM and facts.monitoring_namespace:
        monitoring = {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: facts.monitoring_namespace}}
        }
        metrics = [{"protocol": "TCP", "port": METRICS_PORT}]
        ingress.append({"from": [monitoring], "ports": metrics})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(resolved, service_name(resolved.name), SERVER),
        "spec": {
            "podSelector": {"matchLabels": serving_pods(resolved.name)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
