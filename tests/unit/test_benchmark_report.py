"""GuideLLM's reports -> the levels llmstage stores, and the knee of a curve.

tests/unit/fixtures/benchmark/ holds real GuideLLM 0.3.1 reports (one per level) of a real
Ollama 0.17.4 serving SmolLM2-135M on this machine's CPU, and the sweep's own output of that run:
made by hack/benchmark_fixture.py, see MADE-WITH.txt there.
"""

from __future__ import annotations

import json

import pytest
from llmstage.benchmark import guidellm_report
from llmstage.benchmark.knee import SCALING_FLOOR, NoCurve, find_knee
from llmstage.benchmark.result import Level
from llmstage.benchmark.sweep import RESULT

from testkit.benchmark_fixtures import FIXTURES, LEVELS, OLLAMA_CURVE, fixture_levels, level, report


@pytest.mark.parametrize("level", LEVELS)
def test_each_real_report_gives_its_level_with_guidellms_own_figures(level: int) -> None:
    raw = report(level)["benchmarks"][0]
    (parsed,) = guidellm_report.levels_from_report(report(level))
    metrics = raw["metrics"]
    assert parsed["concurrency"] == level == raw["args"]["strategy"]["streams"]
    assert parsed["requests"] == {
        "completed": raw["request_totals"]["successful"],
        "errored": raw["request_totals"]["errored"],
        "incomplete": raw["request_totals"]["incomplete"],
    }
    assert parsed["requests"]["completed"] > 0
    assert parsed["outputTokensPerSecond"] == round(
        metrics["output_tokens_per_second"]["successful"]["mean"], 3
    )
    assert parsed["requestsPerSecond"] == round(metrics["requests_per_second"]["successful"]["mean"], 4)
    for ours, theirs in (
        ("timeToFirstTokenMs", "time_to_first_token_ms"),
        ("interTokenLatencyMs", "inter_token_latency_ms"),
    ):
        percentiles = metrics[theirs]["successful"]["percentiles"]
        assert parsed[ours] == {p: round(percentiles[p], 3) for p in ("p50", "p95", "p99")}
        assert parsed[ours]["p50"] <= parsed[ours]["p95"] <= parsed[ours]["p99"]
    # The server's own token counts (usage): at most the 32 asked for (max_tokens), fewer when the
    # model ends its answer first (Ollama has no ignore_eos).
    assert parsed["meanOutputTokens"] == round(metrics["output_token_count"]["successful"]["mean"], 1)
    assert 16 < parsed["meanOutputTokens"] <= 32
    Level.model_validate(parsed)  # what the CLI and the operator accept


def test_the_pods_result_line_is_what_the_kept_reports_say() -> None:
    """The sweep printed its result from the same reports the fixture kept."""
    line = next(x for x in (FIXTURES / "sweep.log").read_text().splitlines() if x.startswith(RESULT))
    result = json.loads(line[len(RESULT) :])
    assert result["tool"] == "guidellm 0.3.1"
    assert result["levels"] == [guidellm_report.read_levels(FIXTURES / f"level-{n}.json")[0] for n in LEVELS]


def test_the_report_holds_the_api_key_which_is_why_it_never_leaves_the_pod() -> None:
    """GuideLLM 0.3.1 writes its request headers into the report; the fixture's key was replaced."""
    headers = report(1)["benchmarks"][0]["worker"]["backend_info"]["headers"]
    assert headers == {"Authorization": "Bearer [api key]"}
    assert "Authorization" not in json.dumps(guidellm_report.levels_from_report(report(1)))


def test_a_report_of_another_shape_is_refused_with_what_is_missing() -> None:
    broken = report(1)
    del broken["benchmarks"][0]["metrics"]["time_to_first_token_ms"]
    with pytest.raises(guidellm_report.ReportError, match="time_to_first_token_ms"):
        guidellm_report.levels_from_report(broken)
    rate = report(1)
    rate["benchmarks"][0]["args"]["strategy"]["type_"] = "constant"
    with pytest.raises(guidellm_report.ReportError, match="not 'concurrent'"):
        guidellm_report.levels_from_report(rate)
    with pytest.raises(guidellm_report.ReportError, match="no benchmark"):
        guidellm_report.levels_from_report({"benchmarks": []})


def test_the_real_curve_is_flat_from_one_user_so_the_knee_is_at_one() -> None:
    """One CPU thread (MADE-WITH.txt): about 20 tokens/s whatever the users, and time to first
    token growing with the queue."""
    levels = fixture_levels()
    tokens = [lv.output_tokens_per_second for lv in levels]
    assert max(tokens) < 1.5 * min(tokens)
    assert levels[-1].time_to_first_token_ms.p50 > 4 * levels[0].time_to_first_token_ms.p50
    knee = find_knee(levels)
    assert knee.concurrency == 1 and knee.highest == 8
    assert knee.message.startswith("throughput stops scaling beyond 1 concurrent users: 2 users gave")


def test_the_articles_ollama_is_flat_beyond_four_users() -> None:
    knee = find_knee(OLLAMA_CURVE)
    assert knee.concurrency == 4
    assert "8 users gave +2% output tokens/s (40.0 -> 41.0) for +100% users" in knee.message
    assert "100 ms -> 900 ms" in knee.message


def test_a_curve_that_keeps_climbing_has_no_knee_in_the_range() -> None:
    curve = [level(n, 15 * n) for n in (1, 2, 4, 8, 16, 32, 50)]
    knee = find_knee(curve)
    assert knee.concurrency is None and knee.highest == 50
    assert knee.message.startswith("still scaling at 50 concurrent users, the most measured")


def test_the_floor_is_a_quarter_of_the_growth_in_users() -> None:
    just_enough = 10 * (1 + SCALING_FLOOR)
    assert find_knee([level(1, 10), level(2, just_enough)]).concurrency is None
    assert find_knee([level(1, 10), level(2, just_enough - 0.01)]).concurrency == 1
    # From 32 to 50 users is +56%: the floor is +14% there.
    assert find_knee([level(32, 100), level(50, 115)]).concurrency is None


def test_errors_end_the_curve_where_they_start() -> None:
    curve = [level(1, 10), level(2, 20), level(4, 39, completed=30, errored=3)]
    knee = find_knee(curve)
    assert knee.concurrency == 2 and "4 concurrent users failed 9% of requests" in knee.message
    nothing = [level(1, 10), level(2, 0, completed=0)]
    assert find_knee(nothing).concurrency == 1


def test_no_curve_when_the_first_level_already_failed() -> None:
    with pytest.raises(NoCurve, match="the first level, already failed: 0 completed, 5 errors"):
        find_knee([level(1, 0, completed=0, errored=5), level(2, 10)])


def test_levels_are_taken_in_order_of_users() -> None:
    assert find_knee([level(4, 40), level(1, 12), level(8, 41), level(2, 22)]).concurrency == 4
