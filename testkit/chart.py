"""The Helm chart on a test cluster: install it with the real helm binary, mint a kubeconfig for
its ServiceAccount and run the operator locally under that identity with the Deployment's own
arguments. Shared by the chart/RBAC integration tests and the e2e suite.

Why locally: no image can run on kwok nodes (the chart's pod is scheduled and marked Running by
kwok, but no process starts). The operator process that does the work is `llmstage run` on this
machine, authenticated as the chart's ServiceAccount, so the chart's RBAC is what it gets.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from testkit import OperatorProcess

REPO = Path(__file__).resolve().parents[1]
HELM = REPO / ".tools" / "bin" / "helm"
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
CHART = REPO / "charts" / "llmstage"
# Arguments of the chart's container that make no sense for a local process (ports of this host).
LOCAL_OVERRIDES = ("--liveness", "--metrics-port", "--metrics-cert-dir")
FORBIDDEN = re.compile(r"\b403\b|forbidden", re.IGNORECASE)


def run(cmd: list[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def helm(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(HELM), "--kubeconfig", str(kubeconfig), *args], check=check)


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], stdin=stdin, check=check)


def set_args(values: dict[str, Any]) -> list[str]:
    """Values as `--set-json k=v` pairs (no values file to clean up)."""
    out: list[str] = []
    for key, value in values.items():
        out += ["--set-json", f"{key}={json.dumps(value)}"]
    return out


def template(
    values: dict[str, Any] | None = None,
    *,
    release: str = "llmstage",
    namespace: str = "llmstage-system",
    include_crds: bool = True,
) -> list[dict[str, Any]]:
    """`helm template` of the chart, parsed (no cluster needed)."""
    cmd = [str(HELM), "template", release, str(CHART), "--namespace", namespace, *set_args(values or {})]
    if include_crds:
        cmd.append("--include-crds")
    return [d for d in yaml.safe_load_all(run(cmd).stdout) if d]


def create_namespace(kubeconfig: Path, name: str) -> str:
    kubectl(kubeconfig, "create", "namespace", name)
    kubectl(kubeconfig, "label", "namespace", name, "llmstage.io/test=true")
    # Pods cannot be created until the service-account controller made `default`.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if kubectl(kubeconfig, "get", "serviceaccount", "default", "-n", name, check=False).returncode == 0:
            break
        time.sleep(0.2)
    return name


def delete_namespaces(kubeconfig: Path, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        kubectl(kubeconfig, "delete", "namespace", "--wait=false", "--ignore-not-found", *names, check=False)


def unique(prefix: str, what: str) -> str:
    return f"{prefix}{what}-{uuid.uuid4().hex[:5]}"


class ChartRelease:
    """One `helm install` of charts/llmstage; `uninstall()` also removes its cluster-scoped objects."""

    def __init__(self, kubeconfig: Path, release: str, namespace: str, values: dict[str, Any]) -> None:
        self.kubeconfig, self.release, self.namespace, self.values = kubeconfig, release, namespace, values

    @property
    def fullname(self) -> str:
        return self.release if "llmstage" in self.release else f"{self.release}-llmstage"

    def install(self) -> ChartRelease:
        helm(
            self.kubeconfig,
            "install",
            self.release,
            str(CHART),
            "--namespace",
            self.namespace,
            "--wait",
            "--timeout",
            "120s",
            *set_args(self.values),
        )
        return self

    def uninstall(self) -> None:
        helm(self.kubeconfig, "uninstall", self.release, "--namespace", self.namespace, "--wait", check=False)

    def manifest(self) -> list[dict[str, Any]]:
        out = helm(self.kubeconfig, "get", "manifest", self.release, "--namespace", self.namespace).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = ["-n", namespace] if namespace else []
        return json.loads(kubectl(self.kubeconfig, "get", kind, name, *ns, "-o", "json").stdout)

    def service_account(self) -> str:
        return self.get("deployment", self.fullname, self.namespace)["spec"]["template"]["spec"][
            "serviceAccountName"
        ]

    def container_args(self) -> list[str]:
        """The operator container's arguments as installed (the image's entrypoint is `llmstage run`)."""
        pod = self.get("deployment", self.fullname, self.namespace)["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "operator")
        return list(container.get("args") or [])

    def service_account_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with a token of the chart's ServiceAccount (same server, CA and context name,
        so the context guard still accepts it)."""
        token = kubectl(
            self.kubeconfig, "create", "token", self.service_account(), "-n", self.namespace, "--duration=2h"
        ).stdout.strip()
        admin = yaml.safe_load(self.kubeconfig.read_text())
        ctx_name = admin["current-context"]
        ctx = next(c["context"] for c in admin["contexts"] if c["name"] == ctx_name)
        cluster = next(c for c in admin["clusters"] if c["name"] == ctx["cluster"])
        user = f"system:serviceaccount:{self.namespace}:{self.service_account()}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": ctx_name, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": ctx_name,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def local_operator(self, sa_kubeconfig: Path, log: Path, *extra: str) -> OperatorProcess:
        """`llmstage run` with the installed Deployment's arguments, minus the ports of a pod."""
        args = [a for a in self.container_args() if not a.startswith(LOCAL_OVERRIDES)]
        return OperatorProcess(sa_kubeconfig, log, *args, *extra)


def forbidden_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if FORBIDDEN.search(line)]


def wildcard_or_secret_rules(rules: list[dict[str, Any]]) -> list[str]:
    """Every rule that grants a wildcard or touches Secrets, described; empty when least-privilege."""
    problems = []
    for rule in rules:
        fields = {
            k: rule.get(k) or []
            for k in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
        }
        if any("*" in value for values in fields.values() for value in values):
            problems.append(f"wildcard in {rule}")
        if any(r == "secrets" or r.startswith("secrets/") for r in fields["resources"]):
            problems.append(f"Secret access in {rule}")
    return problems
