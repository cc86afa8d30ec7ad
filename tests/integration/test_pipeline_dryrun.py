"""`llmstage pipeline init` output on the API server: every overlay passes
`kubectl apply -k overlays/STAGE --dry-run=server` with the CRD installed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmstage.cli import main

STAGES = ("dev", "staging", "production")


@pytest.fixture
def stage_namespaces(kubectl, namespace_prefix: str, crd_installed: None) -> Iterator[str]:
    """The three stage namespaces (dry-run does not create them), removed afterwards."""
    prefix = f"{namespace_prefix}pipeline-{uuid.uuid4().hex[:5]}-"
    for stage in STAGES:
        kubectl("create", "namespace", f"{prefix}{stage}")
        kubectl("label", "namespace", f"{prefix}{stage}", "llmstage.io/test=true")
    try:
        yield prefix
    finally:
        for stage in STAGES:
            kubectl(
                "delete", "namespace", f"{prefix}{stage}", "--wait=false", "--ignore-not-found", check=False
            )


@pytest.mark.parametrize("gitops", ["argocd", "flux"])
def test_every_overlay_passes_server_side_dry_run(
    gitops: str,
    stage_namespaces: str,
    kubectl,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    argv = ["pipeline", "init", "--model", "llama3.1:8b", "--name", "chat", "--dir", str(repo)]
    argv += ["--gitops", gitops, "--namespace-prefix", stage_namespaces, "--gpu", "NVIDIA-L4:2"]
    assert main(argv) == 0, capsys.readouterr().err
    for stage in STAGES:
        result = kubectl("apply", "-k", str(repo / "overlays" / stage), "--dry-run=server")
        assert f"namespace/{stage_namespaces}{stage}" in result.stdout
        assert "llmservice.llmstage.io/chat created (server dry run)" in result.stdout, result.stdout
