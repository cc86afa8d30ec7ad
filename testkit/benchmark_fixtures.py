"""Benchmark results for tests: the real GuideLLM reports of tests/unit/fixtures/benchmark/ (made
by hack/benchmark_fixture.py, see MADE-WITH.txt there) and made-up curves of a given shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from llmstage.benchmark import guidellm_report
from llmstage.benchmark.job import DEFAULT_IMAGE
from llmstage.benchmark.result import BenchmarkResult, Level, MeasuredService, Settings
from llmstage.benchmark.sweep import PROGRESS, RESULT

from testkit.chart import REPO

FIXTURES = REPO / "tests" / "unit" / "fixtures" / "benchmark"
LEVELS = (1, 2, 4, 8)
FINISHED = datetime(2026, 12, 6, 5, 42, 25, tzinfo=UTC)


def report(level: int) -> dict[str, Any]:
    """The real GuideLLM 0.3.1 report of one level."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"level-{level}.json").read_text())
    return loaded


def fixture_levels() -> list[Level]:
    """The real run's levels (Ollama 0.17.4 on one CPU thread: flat at about 20 tokens/s)."""
    return [
        Level.model_validate(guidellm_report.read_levels(FIXTURES / f"level-{n}.json")[0]) for n in LEVELS
    ]


def sweep_lines() -> list[str]:
    """What the benchmark pod printed in that run (progress lines and the result line)."""
    return (FIXTURES / "sweep.log").read_text().splitlines()


def level(
    users: int, tokens: float, ttft: float = 100.0, completed: int = 10, errored: int = 0, itl: float = 20.0
) -> Level:
    """A made-up level: `tokens` output tokens/s, TTFT p50 `ttft` ms (p99 twice that)."""
    return Level.model_validate(
        {
            "concurrency": users,
            "durationSeconds": 30,
            "requests": {"completed": completed, "errored": errored, "incomplete": 0},
            "requestsPerSecond": tokens / 100,
            "outputTokensPerSecond": tokens,
            "timeToFirstTokenMs": {"p50": ttft, "p95": ttft * 1.5, "p99": ttft * 2},
            "interTokenLatencyMs": {"p50": itl, "p95": itl * 1.5, "p99": itl * 2},
            "requestLatencySeconds": {"p50": 2, "p95": 3, "p99": 4},
            "meanOutputTokens": 128,
            "meanPromptTokens": 256,
        }
    )


# The article's two curves, in shape: Ollama flat beyond 4 users, vLLM still climbing.
OLLAMA_CURVE = [level(1, 12), level(2, 22), level(4, 40), level(8, 41, ttft=900), level(16, 41, ttft=2000)]
VLLM_CURVE = [level(n, 15 * n, ttft=40 + n) for n in (1, 2, 4, 8, 16, 32, 50)]


def measured(**service: Any) -> MeasuredService:
    return MeasuredService.model_validate(
        {
            "namespace": "llm-staging",
            "name": "smol",
            "generation": 3,
            "stage": "staging",
            "runtime": "ollama",
            "servedModelName": "smollm2:135m",
            "endpoint": "http://smol.llm-staging.svc:8000/v1",
            "expectedConcurrency": 4,
            "readyReplicas": 1,
            **service,
        }
    )


def stored_result(levels: list[Level] | None = None, **service: Any) -> BenchmarkResult:
    """A stored result: the real fixture's levels unless others are given."""
    levels = levels if levels is not None else fixture_levels()
    return BenchmarkResult(
        service=measured(**service),
        settings=Settings(
            levels=[lv.concurrency for lv in levels],
            prompt_tokens=64,
            output_tokens=32,
            duration_seconds=20,
            image=DEFAULT_IMAGE,
            tool="guidellm 0.3.1",
        ),
        started_at=datetime(2026, 12, 6, 5, 40, tzinfo=UTC),
        finished_at=FINISHED,
        levels=levels,
    )


__all__ = ["FIXTURES", "LEVELS", "PROGRESS", "RESULT", "fixture_levels", "level", "report", "stored_result"]
