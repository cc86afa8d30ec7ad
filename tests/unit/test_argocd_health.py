"""The Argo CD health check on statuses captured from real reconciles (tests/unit/argocd_health/,
captured by tests/integration/test_argocd_health_live.py with LLMSTAGE_CAPTURE_DIR), and on the same
objects with a stale generation. Flux reads the same statuses through kstatus, implemented here
from its rules (kubernetes-sigs/cli-utils pkg/kstatus), so both tools are checked to agree.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.cli import main
from llmstage.gitops.health import HEALTH_KEY, argocd_cm_patch, argocd_health_lua

from testkit.lua_health import argocd_health, conditions, kstatus

FIXTURES = Path(__file__).parent / "argocd_health"
EXPECTED = {
    "ready": "Healthy",
    "progressing": "Progressing",
    "cutover": "Progressing",
    "stalled-unschedulable": "Degraded",
    "stalled-invalid-spec": "Degraded",
}
# kstatus result for each Argo CD health status.
KSTATUS = {"Healthy": "Current", "Progressing": "InProgress", "Degraded": "Failed"}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_expected_fixture_was_captured() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_captured_status(name: str, expected: str) -> None:
    obj = fixture(name)
    status, message = argocd_health(obj)
    assert status == expected
    assert message
    if expected == "Degraded":
        assert message == conditions(obj)["Stalled"]["message"]


@pytest.mark.parametrize("name", EXPECTED)
def test_stale_generation_is_progressing(name: str) -> None:
    obj = fixture(name)
    obj["metadata"]["generation"] += 1
    status, message = argocd_health(obj)
    assert status == "Progressing"
    assert (
        message == f"Waiting for the llmstage operator to observe generation {obj['metadata']['generation']}"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_flux_kstatus_agrees(name: str) -> None:
    obj = fixture(name)
    assert kstatus(obj) == KSTATUS[argocd_health(obj)[0]]
    obj["metadata"]["generation"] += 1
    assert kstatus(obj) == "InProgress"


def test_no_status_yet_is_progressing() -> None:
    obj = fixture("ready")
    del obj["status"]
    assert argocd_health(obj) == ("Progressing", "Waiting for the llmstage operator to report status")


def test_draining_cutover_is_progressing_even_when_ready() -> None:
    # While the old runtime's Deployment is removed, Ready is already True (kstatus: Current).
    obj = copy.deepcopy(fixture("ready"))
    obj["status"]["cutover"] = {"phase": "Draining", "from": "ollama", "to": "vllm", "message": "removing"}
    status, message = argocd_health(obj)
    assert status == "Progressing"
    assert message == "Runtime cutover ollama -> vllm: Draining (removing)"


def test_stalled_without_message_shows_the_reason() -> None:
    obj = fixture("stalled-invalid-spec")
    for cond in obj["status"]["conditions"]:
        if cond["type"] == "Stalled":
            cond["message"] = ""
    assert argocd_health(obj) == ("Degraded", "InvalidSpec")


def test_argocd_cm_patch_carries_the_lua_under_the_health_key(capsys: pytest.CaptureFixture[str]) -> None:
    cm = yaml.safe_load(argocd_cm_patch("ops"))
    assert cm["kind"] == "ConfigMap" and cm["metadata"] == {
        "name": "argocd-cm",
        "namespace": "ops",
        "labels": {"app.kubernetes.io/part-of": "argocd"},
    }
    assert cm["data"] == {HEALTH_KEY: argocd_health_lua()}
    assert HEALTH_KEY == "resource.customizations.health.llmstage.io_LLMService"
    assert main(["manifests", "argocd-cm", "--argocd-namespace", "ops"]) == 0
    assert capsys.readouterr().out == argocd_cm_patch("ops")
    assert main(["manifests", "argocd-health"]) == 0
    assert capsys.readouterr().out == argocd_health_lua()


def test_docs_show_the_current_snippet() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gitops.md").read_text()
    assert f"```yaml\n{argocd_cm_patch()}```" in docs, "docs/gitops.md: paste `llmstage manifests argocd-cm`"
