"""What a stored benchmark means for the runtime decision and the promotion (pure).

    findings(result, runtime, stage, users, target) -> list[Finding]    FollowsBestPractices
    latency_misses(result, users, target) -> Judged                       promote --require-benchmark
    describe(result) -> str          "staging measured a knee at 4 concurrent users on ollama (...)"

A result only speaks for the runtime it measured: after a promotion from Ollama to vLLM the
stored Ollama curve says nothing about vLLM, so findings() is empty until the next benchmark,
and recommend says so (cli/recommend.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmstage.api.constants import Runtime, Stage
from llmstage.benchmark.knee import find_knee
from llmstage.benchmark.result import BenchmarkResult, Level
from llmstage.resolve.resolved import Finding, LatencyTarget


def describe(result: BenchmarkResult) -> str:
    service = result.service
    knee = find_knee(result.levels)
    where = (
        f"a knee at {knee.concurrency} concurrent users"
        if knee.concurrency is not None
        else f"no knee up to {knee.highest} concurrent users"
    )
    return (
        f"{service.stage.value} measured {where} on {service.runtime.value} "
        f"({result.finished_at:%Y-%m-%d}, {service.ready_replicas} pod(s), generation {service.generation})"
    )


@dataclass(frozen=True)
class Judged:
    """The level a stage's users are judged by, and what misses the target there."""

    level: Level
    misses: list[str]
    note: str  # empty, or why this level and not the users' own


def latency_misses(result: BenchmarkResult, users: int, target: LatencyTarget) -> Judged:
    level = result.level_for_users(users)
    highest = max(lv.concurrency for lv in result.levels)
    note = ""
    if users > level.concurrency:
        note = (
            f"the most measured at or below {users} users"
            if users <= highest
            else (f"the most measured; {users} users were not")
        )
    # (what, the target's p99 in ms, the measured p99, its format)
    latencies = (
        ("time to first token", target.time_to_first_token_p99_ms, level.time_to_first_token_ms.p99, ".0f"),
        ("inter-token latency", target.inter_token_latency_p99_ms, level.inter_token_latency_ms.p99, ".1f"),
    )
    misses = [
        f"{what} p99 {measured:{fmt}} ms > {limit} ms"
        for what, limit, measured, fmt in latencies
        if limit is not None and measured > limit
    ]
    if level.requests.errored:
        misses.append(f"{level.requests.errored} failed requests")
    return Judged(level, misses, note)


def findings(
    result: BenchmarkResult, runtime: Runtime, stage: Stage, users: int, target: LatencyTarget | None
) -> list[Finding]:
    """FollowsBestPractices findings of a stored result against the service as it is now."""
    if result.service.runtime != runtime:
        return []
    out: list[Finding] = []
    knee = find_knee(result.levels)
    if knee.concurrency is not None and users > knee.concurrency:
        pods = max(1, result.service.ready_replicas)
        replicas = math.ceil(users / knee.concurrency * pods)
        fix = (
            "serve it with vLLM (spec.resources.gpu and runtime auto or vllm)"
            if runtime == Runtime.OLLAMA
            else "give each replica more GPU memory or GPUs"
        )
        out.append(
            Finding(
                "ExpectedUsersAboveKnee",
                f"{describe(result)}; stage {stage.value} expects {users} (spec.expectedConcurrency): beyond "
                f"{knee.concurrency} users requests queue and latency climbs ({knee.message}). "
                f"{fix[0].upper()}{fix[1:]}, "
                f"or run about {replicas} replicas, then run `llmstage benchmark` again",
            )
        )
    if target is not None:
        judged = latency_misses(result, users, target)
        if judged.misses:
            at = f"{judged.level.concurrency} concurrent users" + (f" ({judged.note})" if judged.note else "")
            out.append(
                Finding(
                    "LatencyTargetMissed",
                    f"at {at} the benchmark of {result.finished_at:%Y-%m-%d} measured "
                    f"{'; '.join(judged.misses)} (spec.latencyTarget)",
                )
            )
    return out


def recommendation_notes(result: BenchmarkResult, runtime: Runtime, stage: Stage, users: int) -> list[str]:
    """What a measured curve says of a recommendation (`llmstage recommend --benchmark`)."""
    measured = result.service.runtime
    knee = find_knee(result.levels)
    lines = [describe(result) + "."]
    beyond = knee.concurrency is not None and users > knee.concurrency
    if measured == runtime:
        if beyond:
            lines += [f.message for f in findings(result, runtime, stage, users, None)]
        elif users > knee.highest:
            lines.append(
                f"Stage {stage.value} expects {users} users, more than the {knee.highest} measured: run "
                f"`llmstage benchmark --levels` up to {users} to see whether {runtime.value} keeps scaling."
            )
        else:
            lines.append(
                f"Stage {stage.value} expects {users} users: within what {measured.value} was measured "
                "to carry."
            )
    elif beyond:
        lines.append(
            f"Stage {stage.value} expects {users} users, beyond the knee {measured.value} showed "
            f"({knee.concurrency}): that is what the switch to {runtime.value} is for; benchmark it again "
            "once "
            f"{runtime.value} serves, the {measured.value} curve says nothing about {runtime.value}."
        )
    else:
        lines.append(
            f"The recommendation is {runtime.value}; the curve measured {measured.value}, so benchmark it "
            "again "
            f"once {runtime.value} serves."
        )
    return lines
