"""`llmstage run` with credentials it cannot use ends at once with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from llmstage.controller.kubeconfig import problem

GOOD = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_a_usable_kubeconfig_or_a_pod_has_no_problem(tmp_path: Path) -> None:
    good = tmp_path / "config"
    good.write_text(GOOD)
    assert problem(str(good), env={}) is None
    assert problem(None, env={"KUBECONFIG": str(good)}) is None
    assert problem(None, env={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "HOME": str(tmp_path)}) is None


def test_a_kubeconfig_list_skips_its_missing_files_as_kubectl_does(tmp_path: Path) -> None:
    good, missing = tmp_path / "config", tmp_path / "absent"
    good.write_text(GOOD)
    assert problem(None, env={"KUBECONFIG": f"{missing}{os.pathsep}{good}"}) is None
    why = problem(None, env={"KUBECONFIG": f"{missing}{os.pathsep}{tmp_path / 'gone'}"})
    assert why is not None and why.startswith(f"kubeconfig: none of {missing}, {tmp_path / 'gone'} exists")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("garbage: [", "not YAML (line 1, column 11: expected the node content"),
        ("apiVersion: v1\nkind: Config\nclusters: []\n", "has no contexts"),
        ("just text", "not a kubeconfig (a YAML mapping"),
    ],
)
def test_a_named_kubeconfig_that_does_not_work_names_the_file_and_the_fix(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    why = problem(str(path), env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"})  # no fallback to the pod's
    assert why is not None and why.startswith(f"kubeconfig {path}") and expected in why, why
    assert "pass --kubeconfig FILE or set KUBECONFIG" in why and "\n" not in why


def test_run_exits_at_once_with_one_line_instead_of_retrying(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "operator")  # this checkout's package
    result = subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "run", "--kubeconfig", str(tmp_path / "missing")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"llmstage run: kubeconfig {tmp_path / 'missing'}: no such file; pass --kubeconfig FILE or set "
        "KUBECONFIG (in a pod, set neither: the ServiceAccount is used)"
    ]
    assert result.stdout == ""


def test_run_in_a_pod_without_its_token_stops_with_one_line(tmp_path: Path) -> None:
    """KUBERNETES_SERVICE_HOST set, no kubeconfig, no ServiceAccount token mounted: `llmstage run`
    says what to set and exits 2, before any port is bound or kopf starts."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    env.update(
        {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmstage.cli",
            "run",
            "--liveness",
            "http://127.0.0.1:0",
            "--metrics-port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "automountServiceAccountToken: true" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
