"""The Helm chart installed with the real helm binary, and the operator running under the chart's
ServiceAccount: reconciling LLMServices with that identity proves the chart's RBAC is enough.

The operator runs locally (no image runs on kwok nodes) with the installed Deployment's arguments
and a token of the chart's ServiceAccount. It watches only this test module's namespaces, so
sessions and other operators on the shared cluster stay apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import OperatorProcess, wait_until
from testkit.chart import ChartRelease, create_namespace, delete_namespaces, forbidden_lines, kubectl, unique

H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def prefix(namespace_prefix: str) -> str:
    # Not matched by the session operator's `<prefix>*`: only the chart's operator works here.
    return f"{namespace_prefix.rstrip('-')}c-"


@pytest.fixture(scope="module")
def release(kubeconfig: Path, crd_installed: None, prefix: str) -> Iterator[ChartRelease]:
    system = create_namespace(kubeconfig, unique(prefix, "system"))
    rel = ChartRelease(kubeconfig, f"{prefix}op", system, {"watchNamespaces": [f"{prefix}*"]})
    try:
        yield rel.install()
    finally:
        rel.uninstall()
        delete_namespaces(kubeconfig, [system])


@pytest.fixture(scope="module")
def chart_operator(
    release: ChartRelease, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    work = tmp_path_factory.mktemp("chart-operator")
    sa_config = release.service_account_kubeconfig(work / "sa.kubeconfig")
    proc = release.local_operator(
        sa_config, work / "operator.log", "--log-format=text", "--unschedulable-grace=8"
    )
    proc.start()
    yield proc
    code = proc.stop()
    log = proc.log()
    assert "Traceback" not in log, log[-5000:]
    assert code in (0, -15), f"the operator exited with {code}:\n{log[-3000:]}"


@pytest.fixture
def ns(kubeconfig: Path, prefix: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(kubeconfig, unique(prefix, request.node.name[5:25].replace("_", "-").strip("-")))
    yield name
    delete_namespaces(kubeconfig, [name])


def get(kubeconfig: Path, kind: str, name: str, ns: str) -> dict[str, Any]:
    return json.loads(kubectl(kubeconfig, "get", kind, name, "-n", ns, "-o", "json").stdout)


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def wait_ready(
    kubeconfig: Path, op: OperatorProcess, name: str, ns: str, runtime: str, timeout: float = 90
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        assert op.alive(), f"the operator exited:\n{op.log()[-3000:]}"
        obj = get(kubeconfig, "llmservice", name, ns)
        status = obj.get("status") or {}
        fresh = status.get("observedGeneration") == obj["metadata"]["generation"]
        ok = fresh and condition(obj, "Ready").get("status") == "True" and status.get("runtime") == runtime
        return obj if ok else None

    return wait_until(ready, timeout=timeout, interval=0.5, what=f"{ns}/{name} Ready on {runtime}")


def test_install_creates_release_named_objects_with_the_hardened_operator_pod(release: ChartRelease) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in release.manifest()}
    assert ("ClusterRole", release.fullname) in kinds and ("ClusterRoleBinding", release.fullname) in kinds
    assert release.fullname.startswith(release.release)  # cluster-scoped names are release-unique

    deployment = release.get("deployment", release.fullname, release.namespace)
    spec = deployment["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert (
        release.get("poddisruptionbudget", release.fullname, release.namespace)["spec"]["maxUnavailable"] == 1
    )
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090, "health": 8080}
    # kwok runs no process, but the API accepted and rolled out exactly what the chart says.
    assert deployment["status"].get("availableReplicas") == 2


def test_operator_under_the_chart_identity_serves_dev_then_promotes_to_vllm(
    kubeconfig: Path, chart_operator: OperatorProcess, ns: str
) -> None:
    kubectl(kubeconfig, "create", "secret", "generic", "llm-api-key", "-n", ns, "--from-literal=api-key=k")
    dev = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "chat", "namespace": ns},
        "spec": {"stage": "dev", "model": {"name": "llama3.1:8b"}},
    }
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(dev))
    status = wait_ready(kubeconfig, chart_operator, "chat", ns, "ollama")["status"]
    assert status["endpoint"] == f"http://chat.{ns}.svc:8000/v1"

    production = {
        "stage": "production",
        "replicas": 1,
        "resources": {"gpu": {"count": 1, "product": H100}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
    }
    kubectl(
        kubeconfig,
        "patch",
        "llmservice",
        "chat",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": production}),
    )
    status = wait_ready(kubeconfig, chart_operator, "chat", ns, "vllm", timeout=120)["status"]
    assert status["stage"] == "production" and status["endpoint"] == f"http://chat.{ns}.svc:8000/v1"
    # The Ollama Deployment is pruned after the cutover: the delete verb works too.
    wait_until(
        lambda: (
            kubectl(kubeconfig, "get", "deployment", "chat-ollama", "-n", ns, check=False).returncode != 0
        ),
        timeout=60,
        what="the Ollama Deployment pruned",
    )
    events = kubectl(
        kubeconfig, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=chat", "-o", "name"
    )
    assert events.stdout.strip(), "the operator recorded no Event (events: create)"

    assert chart_operator.alive(), chart_operator.log()[-3000:]
    assert forbidden_lines(chart_operator.log()) == []
