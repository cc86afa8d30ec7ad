"""What a stored benchmark changes: status.benchmark and FollowsBestPractices (the plan), the
cache that feeds them, `recommend --benchmark-file` and `promote --require-benchmark`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llmstage.api.models import Runtime, Stage
from llmstage.benchmark.advice import findings, latency_misses, recommendation_notes
from llmstage.benchmark.gate import GateRefused, check
from llmstage.benchmark.store import RESULT_KEY, config_map
from llmstage.cli import main
from llmstage.controller.cache import WatchCache
from llmstage.controller.conditions import BEST_PRACTICES
from llmstage.controller.plan import plan
from llmstage.resolve.resolved import LatencyTarget

from testkit.benchmark_fixtures import OLLAMA_CURVE, VLLM_CURVE, stored_result
from testkit.plan_fixtures import NOW, PRODUCTION, observed, resolved

STAGING = {"stage": "staging", "model": {"name": "llama3.1:8b"}}


def stored(result: Any) -> tuple[str, str]:
    """What the watch cache keeps of the ConfigMap: its name and result.json."""
    cm = config_map(result, "u-1")
    return cm["metadata"]["name"], cm["data"][RESULT_KEY]


def best_practices(p: Any) -> Any:
    return next(c for c in p.conditions if c.type == BEST_PRACTICES)


def test_the_operator_reports_the_stored_result_in_status() -> None:
    obs = observed()
    obs.benchmark = stored(stored_result(OLLAMA_CURVE, name="chat", namespace="team"))
    p = plan(resolved(stage="staging", expectedConcurrency=4), obs, NOW)
    summary = p.status["benchmark"]
    assert summary["knee"] == 4 and summary["levels"] == [1, 2, 4, 8, 16]
    assert summary["runtime"] == "ollama" and summary["stage"] == "staging"
    assert summary["configMap"] == "chat-benchmark" and summary["peakOutputTokensPerSecond"] == 41.0
    assert summary["message"].startswith("throughput stops scaling beyond 4 concurrent users")
    assert best_practices(p).status == "True"  # 4 expected users, knee at 4: nothing to say
    assert plan(resolved(), observed(), NOW).status["benchmark"] is None  # written as null: removed


def test_more_users_than_the_measured_knee_is_a_finding_on_the_same_runtime() -> None:
    """The issue's example: staging measured a knee at 4 on Ollama; the spec now expects 50."""
    obs = observed()
    obs.benchmark = stored(stored_result(OLLAMA_CURVE))
    p = plan(resolved(stage="staging", expectedConcurrency=50, runtime="ollama"), obs, NOW)
    condition = best_practices(p)
    assert condition.status == "False"
    assert (
        "ExpectedUsersAboveKnee: staging measured a knee at 4 concurrent users on ollama (2026-12-06, "
        "1 pod(s)" in condition.message
    )
    assert "stage staging expects 50 (spec.expectedConcurrency)" in condition.message
    assert "Serve it with vLLM (spec.resources.gpu and runtime auto or vllm), or run about 13 replicas" in (
        condition.message
    )


def test_a_result_of_the_other_runtime_says_nothing_about_this_one() -> None:
    """Promoted in place from Ollama to vLLM: the Ollama curve stays in status, judges nothing."""
    obs = observed()
    obs.benchmark = stored(stored_result(OLLAMA_CURVE))
    p = plan(resolved(**{**PRODUCTION, "expectedConcurrency": 50}), obs, NOW)
    assert p.status["benchmark"]["runtime"] == "ollama"
    assert "ExpectedUsersAboveKnee" not in best_practices(p).message


def test_a_latency_target_missed_at_the_expected_users_is_a_finding() -> None:
    obs = observed()
    obs.benchmark = stored(stored_result(OLLAMA_CURVE))
    target = {"latencyTarget": {"timeToFirstTokenP99Ms": 1000}}
    p = plan(resolved(stage="staging", expectedConcurrency=8, runtime="ollama", **target), obs, NOW)
    message = best_practices(p).message
    assert (
        "LatencyTargetMissed: at 8 concurrent users the benchmark of 2026-12-06 measured time to first token "
        in message
    )
    assert "p99 1800 ms > 1000 ms (spec.latencyTarget)" in message
    within = plan(resolved(stage="staging", expectedConcurrency=4, runtime="ollama", **target), obs, NOW)
    assert "LatencyTargetMissed" not in best_practices(within).message


def test_an_unreadable_result_is_reported_with_the_fix() -> None:
    obs = observed()
    obs.benchmark = ("chat-benchmark", "{}")
    p = plan(resolved(), obs, NOW)
    assert p.status["benchmark"] is None
    assert best_practices(p).reason == "BenchmarkResultUnreadable"
    assert "run `llmstage benchmark chat -n team` to replace it" in best_practices(p).message


def test_the_cache_keeps_only_results_of_benchmarks_by_their_service() -> None:
    cache = WatchCache()
    cm = config_map(stored_result(name="chat", namespace="team"), "u-1")
    cm["metadata"]["namespace"] = "team"
    assert cache.put_benchmark(cm) == ("team", "chat") and cache.changed
    # The service comes from the label the CLI sets; the stored text is result.json only (no chart).
    assert cache.benchmarks[("team", "chat")] == ("chat-benchmark", cm["data"][RESULT_KEY])
    assert cache.put_benchmark(cm) == ("team", "chat") and not cache.changed
    other = {
        "metadata": {"name": "x", "namespace": "team", "labels": {"app.kubernetes.io/name": "x"}},
        "data": {},
    }
    assert cache.put_benchmark(other) is None
    assert cache.put_benchmark(cm, deleted=True) == ("team", "chat") and cache.changed
    assert cache.benchmarks == {}


# ---------------------------------------------------------------- advice, recommend


def test_a_curve_still_climbing_has_no_finding_whatever_the_users() -> None:
    result = stored_result(VLLM_CURVE, runtime="vllm", stage="production")
    assert findings(result, Runtime.VLLM, Stage.PRODUCTION, 50, None) == []
    notes = recommendation_notes(result, Runtime.VLLM, Stage.PRODUCTION, 80)
    assert notes[0].startswith("production measured no knee up to 50 concurrent users on vllm")
    assert "expects 80 users, more than the 50 measured" in notes[1]


def test_recommend_compares_the_users_with_a_saved_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = stored_result(OLLAMA_CURVE)
    saved = tmp_path / "staging.json"
    saved.write_text(json.dumps({"configMap": "smol-benchmark", "knee": 4, **result.model_dump(mode="json")}))
    assert main(["recommend", "--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4",
                 "--benchmark-file", str(saved)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Measured (llmstage benchmark):" in out
    assert "staging measured a knee at 4 concurrent users on ollama" in out
    assert (
        "Stage production expects 50 users, beyond the knee ollama showed (4): that is what the switch to "
        "vllm is for" in out
    )
    assert main(["recommend", "--users", "8", "--stage", "staging", "--benchmark-file", str(saved)]) == 0
    assert "ExpectedUsersAboveKnee" not in capsys.readouterr().out  # findings are the condition's; here, text
    bad = tmp_path / "bad.json"
    bad.write_text('{"levels": []}')
    assert main(["recommend", "--users", "8", "--stage", "staging", "--benchmark-file", str(bad)]) == 2
    assert f"{bad}: not a result of `llmstage benchmark -o json`" in capsys.readouterr().err


# ---------------------------------------------------------------- promote --require-benchmark


def gate(result: Any, **kw: Any) -> list[str]:
    args: dict[str, Any] = {
        "where": "llm-staging/smol",
        "name": "smol",
        "namespace": "llm-staging",
        "live_generation": 3,
        "stage": Stage.PRODUCTION,
        "users": 8,
        "target": LatencyTarget(time_to_first_token_p99_ms=2000),
    }
    return check(result, **{**args, **kw})


def test_the_gate_refuses_without_a_result() -> None:
    with pytest.raises(GateRefused) as err:
        gate(None)
    assert str(err.value) == (
        "--require-benchmark: llm-staging/smol has no stored benchmark (ConfigMap smol-benchmark): run "
        "`llmstage benchmark smol -n llm-staging` before promoting to production"
    )


def test_the_gate_refuses_a_result_of_an_older_spec() -> None:
    with pytest.raises(GateRefused, match="measured generation 3 and the service is at generation 4"):
        gate(stored_result(OLLAMA_CURVE), live_generation=4)


def test_the_gate_refuses_a_missed_latency_target_at_the_target_stages_users() -> None:
    with pytest.raises(GateRefused) as err:
        gate(stored_result(OLLAMA_CURVE), users=50, target=LatencyTarget(time_to_first_token_p99_ms=1000))
    assert "at 16 concurrent users (the most measured; 50 users were not)" in str(err.value)
    assert (
        "measured time to first token p99 4000 ms > 1000 ms, missing spec.latencyTarget of stage production"
        in (str(err.value))
    )


def test_the_gate_passes_with_notes() -> None:
    notes = gate(stored_result(OLLAMA_CURVE), users=8)
    assert notes[0].startswith("benchmark: staging measured a knee at 4 concurrent users on ollama")
    assert "stage production expects 8 users, beyond the knee measured on ollama (4)" in notes[1]
    assert notes[-1] == "benchmark: spec.latencyTarget met at 8 concurrent users"
    untargeted = gate(stored_result(OLLAMA_CURVE), users=4, target=None)
    assert untargeted[-1].startswith("benchmark: the manifest states no spec.latencyTarget")


def test_latency_is_judged_at_the_highest_level_up_to_the_users() -> None:
    result = stored_result(OLLAMA_CURVE)
    target = LatencyTarget(inter_token_latency_p99_ms=30)
    assert latency_misses(result, 6, target).level.concurrency == 4
    assert latency_misses(result, 6, target).note == "the most measured at or below 6 users"
    assert latency_misses(result, 6, target).misses == ["inter-token latency p99 40.0 ms > 30 ms"]
