"""One concurrency level's figures from a GuideLLM 0.3.1 report (`guidellm benchmark run
--output-path FILE.json`), in the keys llmstage stores.

Standard library only: the benchmark image runs this module beside GuideLLM without llmstage's
dependencies (images/benchmark/Dockerfile). The report's layout is GuideLLM 0.3.1's own
(guidellm/benchmark/benchmark.py, GenerativeBenchmark and GenerativeMetrics, serialised by
pydantic): `benchmarks[i].metrics.<metric>.<status>` is a DistributionSummary with `mean`,
`median` and `percentiles.p50/p95/p99`; `benchmarks[i].request_totals` counts the requests by
status; `benchmarks[i].args.strategy.streams` is the concurrency of a `concurrent` run.

The figures are the ones GuideLLM prints in its own "Benchmarks Stats" table: the mean of the
requests/s and output tokens/s distributions (time-weighted over the run) and the percentiles of
time to first token and inter-token latency, all of successful requests. Requests still running
when a level's time is up are `incomplete` and counted apart from errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GUIDELLM_VERSION = "0.3.1"
PERCENTILES = ("p50", "p95", "p99")


class ReportError(ValueError):
    """A report that is not what GuideLLM 0.3.1 writes for one concurrent run."""


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            raise ReportError(f"the report has no {'.'.join(path)}")
        obj = obj[key]
    return obj


def _number(obj: Any, *path: str) -> float:
    value = _get(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{'.'.join(path)} is {value!r}, not a number")
    return float(value)


def _percentiles(metrics: Any, metric: str) -> dict[str, float]:
    summary = _get(metrics, metric, "successful")
    return {p: round(_number(summary, "percentiles", p), 3) for p in PERCENTILES}


def level_from_benchmark(benchmark: dict[str, Any]) -> dict[str, Any]:
    """One GenerativeBenchmark of a `concurrent` run -> the level's figures."""
    strategy = _get(benchmark, "args", "strategy")
    if strategy.get("type_") != "concurrent":
        raise ReportError(f"the run's strategy is {strategy.get('type_')!r}, not 'concurrent'")
    metrics = _get(benchmark, "metrics")
    totals = _get(benchmark, "request_totals")
    completed = int(_number(totals, "successful"))
    return {
        "concurrency": int(_number(strategy, "streams")),
        "durationSeconds": round(_number(benchmark, "duration"), 3),
        "requests": {
            "completed": completed,
            "errored": int(_number(totals, "errored")),
            "incomplete": int(_number(totals, "incomplete")),
        },
        # Without a successful request GuideLLM's distributions are all zeros: keep them so.
        "requestsPerSecond": round(_number(metrics, "requests_per_second", "successful", "mean"), 4),
        "outputTokensPerSecond": round(_number(metrics, "output_tokens_per_second", "successful", "mean"), 3),
        "timeToFirstTokenMs": _percentiles(metrics, "time_to_first_token_ms"),
        "interTokenLatencyMs": _percentiles(metrics, "inter_token_latency_ms"),
        "requestLatencySeconds": {
            p: round(_number(metrics, "request_latency", "successful", "percentiles", p), 4)
            for p in PERCENTILES
        },
        "meanOutputTokens": round(_number(metrics, "output_token_count", "successful", "mean"), 1),
        "meanPromptTokens": round(_number(metrics, "prompt_token_count", "successful", "mean"), 1),
    }


def levels_from_report(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every benchmark of a report (one per concurrency level), in the report's order."""
    benchmarks = _get(report, "benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise ReportError("the report holds no benchmark")
    return [level_from_benchmark(b) for b in benchmarks]


def read_levels(path: Path) -> list[dict[str, Any]]:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: {err}") from err
    return levels_from_report(report)


def first_errors(report: dict[str, Any], limit: int = 3) -> list[str]:
    """The first distinct error messages of failed requests (what the server answered)."""
    out: list[str] = []
    for benchmark in report.get("benchmarks") or []:
        for request in ((benchmark.get("requests") or {}).get("errored")) or []:
            message = str(request.get("error") or "").strip()
            if message and message not in out:
                out.append(message[:300])
            if len(out) >= limit:
                return out
    return out
