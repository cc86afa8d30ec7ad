"""Uninstalling leaves nothing: `helm uninstall` removes every object of the release, and deleting
the CRD afterwards (docs/install.md, "Uninstall": only when you mean it) removes every LLMService
and, through the garbage collector, everything the operator made for them.

It takes the operator away, so it runs after every other e2e test (conftest.py orders it last).
On kind (in-cluster) it uninstalls the release the suite ran against and deletes the CRD: the
cluster is deleted next anyway. On the shared local cluster it installs a release of its own and
uninstalls that, keeping the CRD the session's operator still needs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import MODE
from e2e.runtimes import for_this_cluster
from testkit import wait_until
from testkit.chart import REPO, ChartRelease, create_namespace, delete_namespaces, kubectl
from testkit.user import User

CRD = "llmservices.llmstage.io"
# Every kind the operator makes for an LLMService (render/), namespaced.
CHILD_KINDS = ",".join(
    ["deployments", "statefulsets", "services", "persistentvolumeclaims", "configmaps",
     "horizontalpodautoscalers", "poddisruptionbudgets", "networkpolicies", "serviceaccounts"]
)  # fmt: skip


def gone(kubeconfig: Path, obj: dict[str, Any], namespace: str) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    resource = f"{obj['kind']}.{group}" if group else obj["kind"]
    res = kubectl(kubeconfig, "get", resource, obj["metadata"]["name"], "-n", namespace, check=False)
    return res.returncode != 0 and "NotFound" in res.stderr


def made_by_llmstage(kubeconfig: Path) -> list[str]:
    out = kubectl(
        kubeconfig, "get", CHILD_KINDS, "-A", "-l", "app.kubernetes.io/managed-by=llmstage", "-o", "json"
    ).stdout
    return [
        f"{i['kind']} {i['metadata']['namespace']}/{i['metadata']['name']}" for i in json.loads(out)["items"]
    ]


@pytest.mark.uninstall_last
def test_uninstall_leaves_no_object_of_the_release_and_deleting_the_crd_none_of_the_services(
    kubeconfig: Path, installed: ChartRelease, new_namespace: Callable[[str], str], e2e_prefix: str
) -> None:
    user = User(kubeconfig)
    ns = new_namespace("gone")
    user.apply(ns, for_this_cluster(yaml.safe_load((REPO / "examples/llama31-8b-dev.yaml").read_text())))
    user.wait_ready("llama31-8b", ns, "ollama", timeout=300)
    assert made_by_llmstage(kubeconfig), "the operator made nothing for the service"

    own_namespace = None
    if MODE == "in-cluster":
        release = installed
    else:
        own_namespace = create_namespace(kubeconfig, f"{e2e_prefix}uninstall-{uuid.uuid4().hex[:5]}")
        release = ChartRelease(
            kubeconfig, f"{e2e_prefix}gone", own_namespace, {"watchNamespaces": [ns]}
        ).install()
    try:
        manifest = release.manifest()
        assert manifest
        release.uninstall()
        left = [f"{o['kind']} {o['metadata']['name']}" for o in manifest
                if not gone(kubeconfig, o, o["metadata"].get("namespace") or release.namespace)]  # fmt: skip
        assert left == [], f"helm uninstall left: {left}"
        pods = kubectl(kubeconfig, "get", "pods", "-n", release.namespace, "-o", "json").stdout
        assert [
            p["metadata"]["name"]
            for p in json.loads(pods)["items"]
            if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release.release
        ] == []
        # The CRD stays (helm.sh/resource-policy: keep, or crds/), and with it the service.
        assert kubectl(kubeconfig, "get", "crd", CRD, check=False).returncode == 0
        if MODE != "in-cluster":
            return
        kubectl(kubeconfig, "delete", "crd", CRD, "--wait=true", "--timeout=120s")
        wait_until(lambda: made_by_llmstage(kubeconfig) == [], timeout=120, interval=1,
                   what="the garbage collector removing what the operator made")  # fmt: skip
        assert kubectl(kubeconfig, "get", "crd", CRD, check=False).returncode != 0
        print(f"uninstalled {release.release} and deleted {CRD}: no object of the release, no LLMService, "
              "nothing made by the operator left")  # fmt: skip
    finally:
        if own_namespace:
            delete_namespaces(kubeconfig, [own_namespace])
