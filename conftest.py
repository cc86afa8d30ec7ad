"""pytest plumbing shared by tests/ and e2e/.

Tiers:
  - unit tests (tests/unit): no cluster; `make test-unit` or `pytest -m "not cluster"`.
  - cluster tests (tests/integration, e2e/): marked `cluster` automatically; they run against
    the local control plane (.cluster/kubeconfig, brought up on demand) or, with
    LLMSTAGE_TEST_KUBECONFIG, against a kind cluster. Any other context is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import UnsafeContextError, check_context

REPO = Path(__file__).resolve().parent
LOCAL_KUBECONFIG = REPO / ".cluster" / "kubeconfig"
CLUSTER_DIRS = ("tests/integration", "tests/realnode", "e2e")
# Every namespace of this pytest session starts with this prefix, and the session's operator
# watches only `PREFIX*`: test sessions running side by side on one cluster stay apart.
SESSION_ID = uuid.uuid4().hex[:4]
NAMESPACE_PREFIX = f"t{SESSION_ID}-"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        if rel.startswith(CLUSTER_DIRS):
            item.add_marker(pytest.mark.cluster)
        if rel.startswith("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """Path to a kubeconfig of a safe test cluster; brings the local one up if needed."""
    override = os.environ.get("LLMSTAGE_TEST_KUBECONFIG")
    if override:
        path = Path(override).resolve()
    else:
        path = LOCAL_KUBECONFIG
        res = subprocess.run([sys.executable, str(REPO / "hack" / "cluster.py"), "up"])
        if res.returncode != 0:
            pytest.exit("could not bring up the local cluster (see output above)", 1)
    try:
        check_context(path)
    except UnsafeContextError as err:
        pytest.exit(str(err), 2)
    return path


@pytest.fixture(scope="session")
def namespace_prefix() -> str:
    return NAMESPACE_PREFIX


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path):
    """Run the repo's kubectl against the test cluster: kubectl("get", "pods", "-n", ns)."""
    binary = REPO / ".tools" / "bin" / "kubectl"

    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [str(binary), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, input=stdin
        )
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
        return res

    return run


@pytest.fixture
def namespace(api_client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (children go with it)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:38].strip("-")
    name = f"{NAMESPACE_PREFIX}{base}-{uuid.uuid4().hex[:5]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"llmstage.io/test": "true"}))
    )
    # Pods cannot be created until the service-account controller made `default`.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if core.list_namespaced_service_account(name, field_selector="metadata.name=default").items:
            break
        time.sleep(0.1)
    yield name
    core.delete_namespace(name, propagation_policy="Background")
