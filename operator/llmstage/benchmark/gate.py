"""`llmstage promote --require-benchmark`: a promotion needs a current result that meets the
latency the promoted manifest states (pure).

    check(result, where, live_generation, stage, users, target) -> list[str]   notes; GateRefused if not

Refused: no stored result; a result of another generation of the service (its spec changed
since it was measured); a result that misses spec.latencyTarget at the users the promoted stage
expects (judged at the highest level measured up to them). A knee below those users is a note,
not a refusal: a promotion that switches Ollama to vLLM is how that is fixed.
"""

from __future__ import annotations

from llmstage.api.constants import Stage
from llmstage.benchmark.advice import describe, latency_misses
from llmstage.benchmark.knee import find_knee
from llmstage.benchmark.result import BenchmarkResult
from llmstage.resolve.resolved import LatencyTarget


class GateRefused(Exception):
    """The promotion is refused: one line, naming the fix."""


def check(
    result: BenchmarkResult | None,
    *,
    where: str,
    name: str,
    namespace: str,
    live_generation: int,
    stage: Stage,
    users: int,
    target: LatencyTarget | None,
) -> list[str]:
    rerun = f"`llmstage benchmark {name} -n {namespace}`"
    if result is None:
        raise GateRefused(
            f"--require-benchmark: {where} has no stored benchmark (ConfigMap {name}-benchmark): run {rerun} "
            f"before promoting to {stage.value}"
        )
    measured = result.service
    if measured.generation != live_generation:
        raise GateRefused(
            f"--require-benchmark: the benchmark of {where} measured generation {measured.generation} and "
            "the "
            f"service is at generation {live_generation} (its spec changed since): run {rerun} again"
        )
    notes = [f"benchmark: {describe(result)}"]
    knee = find_knee(result.levels)
    if knee.concurrency is not None and users > knee.concurrency:
        notes.append(
            f"benchmark: stage {stage.value} expects {users} users, beyond the knee measured on "
            f"{measured.runtime.value} ({knee.concurrency}); measure again once the promoted service serves"
        )
    if target is None:
        notes.append(
            "benchmark: the manifest states no spec.latencyTarget, so only that a current result exists "
            "was checked"
        )
        return notes
    judged = latency_misses(result, users, target)
    at = f"{judged.level.concurrency} concurrent users" + (f" ({judged.note})" if judged.note else "")
    if judged.misses:
        raise GateRefused(
            f"--require-benchmark: at {at} the benchmark of {where} ({result.finished_at:%Y-%m-%d}, "
            f"{measured.runtime.value}) measured {'; '.join(judged.misses)}, missing spec.latencyTarget of "
            f"stage {stage.value}: fix the service (runtime, replicas, GPUs) and run {rerun} again, or "
            "change the target"
        )
    notes.append(f"benchmark: spec.latencyTarget met at {at}")
    return notes
