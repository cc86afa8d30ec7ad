"""The CRD upgrade path docs/install.md documents, on the local cluster.

Helm installs charts/llmstage/crds/ on the first install only and never updates it, so a changed
CRD reaches the cluster by `kubectl apply --server-side --force-conflicts` (the documented step
before `helm upgrade`) or by Argo CD's server-side apply (`ServerSideApply=true` runs the same
command as field manager argocd-controller). The CRD here is the chart's own under another API
group (crdtest.llmstage.io), so the real llmservices.llmstage.io other tests use is never changed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.chart import CHART, create_namespace, delete_namespaces, helm, kubectl, unique

CRD_FILE = "llmservices.llmstage.io.yaml"


def _chart_with_test_crd(dest: Path, group: str, *, changed: bool) -> Path:
    """A copy of the chart whose CRD serves `group`; `changed` adds a spec field and a column."""
    shutil.copytree(CHART, dest)
    path = dest / "crds" / CRD_FILE
    crd = yaml.safe_load(path.read_text().split("---\n", 1)[1])
    crd["metadata"]["name"] = f"llmservices.{group}"
    crd["spec"]["group"] = group
    if changed:
        version = crd["spec"]["versions"][0]
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"]["upgradeProbe"] = {"type": "string", "description": "added by the new chart"}
        version["additionalPrinterColumns"].append(
            {"name": "Probe", "type": "string", "jsonPath": ".spec.upgradeProbe"}
        )
    path.write_text("---\n" + yaml.safe_dump(crd, sort_keys=False))
    return dest


def _crd(kubeconfig: Path, name: str) -> dict[str, Any]:
    crd: dict[str, Any] = json.loads(kubectl(kubeconfig, "get", "crd", name, "-o", "json").stdout)
    return crd


def _has_new_field(crd: dict[str, Any]) -> bool:
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    return "upgradeProbe" in spec and "Probe" in {c["name"] for c in version["additionalPrinterColumns"]}


@pytest.fixture
def charts(tmp_path: Path) -> tuple[str, Path, Path]:
    group = f"crdtest{uuid.uuid4().hex[:6]}.llmstage.io"
    old = _chart_with_test_crd(tmp_path / "old", group, changed=False)
    new = _chart_with_test_crd(tmp_path / "new", group, changed=True)
    return group, old, new


@pytest.fixture
def system(kubeconfig: Path, namespace_prefix: str, charts: tuple[str, Path, Path]) -> Iterator[str]:
    name = create_namespace(kubeconfig, unique(namespace_prefix, "crdup"))
    yield name
    helm(kubeconfig, "uninstall", "crdup", "--namespace", name, "--wait", check=False)
    kubectl(kubeconfig, "delete", "crd", f"llmservices.{charts[0]}", "--ignore-not-found", check=False)
    delete_namespaces(kubeconfig, [name])


def test_a_changed_crd_reaches_the_cluster_through_the_documented_server_side_apply(
    kubeconfig: Path, charts: tuple[str, Path, Path], system: str
) -> None:
    group, old, new = charts
    name = f"llmservices.{group}"
    values = ["--set", "admissionPolicy.enabled=false", "--set", "replicaCount=1"]
    values += ["--set", "leaderElection.enabled=false"]
    helm(kubeconfig, "install", "crdup", str(old), "--namespace", system, *values)
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    assert not _has_new_field(_crd(kubeconfig, name))

    # Helm's rule for crds/: `helm upgrade` leaves the installed CRD as it was.
    helm(kubeconfig, "upgrade", "crdup", str(new), "--namespace", system, "--reuse-values")
    assert not _has_new_field(_crd(kubeconfig, name))

    # Without --force-conflicts the apply is refused: Helm created the CRD and owns its fields.
    refused = kubectl(kubeconfig, "apply", "--server-side", "-f", str(new / "crds"), check=False)
    assert refused.returncode != 0 and 'conflict with "helm"' in refused.stderr, refused.stderr

    # The documented step.
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(new / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    assert _has_new_field(_crd(kubeconfig, name))
    # The API server now keeps the new field in objects (an unknown field would be pruned).
    service = {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "probe", "namespace": system},
        "spec": {"stage": "dev", "model": {"name": "smollm2:135m"}, "upgradeProbe": "kept"},
    }
    created = kubectl(
        kubeconfig, "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(service)
    )
    assert json.loads(created.stdout)["spec"]["upgradeProbe"] == "kept"

    # Argo CD with ServerSideApply=true: the same apply as field manager argocd-controller, of
    # what it renders (`helm template --include-crds`); here back to the old CRD.
    rendered = helm(
        kubeconfig, "template", "crdup", str(old), "--include-crds", "--namespace", system, *values
    )
    old_crd = [
        d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "CustomResourceDefinition"
    ]
    assert [d["metadata"]["name"] for d in old_crd] == [name]
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=argocd-controller",
        "-f",
        "-",
        stdin=yaml.safe_dump(old_crd[0]),
    )
    assert not _has_new_field(_crd(kubeconfig, name))

    # `helm uninstall` leaves the CRD (and with it every LLMService).
    helm(kubeconfig, "uninstall", "crdup", "--namespace", system, "--wait")
    assert _crd(kubeconfig, name)["metadata"]["name"] == name


def test_with_crds_enabled_helm_upgrade_upgrades_the_crd_and_uninstall_keeps_it(
    kubeconfig: Path, charts: tuple[str, Path, Path], system: str
) -> None:
    group, old, new = charts
    name = f"llmservices.{group}"
    values = ["--set", "admissionPolicy.enabled=false", "--set", "replicaCount=1"]
    values += ["--set", "leaderElection.enabled=false", "--set", "crds.enabled=true"]
    # --skip-crds: the template is the CRD's only source (docs/install.md).
    helm(kubeconfig, "install", "crdup", str(old), "--namespace", system, "--skip-crds", *values)
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    crd = _crd(kubeconfig, name)
    assert not _has_new_field(crd)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "crdup"
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    # No separate step: the upgrade brings the new field.
    helm(kubeconfig, "upgrade", "crdup", str(new), "--namespace", system, "--reuse-values")
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    assert _has_new_field(_crd(kubeconfig, name))

    helm(kubeconfig, "uninstall", "crdup", "--namespace", system, "--wait")
    assert _crd(kubeconfig, name)["metadata"]["name"] == name
