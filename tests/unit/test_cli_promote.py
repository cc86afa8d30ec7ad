"""`llmstage promote`: stage changes that keep clients working, refusals that say what to pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from llmstage.api.models import LLMService, Runtime
from llmstage.cli import main
from llmstage.resolve import resolve

REPO = Path(__file__).resolve().parents[2]
H100 = "NVIDIA-H100-80GB-HBM3"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["promote", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    f = tmp_path / "llmservice.yaml"
    f.write_text((REPO / "examples" / "llama31-8b-staging.yaml").read_text())
    return f


def test_dev_to_staging_in_place_keeps_comments_and_prints_the_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "dev.yaml"
    original = (REPO / "examples" / "llama31-8b-dev.yaml").read_text()
    f.write_text(original)
    code, out, err = run(capsys, "-f", str(f), "--to", "staging")
    assert code == 0
    assert "-  stage: dev\n+  stage: staging\n" in out
    assert f.read_text() == original.replace("stage: dev", "stage: staging")
    assert "stage dev -> staging, runtime ollama -> ollama" in err


def test_staging_to_production_refuses_without_a_gpu(
    staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = staging.read_text()
    code, out, err = run(capsys, "-f", str(staging), "--to", "production", "--api-key-secret", "k")
    assert code == 2 and out == ""
    assert (
        "stage production runs vLLM, on GPUs unless told otherwise, but spec.resources.gpu is not set: "
        "pass --gpu" in err
    )
    assert "or pass --cpu for vLLM's CPU image on CPU nodes" in err
    assert err.count("\n") == 1
    assert staging.read_text() == before


def test_staging_to_production_refuses_without_an_api_key(
    staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "-f", str(staging), "--to", "production", "--gpu", H100)
    assert code == 2
    assert "stage production serves vLLM only with an API key: pass --api-key-secret NAME" in err


def test_cpu_only_cannot_be_promoted_to_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: s}\n"
        "spec: {stage: staging, model: {name: llama3.1:8b}, resources: {gpu: {count: 0}}}\n"
    )
    code, _, err = run(capsys, "-f", str(f), "--to", "production", "--api-key-secret", "k")
    assert code == 2 and "spec.resources.gpu.count is 0 (CPU-only)" in err


def test_cpu_promotes_to_vllm_on_cpu_nodes(staging: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-f", str(staging), "--to", "production", "--cpu", "--api-key-secret", "k")
    assert code == 0, err
    after = resolve(LLMService.from_object(yaml.safe_load(staging.read_text())))
    assert after.runtime == Runtime.VLLM and after.resources.gpu is None
    assert after.vllm is not None and after.vllm.cpu is not None
    assert after.vllm.image == "vllm/vllm-openai-cpu:v0.32.0-x86_64"
    assert "spec.runtime vllm and spec.resources.gpu.count 0 set from --cpu" in err
    assert after.resources.cpu == "4" and after.vllm.dtype == "float32"  # the CPU backend's defaults


def test_cpu_and_gpu_are_exclusive(staging: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["promote", "-f", str(staging), "--to", "production", "--cpu", "--gpu", H100])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_staging_to_production_switches_to_vllm_with_the_same_names(
    staging: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "production.yaml"
    code, out, err = run(
        capsys,
        "-f",
        str(staging),
        "--to",
        "production",
        "--output-file",
        str(out_file),
        "--gpu",
        f"{H100}:2",
        "--api-key-secret",
        "llama-key",
    )
    assert code == 0, err
    assert out.startswith(f"--- {staging}\n+++ {out_file}\n")
    before = resolve(LLMService.from_object(yaml.safe_load(staging.read_text())))
    after = resolve(LLMService.from_object(yaml.safe_load(out_file.read_text())))
    assert after.runtime == Runtime.VLLM and after.stage == "production"
    assert (after.name, after.served_model_name) == (before.name, before.served_model_name)
    assert (
        after.resources.gpu is not None
        and after.resources.gpu.count == 2
        and after.resources.gpu.product == H100
    )
    assert after.vllm is not None and after.vllm.api_key_secret_ref is not None
    assert after.vllm.api_key_secret_ref.name == "llama-key"
    assert out_file.read_text().startswith("# Staging: still Ollama")  # comments kept
    assert "GatedModelWithoutToken" in err  # the result's remaining mistakes are shown


def test_fields_tuned_for_ollama_are_dropped_when_the_runtime_becomes_vllm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        """apiVersion: llmstage.io/v1alpha1
kind: LLMService
metadata:
  name: s
spec:
  stage: staging
  replicas: 1
  model:
    name: llama3.1:8b
    format: gguf
    quantization: q8_0   # what Ollama serves
  resources:
    cpu: "8"
    memory: 12Gi
    gpu:
      count: 1
      product: NVIDIA-L4
  vllm:
    apiKeySecretRef:
      name: k
"""
    )
    code, _, err = run(capsys, "-f", str(f), "--to", "production")
    assert code == 0, err
    spec = yaml.safe_load(f.read_text())["spec"]
    assert spec["model"] == {"name": "llama3.1:8b"}
    assert spec["resources"] == {"gpu": {"count": 1, "product": "NVIDIA-L4"}}
    assert "replicas" not in spec
    for field in (
        "spec.resources.cpu",
        "spec.resources.memory",
        "spec.model.format",
        "spec.model.quantization",
        "spec.replicas 1",
    ):
        assert field in err
    resolved = resolve(LLMService.from_object(yaml.safe_load(f.read_text())))
    assert not [w for w in resolved.warnings if w.reason == "GGUFOnVLLM"]


def test_promotion_only_moves_forward(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text((REPO / "examples" / "llama31-8b-production.yaml").read_text())
    code, _, err = run(capsys, "-f", str(f), "--to", "staging")
    assert code == 2 and "promote moves forward only" in err


def test_same_stage_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    text = (REPO / "examples" / "llama31-8b-production.yaml").read_text()
    f.write_text(text)
    code, out, _ = run(capsys, "-f", str(f), "--to", "production")
    assert code == 0 and "nothing to change" in out
    assert f.read_text() == text


def test_dry_run_writes_nothing(staging: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = staging.read_text()
    code, out, _ = run(
        capsys, "-f", str(staging), "--to", "production", "--gpu", H100, "--api-key-secret", "k", "--dry-run"
    )
    assert code == 0 and "+  stage: production" in out
    assert staging.read_text() == before


def test_stdin_to_stdout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO((REPO / "examples" / "llama31-8b-dev.yaml").read_text()))
    code, out, err = run(capsys, "-f", "-", "--to", "staging", "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out)["spec"]["stage"] == "staging"
    assert "+  stage: staging" in err


def test_output_file_dash_is_stdout_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO((REPO / "examples" / "llama31-8b-dev.yaml").read_text()))
    code, out, _ = run(capsys, "-f", "-", "--to", "staging", "--output-file", "-")
    assert code == 0 and yaml.safe_load(out)["spec"]["stage"] == "staging"


def test_stdin_needs_an_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-f", "-", "--to", "staging")
    assert code == 2 and "pass --output-file FILE, or -o yaml for stdout" in err


def test_o_is_a_format_and_a_file_name_there_gets_the_option_it_needs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dev = REPO / "examples" / "llama31-8b-dev.yaml"
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "-f", str(dev), "--to", "staging", "-o", "staging.yaml")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'staging.yaml' is not an output format (diff, yaml)" in err
    assert "pass --output-file staging.yaml" in err
    code, _, err = run(capsys, "-f", str(dev), "--to", "staging", "-o", "yaml", "--output-file", "x.yaml")
    assert code == 2 and "-o yaml prints the manifest and writes no file" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: [b\n", "YAML syntax error"),
        ("apiVersion: v1\nkind: ConfigMap\n", "no LLMService in the file"),
        ("apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n", "spec is missing"),
    ],
)
def test_bad_files(content: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(content)
    code, _, err = run(capsys, "-f", str(f), "--to", "staging")
    assert code == 2 and expected in err and err.count("\n") == 1


def test_scale_to_zero_is_dropped_going_to_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "svc.yaml"
    f.write_text((REPO / "examples" / "llama31-8b-staging-scale-to-zero.yaml").read_text())
    code = main(
        ["promote", "-f", str(f), "--to", "production", "--gpu", "NVIDIA-L4", "--api-key-secret", "k"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "spec.autoscaling.minReplicas 0 removed" in out.out + out.err
    promoted = yaml.safe_load(f.read_text())
    assert "minReplicas" not in promoted["spec"]["autoscaling"]
    assert promoted["spec"]["autoscaling"]["autoscaler"] == "keda"  # serverAddress was set for the wake query
