"""`kubectl apply -k` of the kustomize base in manifests/ on the local cluster.

The base installs cluster-scoped objects with fixed names (ClusterRole `llmstage`, the admission
policy) and the shared CRD, so the test applies it through an overlay, as a user customising it
would: into the test's namespace, with a per-test name suffix, without the Namespace object and
without the CRD (already installed and identical: the unit tests check it). Deleting the overlay
afterwards then removes only this test's objects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from testkit import wait_until
from testkit.chart import REPO, kubectl

OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
nameSuffix: "-{suffix}"
resources:
  - {base}
patches:
  - patch: |
      $patch: delete
      apiVersion: v1
      kind: Namespace
      metadata:
        name: llmstage-system
  - patch: |
      $patch: delete
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata:
        name: llmservices.llmstage.io
  # The tenancy policy's parameters live in the operator's namespace (docs/install.md).
  - target:
      kind: ValidatingAdmissionPolicyBinding
      name: llmstage-tenancy
    patch: |
      - op: replace
        path: /spec/paramRef/namespace
        value: {namespace}
# kustomize does not know that the binding names its policy and its parameters.
configurations:
  - policy-name-reference.yaml
"""
POLICY_NAME_REFERENCE = """\
nameReference:
  - kind: ValidatingAdmissionPolicy
    group: admissionregistration.k8s.io
    fieldSpecs:
      - kind: ValidatingAdmissionPolicyBinding
        group: admissionregistration.k8s.io
        path: spec/policyName
  - kind: ConfigMap
    version: v1
    fieldSpecs:
      - kind: ValidatingAdmissionPolicyBinding
        group: admissionregistration.k8s.io
        path: spec/paramRef/name
"""


def test_the_base_builds_into_the_charts_objects(kubeconfig: Path) -> None:
    built = [
        d for d in yaml.safe_load_all(kubectl(kubeconfig, "kustomize", str(REPO / "manifests")).stdout) if d
    ]
    kinds = sorted(d["kind"] for d in built)
    assert kinds == sorted(
        [
            *["ClusterRole"] * 5,  # the operator's, tenants' edit and view, metrics auth and reader
            *["ClusterRoleBinding"] * 2,  # the operator's, metrics auth
            "ConfigMap",  # the tenancy policy's parameters
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            *["ValidatingAdmissionPolicy"] * 2,  # common mistakes (Warn), tenancy (Deny)
            *["ValidatingAdmissionPolicyBinding"] * 2,
        ]
    )
    assert all(
        d["metadata"].get("namespace") == "llmstage-system" for d in built if d["kind"] in ("Deployment",)
    )


def test_kubectl_apply_k_installs_the_operator_objects(
    kubeconfig: Path, crd_installed: None, namespace: str, tmp_path: Path
) -> None:
    suffix = namespace.rsplit("-", 1)[-1]
    base = os.path.relpath(REPO / "manifests", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        OVERLAY.format(namespace=namespace, suffix=suffix, base=base)
    )
    (tmp_path / "policy-name-reference.yaml").write_text(POLICY_NAME_REFERENCE)
    try:
        out = kubectl(kubeconfig, "apply", "-k", str(tmp_path)).stdout
        assert "deployment.apps/llmstage-" + suffix in out, out

        def available() -> bool:
            res = kubectl(
                kubeconfig, "get", "deployment", f"llmstage-{suffix}", "-n", namespace, "-o", "json"
            )
            return json.loads(res.stdout).get("status", {}).get("availableReplicas") == 2

        wait_until(available, timeout=60, interval=0.5, what="the kustomize-installed Deployment available")
        binding = json.loads(
            kubectl(kubeconfig, "get", "clusterrolebinding", f"llmstage-{suffix}", "-o", "json").stdout
        )
        assert binding["roleRef"]["name"] == f"llmstage-{suffix}"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"llmstage-{suffix}", "namespace": namespace}
        ]
        policy_binding = json.loads(
            kubectl(
                kubeconfig, "get", "validatingadmissionpolicybinding", f"llmstage-{suffix}", "-o", "json"
            ).stdout
        )
        assert policy_binding["spec"]["policyName"] == f"llmstage-{suffix}"
        tenancy = json.loads(
            kubectl(
                kubeconfig,
                "get",
                "validatingadmissionpolicybinding",
                f"llmstage-tenancy-{suffix}",
                "-o",
                "json",
            ).stdout
        )["spec"]
        assert tenancy["policyName"] == f"llmstage-tenancy-{suffix}"
        assert tenancy["paramRef"]["name"] == f"llmstage-tenancy-{suffix}"
        assert tenancy["paramRef"]["namespace"] == namespace
        kubectl(kubeconfig, "get", "configmap", f"llmstage-tenancy-{suffix}", "-n", namespace)
        sa = f"system:serviceaccount:{namespace}:llmstage-{suffix}"
        allowed = kubectl(
            kubeconfig, "auth", "can-i", "patch", "deployments.apps", "-A", f"--as={sa}", check=False
        )
        assert allowed.stdout.strip() == "yes"
        secrets = kubectl(kubeconfig, "auth", "can-i", "get", "secrets", "-A", f"--as={sa}", check=False)
        assert secrets.stdout.strip() == "no"
    finally:
        kubectl(kubeconfig, "delete", "-k", str(tmp_path), "--ignore-not-found", "--wait=false", check=False)
    assert kubectl(kubeconfig, "get", "clusterrole", f"llmstage-{suffix}", check=False).returncode != 0
