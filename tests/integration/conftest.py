"""Fixtures for tests that need the operator running against the local cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import OperatorProcess

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "llmservices.llmstage.io.yaml"
# Short so the Stalled-on-unschedulable scenario does not wait two minutes.
UNSCHEDULABLE_GRACE = "8"


@pytest.fixture(scope="session")
def crd_installed(kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path, crd_installed: None, namespace_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator for the session, watching only this session's namespaces (each test has its
    own); other sessions and the chart tests' own operators on the same cluster stay apart."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        kubeconfig,
        log,
        "--namespace",
        f"{namespace_prefix}*",
        "--unschedulable-grace",
        UNSCHEDULABLE_GRACE,
        "--log-level",
        "info",
        # The cluster admin's choice test_operator's platform case relies on (resolve/tenancy.py).
        "--allowed-service-accounts=models-reader",
    ).start()
    yield proc
    code = proc.stop()
    output = proc.log()
    assert "Traceback" not in output, f"the operator logged a traceback:\n{output[-5000:]}"
    assert code in (0, -15), f"the operator exited with {code}:\n{output[-3000:]}"


def apply_manifest(kubectl, manifest: str, namespace: str) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)
