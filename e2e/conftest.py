"""The e2e suite's stack: the chart installed, the operator running with the chart's identity.

Two modes (LLMSTAGE_E2E_OPERATOR):

  local (default)  the suite installs the chart with helm into its own namespace and runs the
                   operator on this machine (`llmstage run` with the installed Deployment's
                   arguments and a token of the chart's ServiceAccount). The local cluster's
                   nodes are kwok nodes: they run no container, so the chart's own pod never
                   starts a process there.
  in-cluster       the chart is already installed and its pod runs the operator image
                   (hack/e2e_kind.py does that on kind); the suite only checks it is available.

On kind, what the scenarios run is set by the environment hack/e2e_kind.py writes (runtimes.py):
the real Ollama with a small model, and e2e/fake-llm in place of vLLM's GPU image.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit import OperatorProcess
from testkit.chart import ChartRelease, create_namespace, delete_namespaces, forbidden_lines, kubectl

MODE = os.environ.get("LLMSTAGE_E2E_OPERATOR", "local")
# How the kind script names its release (hack/e2e_kind.py).
IN_CLUSTER_RELEASE = os.environ.get("LLMSTAGE_E2E_RELEASE", "llmstage")
IN_CLUSTER_NAMESPACE = os.environ.get("LLMSTAGE_E2E_RELEASE_NAMESPACE", "llmstage-system")
# Short, so the Unschedulable scenario does not wait two minutes (a chart value, passed through).
UNSCHEDULABLE_GRACE = 8


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The uninstall check takes the operator away: after every other test (a stable sort).
    items.sort(key=lambda item: item.get_closest_marker("uninstall_last") is not None)


@pytest.fixture(scope="session")
def e2e_prefix(namespace_prefix: str) -> str:
    # Apart from the integration tests' `<prefix>*` namespaces and their operator.
    return f"{namespace_prefix.rstrip('-')}e-"


@pytest.fixture(scope="session")
def installed(
    kubeconfig: Path, e2e_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartRelease]:
    """The chart, installed the way a user installs it, with its operator running."""
    if MODE == "in-cluster":
        release = ChartRelease(kubeconfig, IN_CLUSTER_RELEASE, IN_CLUSTER_NAMESPACE, {})
        kubectl(
            kubeconfig,
            "rollout",
            "status",
            f"deployment/{release.fullname}",
            "-n",
            release.namespace,
            "--timeout=180s",
        )
        yield release
        return
    if MODE != "local":
        pytest.exit(f"LLMSTAGE_E2E_OPERATOR={MODE!r}: use local (default) or in-cluster", 2)
    system = create_namespace(kubeconfig, f"{e2e_prefix}system-{uuid.uuid4().hex[:5]}")
    values = {
        "watchNamespaces": [f"{e2e_prefix}*"],
        "operator.unschedulableGraceSeconds": UNSCHEDULABLE_GRACE,
    }
    release = ChartRelease(kubeconfig, f"{e2e_prefix}llmstage", system, values)
    work = tmp_path_factory.mktemp("e2e-operator")
    operator: OperatorProcess | None = None
    try:
        release.install()
        sa_config = release.service_account_kubeconfig(work / "sa.kubeconfig")
        operator = release.local_operator(sa_config, work / "operator.log", "--log-format=text").start()
        yield release
    finally:
        code = operator.stop() if operator is not None else None
        release.uninstall()
        delete_namespaces(kubeconfig, [system])
    log = operator.log()
    assert "Traceback" not in log, log[-5000:]
    assert code in (0, -15), f"the operator exited with {code}:\n{log[-3000:]}"
    assert forbidden_lines(log) == [], "the chart's RBAC refused the operator:\n" + "\n".join(
        forbidden_lines(log)
    )


@pytest.fixture
def new_namespace(
    kubeconfig: Path, e2e_prefix: str, installed: ChartRelease, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """new_namespace("dev") -> a fresh namespace watched by the operator, deleted after the test."""
    created: list[str] = []
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:20].strip("-")

    def make(stage: str) -> str:
        created.append(create_namespace(kubeconfig, f"{e2e_prefix}{test}-{stage}-{uuid.uuid4().hex[:4]}"))
        return created[-1]

    yield make
    delete_namespaces(kubeconfig, created)
