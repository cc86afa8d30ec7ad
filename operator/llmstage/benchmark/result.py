"""A benchmark's result as llmstage stores it: what was measured, how, and each level's figures.

The CLI builds it from the Job's result line (llmstage.benchmark.sweep) and the service as it was
when measured, and stores it as `result.json` in the ConfigMap NAME-benchmark
(llmstage.benchmark.store); the operator reads it back from there for status.benchmark. The
models reject what they do not know (ApiModel), so a hand-edited ConfigMap is reported, not
half-read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from llmstage.api.base import ApiModel
from llmstage.api.constants import MAX_BENCHMARK_LEVELS, Runtime, Stage

FORMAT: Literal[1] = 1


class Percentiles(ApiModel):
    p50: float = Field(ge=0)
    p95: float = Field(ge=0)
    p99: float = Field(ge=0)


class RequestCounts(ApiModel):
    completed: int = Field(ge=0)
    errored: int = Field(ge=0)
    incomplete: int = Field(ge=0, description="still running when the level's time was up")


class Level(ApiModel):
    """One concurrency level: GuideLLM's figures for its successful requests
    (llmstage.benchmark.guidellm_report)."""

    concurrency: int = Field(ge=1)
    duration_seconds: float = Field(ge=0)
    requests: RequestCounts
    requests_per_second: float = Field(ge=0)
    output_tokens_per_second: float = Field(ge=0)
    time_to_first_token_ms: Percentiles
    inter_token_latency_ms: Percentiles
    request_latency_seconds: Percentiles
    mean_output_tokens: float = Field(ge=0)
    mean_prompt_tokens: float = Field(ge=0)
    errors: list[str] = Field(default_factory=list, description="the first distinct error messages")

    @property
    def error_rate(self) -> float:
        done = self.requests.completed + self.requests.errored
        return self.requests.errored / done if done else 0.0


class MeasuredService(ApiModel):
    """The LLMService as it was when measured."""

    namespace: str
    name: str
    generation: int = Field(ge=0)
    stage: Stage
    runtime: Runtime
    served_model_name: str
    endpoint: str
    expected_concurrency: int = Field(ge=1)
    ready_replicas: int = Field(ge=0)


class Settings(ApiModel):
    levels: list[int] = Field(min_length=1, max_length=MAX_BENCHMARK_LEVELS)
    prompt_tokens: int = Field(ge=1)
    output_tokens: int = Field(ge=1)
    duration_seconds: float = Field(gt=0, description="per level")
    image: str
    tool: str = Field(description="e.g. guidellm 0.3.1")


class BenchmarkResult(ApiModel):
    format: Literal[1] = FORMAT
    service: MeasuredService
    settings: Settings
    started_at: datetime
    finished_at: datetime
    levels: list[Level] = Field(min_length=1, max_length=MAX_BENCHMARK_LEVELS)

    def level(self, concurrency: int) -> Level | None:
        return next((lv for lv in self.levels if lv.concurrency == concurrency), None)

    def level_for_users(self, users: int) -> Level:
        """The level to judge `users` by: the highest measured at or below it (the lowest level
        when users is below every level)."""
        below = [lv for lv in self.levels if lv.concurrency <= users]
        return (
            max(below, key=lambda lv: lv.concurrency)
            if below
            else min(self.levels, key=lambda lv: lv.concurrency)
        )
