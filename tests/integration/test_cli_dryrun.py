"""What the CLI writes is what the API server accepts: `recommend -o yaml`, `promote` results and
`render` output pass `kubectl apply --dry-run=server`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from llmstage.cli import main

REPO = Path(__file__).resolve().parents[2]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--users", "2", "--stage", "dev"],
        ["--users", "4", "--stage", "staging"],
        ["--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4"],
        [
            "--users",
            "32",
            "--stage",
            "production",
            "--model",
            "llama3.1:70b",
            "--gpu",
            "NVIDIA-H100-80GB-HBM3:4",
        ],
    ],
)
def test_recommended_llmservice_is_accepted(
    argv: list[str], kubectl, namespace: str, crd_installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = cli(capsys, "recommend", *argv, "--output", "yaml")
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=manifest)
    assert "created (server dry run)" in result.stdout


def test_promoted_manifests_are_accepted(
    kubectl, namespace: str, crd_installed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text((REPO / "examples" / "llama31-8b-dev.yaml").read_text())
    cli(capsys, "promote", "-f", str(f), "--to", "staging")
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(f))
    cli(
        capsys, "promote", "-f", str(f), "--to", "production", "--gpu", "NVIDIA-L4:2", "--api-key-secret", "k"
    )
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(f))
    assert "llmservice.llmstage.io/llama31-8b created (server dry run)" in result.stdout
    assert yaml.safe_load(f.read_text())["spec"]["stage"] == "production"


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_rendered_objects_are_accepted(
    example: Path, kubectl, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rendered = cli(capsys, "render", "-f", str(example), "-n", namespace, "--uid", str(uuid.uuid4()))
    # The test bed has no KEDA: ScaledObjects are dry-run against KEDA's own CRD in test_keda.py.
    documents = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "ScaledObject"]
    result = kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(documents))
    kinds = {d["kind"] for d in documents}
    assert result.stdout.count("(server dry run)") == len(documents)
    assert {"Deployment", "Service"} <= kinds
    if "PersistentVolumeClaim" not in kinds:  # several pods: a claim per pod, in the pod template
        (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert "ephemeral" in next(v for v in volumes if v["name"] == "model-cache")
