"""The NetworkPolicy of an LLMService (render/network.py): who may reach the serving pods."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmstage.api.models import LLMService, Runtime
from llmstage.render import render, selector_labels
from llmstage.render.network import render_network_policy
from llmstage.resolve import resolve
from llmstage.resolve.resolved import ClusterFacts, NetworkAccess

from testkit.render_fixtures import DEV_OLLAMA, PRODUCTION_VLLM, PRODUCTION_VLLM_CLIENTS

MONITORING = ClusterFacts(monitoring_namespace="monitoring")


def policy(resolved: Any, facts: ClusterFacts = MONITORING) -> dict[str, Any]:
    out = render_network_policy(resolved, facts)
    assert out is not None
    return out


def test_by_default_only_pods_of_the_same_namespace_reach_the_serving_port() -> None:
    spec = policy(DEV_OLLAMA)["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8000}]}]


def test_it_selects_the_pods_of_both_runtimes_so_a_cutover_keeps_them_closed() -> None:
    selector = policy(DEV_OLLAMA)["spec"]["podSelector"]["matchLabels"]
    for runtime in Runtime:
        assert selector.items() <= selector_labels(DEV_OLLAMA.name, runtime).items()
    assert policy(DEV_OLLAMA)["metadata"]["name"] == DEV_OLLAMA.name


def test_the_monitoring_namespace_reaches_vllms_metrics_port_and_never_ollamas() -> None:
    vllm = policy(PRODUCTION_VLLM)["spec"]["ingress"]
    # The gateway's metrics port (render/gateway.py), which serves /metrics and nothing else.
    assert vllm[1] == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": 9090}],
    }
    assert len(policy(DEV_OLLAMA)["spec"]["ingress"]) == 1  # Ollama has no /metrics
    assert len(policy(PRODUCTION_VLLM, ClusterFacts())["spec"]["ingress"]) == 1  # none configured


def test_named_clients_replace_the_default() -> None:
    clients = policy(PRODUCTION_VLLM_CLIENTS)["spec"]["ingress"][0]["from"]
    assert clients == list(PRODUCTION_VLLM_CLIENTS.network.clients)
    assert {"podSelector": {}} not in clients


def test_disabled_renders_none() -> None:
    resolved = replace(DEV_OLLAMA, network=NetworkAccess(enabled=False))
    assert render_network_policy(resolved, MONITORING) is None
    assert "NetworkPolicy" not in [o["kind"] for o in render(resolved, MONITORING)]


def test_the_spec_becomes_peers_without_empty_members() -> None:
    body = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "chat", "namespace": "team"},
        "spec": {
            "model": {"name": "llama3.1:8b"},
            "networkPolicy": {
                "allowedClients": [
                    {"namespaceSelector": {}},
                    {
                        "podSelector": {
                            "matchLabels": {"app": "ui"},
                            "matchExpressions": [{"key": "tier", "operator": "Exists"}],
                        }
                    },
                ]
            },
        },
    }
    network = resolve(LLMService.from_object(body)).network
    assert network == NetworkAccess(
        enabled=True,
        clients=(
            {"namespaceSelector": {}},
            {
                "podSelector": {
                    "matchLabels": {"app": "ui"},
                    "matchExpressions": [{"key": "tier", "operator": "Exists"}],
                }
            },
        ),
    )
