"""manifests/addons/prometheus-adapter-rules.yaml, checked with prometheus-adapter's own code.

hack/adapter-rules-check is a small Go program on sigs.k8s.io/prometheus-adapter v0.12.0: it loads
the file with the adapter's config loader (strict YAML, so a misspelled key fails as it would at
the adapter's start) and compiles the rules with the adapter's rule compiler, then shows what the
adapter makes of vLLM's series. The structural check below mirrors the v0.12.0 config types
(pkg/config/config.go) for machines without the Go toolchain.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "manifests" / "addons" / "prometheus-adapter-rules.yaml"
CHECKER = REPO / "hack" / "adapter-rules-check"
QUEUE_METRIC = "vllm:num_requests_waiting"  # what the rendered HPA asks for (DEFAULT_QUEUE_METRIC)


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain (make tools needs it too) is not on PATH")
    binary = tmp_path_factory.mktemp("adapter") / "adapter-rules-check"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=CHECKER, check=True, timeout=900)
    return binary


def run(checker: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checker), str(path), QUEUE_METRIC, "team-a", "chat-vllm-5d9-x1"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_adapter_loads_the_rule_and_serves_the_queue_metric_under_the_hpa_name(checker: Path) -> None:
    res = run(checker, RULES)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["names"] == [QUEUE_METRIC]
    assert out["queries"] == [f'sum({QUEUE_METRIC}{{namespace="team-a",pod="chat-vllm-5d9-x1"}}) by (pod)']


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r.update(metricQuery=r.pop("metricsQuery")), "field metricQuery not found"),
        (lambda r: r["name"].update(matches="^vllm:(num_requests_waiting$"), "unable to generate"),
        (
            lambda r: r.update(metricsQuery="sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy)"),
            "unable to construct metrics query",
        ),
    ],
    ids=["misspelled-key", "bad-regex", "unclosed-template"],
)
def test_the_checker_fails_on_a_broken_rule(checker: Path, tmp_path: Path, change: Any, error: str) -> None:
    config = yaml.safe_load(RULES.read_text())
    change(config["rules"][0])
    broken = tmp_path / "rules.yaml"
    broken.write_text(yaml.safe_dump(config))
    res = run(checker, broken)
    assert res.returncode == 1, res.stdout
    assert error in res.stderr


# ---------------------------------------------------------------- without Go: the v0.12.0 types

DISCOVERY_RULE = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
RESOURCE_MAPPING = {"template", "overrides", "namespaced"}
NAME_MAPPING = {"matches", "as"}


def test_the_rule_file_has_the_shape_of_the_adapter_config() -> None:
    config = yaml.safe_load(RULES.read_text())
    assert set(config) <= {"rules", "resourceRules", "externalRules"}
    assert config["rules"]
    for rule in config["rules"]:
        assert set(rule) <= DISCOVERY_RULE and isinstance(rule["seriesQuery"], str)
        assert set(rule["resources"]) <= RESOURCE_MAPPING
        for label, group_resource in rule["resources"].get("overrides", {}).items():
            assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label)
            assert set(group_resource) <= {"group", "resource"} and group_resource["resource"]
        assert set(rule["name"]) <= NAME_MAPPING
        assert re.search(rule["name"]["matches"], QUEUE_METRIC)
        placeholders = set(re.findall(r"<<\s*(\.\w+)\s*>>", rule["metricsQuery"]))
        assert placeholders <= {".Series", ".LabelMatchers", ".GroupBy"}


def test_the_rule_exposes_the_metric_the_rendered_hpa_asks_for() -> None:
    from llmstage.api.constants import DEFAULT_QUEUE_METRIC

    assert DEFAULT_QUEUE_METRIC == QUEUE_METRIC
    (rule,) = yaml.safe_load(RULES.read_text())["rules"]
    assert rule["seriesQuery"].startswith(QUEUE_METRIC + "{")
    assert rule["name"]["as"] == QUEUE_METRIC
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
