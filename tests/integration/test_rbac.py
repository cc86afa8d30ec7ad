"""The chart's RBAC as installed: least privilege (no wildcards, no Secrets), enough for every call
the operator makes (asked of the API server's authorizer), and the namespaced mode with Roles only,
proven by reconciling under the ServiceAccount's token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import wait_until
from testkit.chart import (
    ChartRelease,
    create_namespace,
    delete_namespaces,
    forbidden_lines,
    kubectl,
    unique,
    wildcard_or_secret_rules,
)

# Every (verb, resource) the operator uses in a namespace it watches.
NEEDED = [
    *[(verb, "llmservices.llmstage.io") for verb in ("get", "list", "watch")],
    ("patch", "llmservices.llmstage.io/status"),
    *[
        (verb, resource)
        for resource in (
            "deployments.apps",
            "services",
            "persistentvolumeclaims",
            "horizontalpodautoscalers.autoscaling",
            "poddisruptionbudgets.policy",
            "networkpolicies.networking.k8s.io",
            "podmonitors.monitoring.coreos.com",
        )
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ],
    # KEDA ScaledObjects: watched, applied, pruned; never read one by one.
    *[(verb, "scaledobjects.keda.sh") for verb in ("list", "watch", "create", "patch", "delete")],
    *[
        (verb, resource)
        for resource in ("pods", "endpointslices.discovery.k8s.io")
        for verb in ("get", "list", "watch")
    ],
    ("create", "events"),
]
# Never: Secrets (the pods reference them by name), writing pods, or the LLMService spec.
DENIED = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "pods"),
    ("delete", "pods"),
    ("update", "llmservices.llmstage.io"),
    ("delete", "llmservices.llmstage.io"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("get", "configmaps"),
    ("get", "scaledobjects.keda.sh"),
    ("update", "scaledobjects.keda.sh"),
    ("create", "scaledjobs.keda.sh"),
]


@pytest.fixture(scope="module")
def prefix(namespace_prefix: str) -> str:
    return f"{namespace_prefix.rstrip('-')}r-"


def can_i(
    kubeconfig: Path, sa: str, verb: str, resource: str, namespace: str = "", object_name: str = ""
) -> bool:
    """Ask the API server's authorizer (SubjectAccessReview) whether the ServiceAccount may do
    `verb` on `resource[.group][/subresource]` in `namespace` ("" = every namespace / cluster)."""
    name, _, sub = resource.partition("/")
    plural, _, group = name.partition(".")
    sa_namespace = sa.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": sa,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{sa_namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": plural,
                "subresource": sub,
                "name": object_name,
            },
        },
    }
    out = kubectl(kubeconfig, "create", "-o", "json", "-f", "-", stdin=json.dumps(review)).stdout
    return bool(json.loads(out)["status"].get("allowed"))


def rbac_objects(release: ChartRelease) -> list[dict[str, Any]]:
    kinds = {"ClusterRole", "Role"}
    return [
        release.get(d["kind"].lower(), d["metadata"]["name"], d["metadata"].get("namespace"))
        for d in release.manifest()
        if d["kind"] in kinds
    ]


@pytest.fixture(scope="module")
def cluster_release(kubeconfig: Path, crd_installed: None, prefix: str) -> Iterator[ChartRelease]:
    """The chart's defaults: ClusterRole, all namespaces."""
    system = create_namespace(kubeconfig, unique(prefix, "cluster"))
    rel = ChartRelease(kubeconfig, f"{prefix}all", system, {})
    try:
        yield rel.install()
    finally:
        rel.uninstall()
        delete_namespaces(kubeconfig, [system])


def test_the_installed_cluster_role_has_no_wildcard_and_no_secret_access(
    cluster_release: ChartRelease,
) -> None:
    objects = rbac_objects(cluster_release)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("ClusterRole", cluster_release.fullname),
        ("ClusterRole", f"{cluster_release.fullname}-edit"),  # for tenants, bound by no one
        ("ClusterRole", f"{cluster_release.fullname}-metrics-auth"),
        ("ClusterRole", f"{cluster_release.fullname}-metrics-reader"),  # for scrapers
        ("ClusterRole", f"{cluster_release.fullname}-view"),
        ("Role", f"{cluster_release.fullname}-leader-election"),
    ]
    for obj in objects:
        assert wildcard_or_secret_rules(obj["rules"]) == []


def test_leader_election_may_use_one_lease_in_the_release_namespace_and_nothing_else(
    kubeconfig: Path, cluster_release: ChartRelease
) -> None:
    sa = f"system:serviceaccount:{cluster_release.namespace}:{cluster_release.service_account()}"
    ns, lease = cluster_release.namespace, cluster_release.fullname
    leases = "leases.coordination.k8s.io"
    assert can_i(kubeconfig, sa, "create", leases, ns)
    for verb in ("get", "watch", "update"):
        assert can_i(kubeconfig, sa, verb, leases, ns, lease), verb
        assert not can_i(kubeconfig, sa, verb, leases, ns, "kube-scheduler"), verb
    for verb in ("delete", "list", "patch"):
        assert not can_i(kubeconfig, sa, verb, leases, ns, lease), verb
    assert not can_i(kubeconfig, sa, "create", leases, "kube-system")
    assert not can_i(kubeconfig, sa, "update", leases, "kube-system", lease)
    assert not can_i(kubeconfig, sa, "create", leases, "")


def test_the_chart_identity_may_do_exactly_what_the_operator_needs_in_every_namespace(
    kubeconfig: Path, cluster_release: ChartRelease
) -> None:
    sa = f"system:serviceaccount:{cluster_release.namespace}:{cluster_release.service_account()}"
    missing = [(v, r) for v, r in NEEDED if not can_i(kubeconfig, sa, v, r)]
    assert missing == [], f"the chart's ClusterRole lacks {missing}"
    granted = [(v, r) for v, r in DENIED if can_i(kubeconfig, sa, v, r)]
    assert granted == [], f"the chart's ClusterRole grants {granted}"
    # Cluster-scoped reads: the PodMonitor CRD check and kopf's CRD scan; no namespace list at -A.
    for verb in ("get", "list", "watch"):
        assert can_i(kubeconfig, sa, verb, "customresourcedefinitions.apiextensions.k8s.io")
    assert not can_i(kubeconfig, sa, "create", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can_i(kubeconfig, sa, "list", "namespaces")
    # Secure metrics: a scrape's token and its user's right to GET /metrics, reviewed by the API server.
    assert can_i(kubeconfig, sa, "create", "tokenreviews.authentication.k8s.io")
    assert can_i(kubeconfig, sa, "create", "subjectaccessreviews.authorization.k8s.io")


@pytest.fixture(scope="module")
def namespaced_setup(
    kubeconfig: Path, crd_installed: None, prefix: str
) -> Iterator[tuple[ChartRelease, list[str]]]:
    system = create_namespace(kubeconfig, unique(prefix, "nsd"))
    watched = [create_namespace(kubeconfig, unique(prefix, f"team-{i}")) for i in ("a", "b")]
    other = create_namespace(kubeconfig, unique(prefix, "unwatched"))
    rel = ChartRelease(
        kubeconfig, f"{prefix}nsd", system, {"rbac.scope": "namespaced", "watchNamespaces": watched}
    )
    try:
        yield rel.install(), [*watched, other]
    finally:
        rel.uninstall()
        delete_namespaces(kubeconfig, [system, *watched, other])


def test_namespaced_mode_installs_roles_only_in_the_watched_namespaces(
    kubeconfig: Path, namespaced_setup: tuple[ChartRelease, list[str]]
) -> None:
    release, (team_a, team_b, unwatched) = namespaced_setup
    # Cluster-scoped: only secure metrics' token and access reviews, which have no namespace.
    cluster_scoped = {
        (d["kind"], d["metadata"]["name"])
        for d in release.manifest()
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding")
    }
    assert cluster_scoped == {
        ("ClusterRole", f"{release.fullname}-metrics-auth"),
        ("ClusterRoleBinding", f"{release.fullname}-metrics-auth"),
        ("ClusterRole", f"{release.fullname}-metrics-reader"),
    }
    roles = [r for r in rbac_objects(release) if r["kind"] == "Role"]
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles) == sorted(
        [
            (team_a, release.fullname),
            (team_b, release.fullname),
            (release.namespace, f"{release.fullname}-leader-election"),
        ]
    )
    for role in roles:
        assert wildcard_or_secret_rules(role["rules"]) == []
    sa = f"system:serviceaccount:{release.namespace}:{release.service_account()}"
    assert can_i(kubeconfig, sa, "patch", "deployments.apps", team_a)
    assert not can_i(kubeconfig, sa, "list", "llmservices.llmstage.io", unwatched)
    assert not can_i(kubeconfig, sa, "list", "llmservices.llmstage.io", "")
    assert not can_i(kubeconfig, sa, "get", "customresourcedefinitions.apiextensions.k8s.io")


def test_namespaced_mode_operator_reconciles_watched_namespaces_with_roles_only(
    kubeconfig: Path, namespaced_setup: tuple[ChartRelease, list[str]], tmp_path: Path
) -> None:
    release, (team_a, _team_b, unwatched) = namespaced_setup
    sa_config = release.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    op = release.local_operator(sa_config, tmp_path / "operator.log", "--log-format=text").start()
    try:
        for ns in (team_a, unwatched):
            body = {
                "apiVersion": "llmstage.io/v1alpha1",
                "kind": "LLMService",
                "metadata": {"name": "chat", "namespace": ns},
                "spec": {"model": {"name": "llama3.1:8b"}},
            }
            kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(body))

        def ready() -> bool:
            assert op.alive(), op.log()[-3000:]
            obj = json.loads(
                kubectl(kubeconfig, "get", "llmservice", "chat", "-n", team_a, "-o", "json").stdout
            )
            conds = (obj.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        wait_until(ready, timeout=90, interval=0.5, what=f"{team_a}/chat Ready under the namespaced Role")
        # Its own log, not the object's status: another operator on the shared cluster (one
        # watching all namespaces) may well reconcile the unwatched namespace.
        time.sleep(2)
        assert unwatched not in op.log(), "the operator reached into a namespace it has no Role in"
    finally:
        op.stop()
    log = op.log()
    assert "Traceback" not in log, log[-5000:]
    # With nothing cluster-scoped readable, the only refusals are cluster-scoped reads that degrade
    # gracefully: the PodMonitor CRD check (no PodMonitors then) and kopf's scans of CRDs and
    # namespaces (kopf logs them and carries on without noticing CRD changes until a restart).
    cluster_scoped_reads = ("customresourcedefinitions", 'resource "namespaces"')
    unexpected = [line for line in forbidden_lines(log) if not any(r in line for r in cluster_scoped_reads)]
    assert unexpected == [], "\n".join(unexpected)
