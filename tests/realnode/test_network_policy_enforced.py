"""The NetworkPolicy of an LLMService is enforced on the real node: kube-router's network-policy
controller (hack/realnode/netpol.py) turns the policy the operator renders (render/network.py)
into iptables rules, so only the clients the spec names reach the model.

With the default policy (clients from the LLMService's own namespace) a pod of that namespace is
answered through the Service's name and a pod of another namespace is refused; once
allowedClients names that other namespace, it is answered and the own namespace is refused. The
kubelet's probes (node traffic, which kube-router lets through) keep the pod Ready throughout.
vLLM's metrics port from the monitoring namespace only: tests/realnode/test_vllm.py.

kube-router v2.1.0 REJECTs what no policy admits (pkg/controllers/netpol/pod.go, "rule to REJECT
traffic destined for POD", icmp-port-unreachable): a refused client sees its connection refused
at once, not a timeout as with implementations that drop."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from testkit import wait_until
from testkit.realnode import Cluster, dev_service, netpol_enforced, policy_in_force

NAME = "smol"
ANSWERED = "answered HTTP/1.1 200 OK"


@pytest.fixture(autouse=True)
def enforced(real_node: str) -> None:
    if not netpol_enforced():
        pytest.skip("LLMSTAGE_NETPOL=0: the real node enforces no NetworkPolicy")


def test_only_the_clients_the_policy_admits_reach_the_model(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    ns, other = new_namespace("netpol"), new_namespace("outside")
    cluster.apply(ns, dev_service(NAME, images))
    cluster.wait_ready(NAME, ns, "ollama")
    policy = cluster.get("networkpolicy", NAME, ns)["spec"]
    assert policy["ingress"][0]["from"] == [{"podSelector": {}}], policy
    (server,) = (
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={NAME}")
        if not p["metadata"].get("deletionTimestamp")
    )
    pod = server["metadata"]["name"]
    # Only once kube-router runs the pod through the policy does a refusal mean the policy refused.
    wait_until(
        lambda: policy_in_force(ns, pod, NAME),
        timeout=60,
        interval=1,
        what=f"kube-router enforcing {NAME} on {pod}",
    )

    inside = cluster.reach(ns, "client-inside", images["client"], NAME, 8000, "/v1/models")
    outside = cluster.reach(other, "client-outside", images["client"], f"{NAME}.{ns}.svc", 8000, "/v1/models")
    print(f"default policy: a pod of {ns}: {inside!r}; a pod of {other}: {outside!r}")
    assert inside == ANSWERED
    assert outside == "refused"

    # allowedClients names the other namespace only: the answer and the refusal swap.
    names_other = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": other}}}
    cluster.apply(ns, dev_service(NAME, images, networkPolicy={"allowedClients": [names_other]}))
    wait_until(
        lambda: cluster.get("networkpolicy", NAME, ns)["spec"]["ingress"][0]["from"] == [names_other],
        timeout=60,
        interval=1,
        what="the operator to update the NetworkPolicy",
    )
    # The first answer shows kube-router synced the new policy (each sync replaces every rule at
    # once), so the refusal after it is the policy's and not an old rule's.
    outside = cluster.reach(
        other, "client-outside-2", images["client"], f"{NAME}.{ns}.svc", 8000, "/v1/models"
    )
    inside = cluster.reach(ns, "client-inside-2", images["client"], NAME, 8000, "/v1/models")
    print(f"allowedClients [{other}]: a pod of {other}: {outside!r}; a pod of {ns}: {inside!r}")
    assert outside == ANSWERED
    assert inside == "refused"

    # The kubelet's probes are node traffic: the server stayed Ready and was never restarted.
    (server,) = (
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={NAME}")
        if not p["metadata"].get("deletionTimestamp")
    )
    assert server["metadata"]["name"] == pod
    for container in server["status"]["containerStatuses"]:
        assert container["ready"] and container["restartCount"] == 0, container
