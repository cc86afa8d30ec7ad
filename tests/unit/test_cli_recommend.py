"""`llmstage recommend`: the decision framework and sizing as text, or a starting LLMService."""

from __future__ import annotations

import pytest
import yaml
from llmstage.api.models import LLMService, Runtime
from llmstage.cli import main
from llmstage.cli.recommend import name_from_model
from llmstage.resolve import resolve


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["recommend", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_dev_with_two_users_is_ollama_with_num_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--users", "2", "--stage", "dev")
    assert code == 0
    assert "Runtime      Ollama" in out
    assert "OLLAMA_NUM_PARALLEL=2 per replica" in out
    assert "Memory fit   Fits: " in out
    assert "GPU products" not in out


def test_more_than_four_users_without_gpu_warns_about_ollama(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--users", "8", "--stage", "staging")
    assert "TooManyUsersForOllama" in out


def test_production_sizes_vllm_and_lists_gpu_products(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--users", "50", "--stage", "production", "--gpu", "NVIDIA-H100-80GB-HBM3")
    assert code == 0
    assert "Runtime          vLLM" in out
    assert "stage production and 50 expected users > 4: vLLM" in out
    # No --max-num-seqs of the expected users: vLLM keeps its continuous batching.
    assert "Batch            vLLM's default (continuous batching); 50 users / 2 replica(s)" in out
    assert "--tensor-parallel-size=1" in out
    assert "autoscaled 2-8 on queue depth" in out
    assert "NVIDIA-L40S" in out and "GPUS" in out


def test_a_product_without_count_gets_as_many_gpus_as_the_model_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4", "-o", "yaml")
    body = yaml.safe_load(out)
    assert body["spec"]["resources"]["gpu"] == {"count": 4, "product": "NVIDIA-L4"}
    assert resolve(LLMService.from_object(body)).memory_fit.fits is True
    _, out, _ = run(capsys, "--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4:1", "-o", "yaml")
    assert yaml.safe_load(out)["spec"]["resources"]["gpu"]["count"] == 1


@pytest.mark.parametrize(
    ("argv", "runtime"),
    [
        (["--users", "1", "--stage", "dev"], Runtime.OLLAMA),
        (["--users", "50", "--stage", "production", "--gpu", "NVIDIA-H100-80GB-HBM3"], Runtime.VLLM),
        (
            ["--users", "10", "--stage", "staging", "--gpu", "NVIDIA-L4:2", "--model", "qwen2.5:7b"],
            Runtime.VLLM,
        ),
    ],
)
def test_yaml_output_is_a_valid_llmservice_that_resolves_the_same(
    argv: list[str], runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *argv, "--output", "yaml")
    assert code == 0
    assert out.startswith("# Starting point from `llmstage recommend")
    resolved = resolve(LLMService.from_object(yaml.safe_load(out)))
    assert resolved.runtime == runtime
    spec = yaml.safe_load(out)["spec"]
    assert ("vllm" in spec) == (runtime == Runtime.VLLM and spec["stage"] == "production")


def test_production_yaml_references_the_secrets_and_says_how_to_create_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(
        capsys,
        "--users",
        "20",
        "--stage",
        "production",
        "--gpu",
        "NVIDIA-L4:2",
        "--name",
        "chat",
        "-o",
        "yaml",
    )
    spec = yaml.safe_load(out)["spec"]
    assert spec["vllm"]["apiKeySecretRef"] == {"name": "chat-api-key"}
    assert spec["huggingFaceTokenSecretRef"] == {"name": "hf-token"}  # Llama is gated
    assert "kubectl create secret generic chat-api-key" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--users", "5", "--stage", "production", "--model", "nope:1b"],
            "--model nope:1b is not in the catalog, so vLLM does not know which Hugging Face repository "
            "to serve: pass --hugging-face-id ORG/MODEL",
        ),
        (
            [
                "--users",
                "5",
                "--stage",
                "production",
                "--model",
                "llama3.1:70b",
                "--gpu",
                "NVIDIA-H100-80GB-HBM3:3",
            ],
            "--gpu: tensor-parallel size 3 must divide the model's 64 attention heads",
        ),
    ],
)
def test_impossible_answers_are_one_line_errors(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"llmstage recommend: error: {expected}"), err


@pytest.mark.parametrize(
    "argv", [["--users", "0", "--stage", "dev"], ["--users", "2", "--stage", "qa"], ["--users", "2"]]
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["recommend", *argv])
    assert exit_.value.code == 2


def test_unknown_model_is_explained_for_ollama(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--users", "1", "--stage", "dev", "--model", "nope:1b")
    assert code == 0
    assert "UnknownModelShape" in out


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("llama3.1:8b", "llama3-1-8b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama-llama-3-1-8b-instruct"),
        ("vllm", "llm"),
        ("3b", "b"),
    ],
)
def test_names_from_models_are_valid(model: str, name: str) -> None:
    assert name_from_model(model) == name


def test_a_model_larger_than_one_node_gets_a_multi_node_layout_whose_numbers_are_the_fit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--users", "50", "--stage", "production", "--gpu", "NVIDIA-H100-80GB-HBM3:8", "--model"]
    code, out, _ = run(capsys, *argv, "llama3.1:405b")
    assert code == 0
    layout = "2 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 2"
    assert f"Layout           {layout}; one LeaderWorkerSet group of 2 pods per replica" in out
    assert (
        "Per replica      2 pods (one per node) of cpu 18, memory 80Gi, 8 x NVIDIA-H100-80GB-HBM3 each" in out
    )
    _, text, _ = run(capsys, *argv, "llama3.1:405b", "--output", "yaml")
    obj = yaml.safe_load(text)
    assert obj["spec"]["resources"]["gpu"] == {"count": 8, "product": "NVIDIA-H100-80GB-HBM3", "nodes": 2}
    # The explanation prints the operator's own fit for that manifest, numbers and all (the
    # manifest names the nodes, so the fit no longer says it chose them).
    resolved = resolve(LLMService.from_object({**obj, "metadata": {**obj["metadata"], "namespace": "x"}}))
    assert resolved.memory_fit.message.startswith(f"{layout}; fits: ")
    numbers = resolved.memory_fit.message.removeprefix(f"{layout}; fits: ")
    chosen = "(spec.resources.gpu.nodes unset: the model does not fit on one node's 8 GPUs)"
    assert f"Memory fit       Fits: {layout} {chosen}; fits: {numbers}" in out
    h100 = next(line for line in out.splitlines() if line.strip().startswith("NVIDIA-H100-80GB-HBM3 "))
    assert h100.split()[1:4] == ["2", "x", "8"]
