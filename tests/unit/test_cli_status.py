"""`llmstage status`: which conditions count as problems, the table, and connection errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llmstage.cli import main
from llmstage.cli.status import problems, table

FIXTURES = Path(__file__).parent / "argocd_health"


def fixture(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_a_ready_service_has_no_problems_and_best_practice_findings_are_problems() -> None:
    assert problems(fixture("ready")) == []
    found = problems(fixture("cutover"))
    assert any(p.startswith("FollowsBestPractices=False GatedModelWithoutToken: ") for p in found)


def test_stalled_shows_the_stalled_message_once() -> None:
    found = problems(fixture("stalled-invalid-spec"))
    assert found[0].startswith("Stalled=True InvalidSpec: spec.model.huggingFaceId")
    assert not any(p.startswith("Ready=") for p in found)


def test_progressing_shows_ready_and_not_a_repeated_reconciling() -> None:
    found = problems(fixture("cutover"))
    assert found[0] == "Ready=False CutoverInProgress: cutover ollama -> vllm: Starting"
    assert not any(p.startswith("Reconciling=") for p in found)
    assert not any(p.startswith("ModelFits=") for p in found)  # Unknown is not a problem


def test_stale_generation_and_missing_status() -> None:
    obj = fixture("ready")
    obj["metadata"]["generation"] += 1
    assert problems(obj)[0] == "generation 2 not yet observed by the operator (observed: 1)"
    del obj["status"]
    assert problems(obj) == ["no status yet: is the llmstage operator running and watching this namespace?"]


def test_table_has_one_row_per_service_and_a_namespace_column_with_all_namespaces() -> None:
    items = [fixture("ready"), fixture("stalled-invalid-spec")]
    out = table(items, with_namespace=True)
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "STAGE",
        "RUNTIME",
        "READY",
        "ENDPOINT",
        "BENCHMARK",
        "PROBLEMS",
    ]
    ready = next(line for line in lines if " ready " in line)
    assert "True 1/1" in ready and "http://ready." in ready
    invalid = next(line for line in lines if " invalid " in line)
    assert "False 0/0" in invalid and "Stalled=True InvalidSpec" in invalid
    assert table(items, with_namespace=False).splitlines()[0].startswith("NAME ")


def test_missing_kubeconfig_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["status", "--kubeconfig", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmstage status: error: kubeconfig ") and "pass --kubeconfig FILE" in err


def test_unreachable_api_server_is_a_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team-a}}]
current-context: x
"""
    )
    assert main(["status", "--kubeconfig", str(kubeconfig)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llmstage status: error: cannot reach the API server")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_broken_kubeconfig_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: missing\n")
    assert main(["status", "--kubeconfig", str(kubeconfig)]) == 2
    assert (
        capsys.readouterr().err == f"llmstage status: error: kubeconfig {kubeconfig} has no contexts; pass "
        "--kubeconfig FILE or set KUBECONFIG\n"
    )


GOOD_PARTS = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
"""


def contexts(cluster: str = "c", user: str = "u", current: str | None = "x") -> str:
    text = f"contexts: [{{name: x, context: {{cluster: {cluster}, user: {user}}}}}]\n"
    return GOOD_PARTS + text + (f"current-context: {current}\n" if current else "")


NO_SERVER = contexts().replace('server: "https://127.0.0.1:9"', "insecure-skip-tls-verify: true")
NOT_YAML = "not YAML (line 1, column 11: expected the node content, but found '<stream end>')"


@pytest.mark.parametrize(
    ("text", "argv", "expected"),
    [
        ("garbage: [", [], NOT_YAML),
        ("hello", [], "not a kubeconfig (a YAML mapping with clusters, users and contexts)"),
        ("- 1\n- 2\n", [], "not a kubeconfig"),
        (contexts(current=None), [], "has no current-context: pass --context NAME (it has: x)"),
        (contexts(), ["--context", "nope"], "has no context nope (it has: x): check --context"),
        (contexts(current="y"), [], "its current-context y is not one of its contexts (it has: x)"),
        (contexts(cluster="d"), [], "context x names cluster d, which the file does not have"),
        (contexts(user="v"), [], "context x names user v, which the file does not have"),
        (NO_SERVER, [], "cluster c (of context x) has no server address"),
    ],
    ids=[
        "not-yaml", "a-string", "a-list", "no-current", "no-such-context", "bad-current", "no-cluster",
        "no-user", "no-server",
    ],
)  # fmt: skip
def test_every_kubeconfig_and_context_error_is_one_plain_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, argv: list[str], expected: str
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(text)
    assert main(["status", "--kubeconfig", str(kubeconfig), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llmstage status: error: kubeconfig {kubeconfig}") and expected in err, err
    assert err.count("\n") == 1
    for python in ("Traceback", "object", "Error(", "Expected object", "'str'", "NoneType"):
        assert python not in err, err
