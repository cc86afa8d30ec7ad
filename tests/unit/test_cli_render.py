"""`llmstage render`: the operator's objects, offline, and one-line errors for bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from llmstage.api.models import LLMService
from llmstage.cli import main
from llmstage.controller.config import DEFAULT_MONITORING_NAMESPACE
from llmstage.render.desired import desired_objects
from llmstage.resolve import resolve
from llmstage.resolve.resolved import ClusterFacts

# What `llmstage run` assumes unless told otherwise; `render` assumes the same.
OPERATOR_DEFAULTS = ClusterFacts(monitoring_namespace=DEFAULT_MONITORING_NAMESPACE)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_prints_exactly_what_the_operator_applies(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(example), "-n", "team-a", "--uid", "1234")
    assert code == 0
    printed = [d for d in yaml.safe_load_all(out) if d]
    body = yaml.safe_load(example.read_text())
    body["metadata"].update(namespace="team-a", uid="1234")
    assert printed == desired_objects(resolve(LLMService.from_object(body)), OPERATOR_DEFAULTS)
    for obj in printed:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["kind"] == "LLMService" and owner["uid"] == "1234" and owner["controller"] is True


def test_pod_monitor_only_when_the_cluster_has_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    production = str(REPO / "examples" / "llama31-8b-production.yaml")
    _, without, _ = run(capsys, "-f", production)
    _, with_crd, _ = run(capsys, "-f", production, "--pod-monitor")
    kinds = [d["kind"] for d in yaml.safe_load_all(with_crd) if d]
    assert "PodMonitor" in kinds
    assert "PodMonitor" not in [d["kind"] for d in yaml.safe_load_all(without) if d]
    body = yaml.safe_load(Path(production).read_text())
    expected = desired_objects(
        resolve(LLMService.from_object(body)), replace(OPERATOR_DEFAULTS, pod_monitor_crd=True)
    )
    assert [d for d in yaml.safe_load_all(with_crd) if d] == expected


def test_offline_uid_is_empty_and_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(REPO / "examples" / "llama31-8b-dev.yaml"))
    assert code == 0
    assert "# ownerReferences[].uid is empty" in out
    assert "# LLMService default/llama31-8b: stage dev" in out


def test_multi_document_input_from_stdin_skips_other_kinds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        yaml.safe_load((REPO / "examples" / "llama31-8b-dev.yaml").read_text()),
        {
            **yaml.safe_load((REPO / "examples" / "llama31-8b-staging.yaml").read_text()),
            "metadata": {"name": "b"},
        },
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump_all(docs)))
    code, out, _ = run(capsys, "-f", "-")
    assert code == 0
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(out) if d and d["kind"] == "Service"}
    assert names == {"llama31-8b", "b"}


def test_warnings_go_to_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: s}\n"
        "spec: {stage: production, runtime: ollama, model: {name: llama3.1:8b}}\n"
    )
    code, out, err = run(capsys, "-f", str(f))
    assert code == 0 and out
    assert "Warning: default/s: OllamaInProduction: " in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "nope.yaml: no such file"),
        ("a: [b\n", "s.yaml:2:1: YAML syntax error"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "s.yaml: no LLMService in the file"),
        ("- 1\n", "document 1 is not a mapping"),
        (
            "apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n"
            "spec: {model: {name: m}, resources: {gpu: {count: 9}}}\n",
            "s.yaml (LLMService x): spec.resources.gpu.count: Input should be less than or equal to 8",
        ),
        (
            "apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: x}\n"
            "spec: {stage: production, model: {name: nope:1b}, vllm: {apiKeySecretRef: {name: k}}}\n",
            "s.yaml (LLMService x): spec.model.huggingFaceId: model 'nope:1b' is not in the catalog",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    content: str | None,
    expected: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    name = "nope.yaml"
    if content is not None:
        name = "s.yaml"
        (tmp_path / name).write_text(content)
    code, out, err = run(capsys, "-f", name)
    assert code == 2
    assert out == ""
    assert err.startswith("llmstage render: error: ") and err.count("\n") == 1
    assert expected in err, err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["render"])
    assert exit_.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "examples:\n  llmstage render -f" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "field"),
    [("dtype: bfloat16", "spec.vllm.dtype"), ("extraArgs: [--kv-cache-dtype=fp8]", "spec.vllm.extraArgs")],
)
def test_a_t4_service_with_bf16_or_an_fp8_kv_cache_fails_naming_the_field(
    setting: str, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "t4.yaml"
    manifest.write_text(
        "apiVersion: llmstage.io/v1alpha1\nkind: LLMService\nmetadata: {name: chat}\nspec:\n"
        "  stage: production\n  model: {name: llama3.1:8b}\n"
        "  resources: {gpu: {count: 1, product: Tesla-T4}}\n"
        f"  vllm:\n    apiKeySecretRef: {{name: key}}\n    {setting}\n"
    )
    code, out, err = run(capsys, "-f", str(manifest))
    assert code == 2 and out == ""
    assert err.startswith(f"llmstage render: error: {manifest} (LLMService chat): {field}: ")
    assert "8.0" in err and "Tesla-T4 (compute capability 7.5)" in err and err.count("\n") == 1
