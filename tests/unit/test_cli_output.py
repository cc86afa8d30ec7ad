"""-o yaml|json on every command that prints objects, and `llmstage catalog`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from llmstage.api.crd import crd
from llmstage.api.models import LLMService
from llmstage.cli import main
from llmstage.controller.config import DEFAULT_MONITORING_NAMESPACE
from llmstage.gitops.admission import admission_policy
from llmstage.render.desired import desired_objects
from llmstage.resolve import resolve
from llmstage.resolve.catalog import builtin_catalog
from llmstage.resolve.resolved import ClusterFacts

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "examples" / "llama31-8b-production.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_render_json_is_the_same_objects_as_the_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "-f", str(PRODUCTION), "-o", "json")
    assert code == 0
    listed = json.loads(out)
    assert listed["kind"] == "List" and listed["apiVersion"] == "v1"
    _, as_yaml, _ = run(capsys, "render", "-f", str(PRODUCTION))
    assert listed["items"] == [d for d in yaml.safe_load_all(as_yaml) if d]
    assert listed["items"] == desired_objects(
        resolve(LLMService.from_object(yaml.safe_load(PRODUCTION.read_text()))),
        ClusterFacts(monitoring_namespace=DEFAULT_MONITORING_NAMESPACE),
    )


def test_crd_and_manifests_print_json_objects(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crd", "-o", "json")
    assert code == 0 and json.loads(out) == crd()
    code, out, _ = run(capsys, "manifests", "admission-policy", "-o", "json")
    assert code == 0 and json.loads(out)["items"] == admission_policy()
    code, out, _ = run(capsys, "manifests", "argocd-cm", "-o", "json")
    assert code == 0 and json.loads(out)["kind"] == "ConfigMap"
    code, _, err = run(capsys, "manifests", "argocd-health", "-o", "json")
    assert code == 2 and "argocd-health is a Lua script" in err and len(err.strip().splitlines()) == 1


def test_recommend_json_is_the_llmservice_the_yaml_holds(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["recommend", "--model", "llama3.1:8b", "--users", "50", "--stage", "production"]
    code, out, _ = run(capsys, *argv, "-o", "json")
    assert code == 0
    as_json = json.loads(out)
    _, as_yaml, _ = run(capsys, *argv, "-o", "yaml")
    assert as_json == yaml.safe_load(as_yaml)
    LLMService.from_object(as_json)  # a valid LLMService


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_catalog_lists_every_model_with_its_fields(capsys: pytest.CaptureFixture[str], output: str) -> None:
    code, out, _ = run(capsys, "catalog", "-o", output)
    assert code == 0
    entries = yaml.safe_load(out) if output == "yaml" else json.loads(out)
    catalog = builtin_catalog().entries
    assert [e["name"] for e in entries] == [e.name for e in catalog]
    assert all(e["huggingFaceId"] and e["parametersBillion"] > 0 for e in entries)


def test_catalog_table_names_what_vllm_serves_for_each_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["NAME", "HUGGING"]
    llama = next(r for r in rows if r.startswith("llama3.1:8b "))
    assert "meta-llama/Llama-3.1-8B-Instruct (gated)" in llama and "131072" in llama
    assert len(rows) == len(builtin_catalog().entries)


def test_the_human_readable_format_is_table_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["recommend", "--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4"]
    code, table, _ = run(capsys, *args, "-o", "table")
    assert code == 0 and "Runtime" in table
    assert run(capsys, *args)[1] == table  # the default
    assert run(capsys, *args, "-o", "text")[1] == table  # the old name still works
    code, catalog, _ = run(capsys, "catalog", "-o", "table")
    assert code == 0 and catalog.startswith("NAME")
    with pytest.raises(SystemExit):
        run(capsys, *args, "-o", "wide")
    assert "choose from 'table', 'yaml', 'json'" in capsys.readouterr().err
