"""The NetworkPolicy as the operator applies it: on by default, following spec.networkPolicy, and
pruned when it is turned off. Whether a network plugin enforces it is not tested here (the local
cluster runs none); see docs/security.md for what that test must show on a real node."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testkit import wait_until
from testkit.services import LLMServices


def network_policy(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found = client.NetworkingV1Api(api).read_namespaced_network_policy(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return api.sanitize_for_serialization(found)


def test_the_operator_applies_updates_and_prunes_the_network_policy(
    namespace: str, operator: Any, api_client: client.ApiClient
) -> None:
    services = LLMServices(api_client, namespace)
    services.create("chat")
    applied = wait_until(
        lambda: network_policy(api_client, namespace, "chat"), timeout=60, what="the NetworkPolicy"
    )
    assert applied["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    assert applied["metadata"]["ownerReferences"][0]["kind"] == "LLMService"

    gateway = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}
    services.patch_spec("chat", {"networkPolicy": {"allowedClients": [gateway]}})
    wait_until(
        lambda: (
            (p := network_policy(api_client, namespace, "chat"))
            and p["spec"]["ingress"][0]["from"] == [gateway]
        ),
        timeout=60,
        what="the NetworkPolicy admitting the gateway only",
    )

    services.patch_spec("chat", {"networkPolicy": {"enabled": False, "allowedClients": None}})
    wait_until(
        lambda: network_policy(api_client, namespace, "chat") is None,
        timeout=60,
        what="the NetworkPolicy pruned",
    )
