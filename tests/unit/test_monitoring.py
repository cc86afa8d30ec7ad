"""The chart's alerting rules and Grafana dashboard: valid PromQL (parsed by promql-parser, the
Rust parser GreptimeDB uses, the closest to `promtool check rules` on PyPI), the alerts the
chart must ship (docs/operator.md), and every metric they name exported by the operator."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml
from llmstage.controller import metrics  # noqa: F401  (registers every metric)
from prometheus_client import REGISTRY

from testkit.chart import CHART

RULES = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
DASHBOARD = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
# Grafana's variables, replaced by something of the same type before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$job": ".*"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def rules() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    out = []
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']!r}"
            out.append(expr)
    for var in DASHBOARD["templating"]["list"]:
        if var["type"] == "query":
            out.append(re.sub(r"^label_values\((\w+),\s*\w+\)$", r"\1", var["definition"]))
    return out


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exported() -> set[str]:
    """Every sample name the operator's registry can serve (counters as *_total, histograms as
    *_bucket/_sum/_count)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    out: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("llmstage_"):
            out.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return out


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert", "?"))
def test_every_rule_is_valid(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
    promql_parser.parse(rule["expr"])  # raises ValueError naming the problem
    assert DURATION.match(rule["for"])
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_alerts_of_issue_14_are_there() -> None:
    by_name = {r["alert"]: r for r in rules()}
    stalled = by_name["LLMServiceStalled"]
    assert stalled["for"] == "10m" and 'type="Stalled", status="True"' in stalled["expr"]
    no_leader = by_name["LLMStageNoLeader"]
    assert no_leader["for"] == "1m" and "llmstage_leader" in no_leader["expr"]
    errors = by_name["LLMStageReconcileErrors"]
    assert 'llmstage_reconciles_total{result="error"}' in errors["expr"]


def test_a_broken_expression_fails_the_check() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("max by (namespace (llmstage_leader) < 1")


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_every_dashboard_query_is_valid(expr: str) -> None:
    promql_parser.parse(expr)


def test_the_dashboard_is_importable() -> None:
    assert DASHBOARD["uid"] == "llmstage-operator" and DASHBOARD["title"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
    names = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert names == {"datasource", "job"}


def test_every_metric_the_rules_and_the_dashboard_name_is_exported() -> None:
    named = set().union(
        *(metric_names(r["expr"]) for r in rules()), *(metric_names(e) for e in dashboard_exprs())
    )
    assert named, "no metric found: the walk is broken"
    missing = named - exported()
    assert not missing, f"named but not exported by the operator: {sorted(missing)}"
    # And the operator's own health series are among them.
    for name in (
        "llmstage_workqueue_depth",
        "llmstage_workqueue_queue_duration_seconds_bucket",
        "llmstage_workqueue_retries_total",
        "llmstage_reconciles_in_flight",
        "llmstage_leader",
        "llmstage_build_info",
        "llmstage_llmservice_condition",
    ):
        assert name in named, name
