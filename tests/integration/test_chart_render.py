"""`helm template` output accepted by the API server (server-side dry-run): admission, the
apiserver's own schema and defaulting, RBAC escalation checks on the Roles, CEL of the policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.chart import create_namespace, delete_namespaces, kubectl, template, unique


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": ["team-*"], "argocd.healthCheckConfigMap": True},
        {"rbac.scope": "namespaced"},
        {"podSecurityContext": None, "securityContext": None},
        {
            "extraEnv": [
                {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            ],
            "extraArgs": ["--log-level=debug"],
            "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
            "serviceAccount.automount": False,
            "livenessProbe.periodSeconds": 10,
            "readinessProbe.successThreshold": 2,
        },
    ],
    ids=["defaults", "patterns-argocd", "namespaced", "null-security-contexts", "extras"],
)
def test_helm_template_passes_server_side_dry_run(
    kubeconfig: Path, crd_installed: None, namespace: str, namespace_prefix: str, values: dict[str, Any]
) -> None:
    extra: list[str] = []
    if values.get("rbac.scope") == "namespaced":
        extra = [create_namespace(kubeconfig, unique(namespace_prefix, "roles"))]
        values = {**values, "watchNamespaces": extra}
    try:
        docs = template(values, release=f"{namespace}-rel"[:40], namespace=namespace)
        stream = "".join("---\n" + yaml.safe_dump(d) for d in docs)
        res = kubectl(
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "-f",
            "-",
            stdin=stream,
        )
        applied = res.stdout.splitlines()
        assert len(applied) == len(docs), res.stdout
        assert all("serverside-applied (server dry run)" in line for line in applied), res.stdout
    finally:
        delete_namespaces(kubeconfig, extra)
