"""kube-score (hack/tools/kube-score, built by `make tools`) on what a cluster gets: the objects of
every example as `llmstage render` prints them, and the chart's defaults. No CRITICAL finding
but the ones accepted below, each explained in docs/security.md (this test keeps them listed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testkit.chart import HELM, REPO

KUBE_SCORE = REPO / ".tools" / "bin" / "kube-score"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
SECURITY_DOC = (REPO / "docs" / "security.md").read_text()
CRITICAL = 1  # kube-score's grade

# (check id, summary) -> why it stays; docs/security.md has the same rows.
ACCEPTED = {
    ("container-resources", "CPU limit is not set"): "throttling a token generator only adds latency",
    ("container-image-pull-policy", "ImagePullPolicy is not set to Always"): "multi-GB images by tag",
    ("container-ephemeral-storage-request-and-limit", "Ephemeral Storage limit is not set"): "sizeLimits",
    ("container-security-context-user-group-id", "The container is running with a low user ID"): "UIDs",
    ("container-security-context-user-group-id", "The container running with a low group ID"): "GIDs",
    (
        "container-security-context-readonlyrootfilesystem",
        "The pod has a container with a writable root filesystem",
    ): "vLLM and Ollama on GPUs: the NVIDIA toolkit writes there",
    ("pod-probes-identical", "Container has the same readiness and liveness probe"): "vLLM's /health",
    ("deployment-has-poddisruptionbudget", "No matching PodDisruptionBudget was found"): "staging only",
}  # fmt: skip


def kube_score(manifest: str) -> list[tuple[str, str, str]]:
    """(object, check id, summary) of every CRITICAL comment."""
    if not KUBE_SCORE.exists():
        pytest.fail("kube-score is not built: run make tools (hack/tools/build.sh kube-score)")
    res = subprocess.run(
        [str(KUBE_SCORE), "score", "--output-format", "json", "-"],
        input=manifest,
        capture_output=True,
        text=True,
    )
    # Exit code 1 means "some check failed"; anything else is kube-score failing to run.
    assert res.returncode in (0, 1), res.stderr
    out = []
    for obj in json.loads(res.stdout):
        for check in obj["checks"]:
            if check["grade"] == CRITICAL and not check["skipped"]:
                for comment in check.get("comments") or [{"summary": check["check"]["name"]}]:
                    out.append((obj["object_name"], check["check"]["id"], comment["summary"]))
    return out


def rendered(example: Path) -> str:
    res = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "llmstage"),
            "render",
            "-f",
            str(example),
            "-n",
            "team-a",
            "--uid",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_no_critical_finding_but_the_accepted_on_the_rendered_examples(example: Path) -> None:
    findings = kube_score(rendered(example))
    assert [f for f in findings if (f[1], f[2]) not in ACCEPTED] == []
    # The NetworkPolicy is what kube-score's pod-networkpolicy check looks for: never flagged.
    assert not [f for f in findings if f[1] == "pod-networkpolicy"]


def test_no_critical_finding_but_the_accepted_on_the_chart() -> None:
    chart = subprocess.run(
        [
            str(HELM),
            "template",
            "llmstage",
            str(REPO / "charts" / "llmstage"),
            "--namespace",
            "llmstage-system",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    findings = kube_score(chart)
    assert [f for f in findings if (f[1], f[2]) not in ACCEPTED] == []


@pytest.mark.parametrize(("check", "summary"), sorted(ACCEPTED))
def test_every_accepted_finding_is_explained_in_the_security_doc(check: str, summary: str) -> None:
    assert f"`{check}`" in SECURITY_DOC and summary in SECURITY_DOC
