"""The knee of a benchmark's curve: the concurrency beyond which adding users stops paying.

Walking the levels in order, the step from a level to the next "scales" when output tokens/s
grow by at least SCALING_FLOOR of the growth in users (doubling the users must bring at least
25% more tokens/s) and the next level's error rate stays under ERROR_CEILING. The knee is the
last level before the first step that does not. One criterion covers latency too: by Little's
law, throughput = users / latency, so throughput that stays flat while users double is latency
that doubles; the knee's message gives both.

What the article measured: Ollama flat beyond 4 parallel requests (the knee at 4), vLLM still
climbing at 256 (no knee in the range). On a busy CPU the figures are noisy; the first step that
does not scale is taken as it is, never smoothed away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from llmstage.benchmark.result import Level

SCALING_FLOOR = 0.25
ERROR_CEILING = 0.05


class NoCurve(ValueError):
    """Not even the first level served: there is no curve to find a knee on."""


@dataclass(frozen=True)
class Knee:
    """concurrency: the last level that still scaled (None: the curve still climbs at the
    highest level measured); message: why, with the figures."""

    concurrency: int | None
    highest: int
    message: str


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def find_knee(levels: Sequence[Level]) -> Knee:
    ordered = sorted(levels, key=lambda lv: lv.concurrency)
    if not ordered:
        raise ValueError("no level measured")
    highest = ordered[-1].concurrency
    first = ordered[0]
    if first.requests.completed == 0 or first.error_rate >= ERROR_CEILING:
        unfinished = first.requests.incomplete
        raise NoCurve(
            f"{first.concurrency} concurrent user(s), the first level, already failed: "
            f"{first.requests.completed} completed, {first.requests.errored} errors"
            + (f" ({first.errors[0]})" if first.errors else "")
            + (
                f", {unfinished} unfinished when its {first.duration_seconds:.0f} s were up (a longer "
                "--duration or fewer --output-tokens lets requests finish)"
                if unfinished and not first.requests.completed
                else ""
            )
        )
    for a, b in pairwise(ordered):
        if b.requests.completed == 0 or b.error_rate >= ERROR_CEILING:
            return Knee(
                a.concurrency,
                highest,
                f"{b.concurrency} concurrent users failed {b.error_rate:.0%} of requests "
                f"({b.requests.errored} errors, {b.requests.completed} completed); {a.concurrency} did not",
            )
        users = b.concurrency / a.concurrency - 1
        gain = (
            (b.output_tokens_per_second / a.output_tokens_per_second - 1)
            if a.output_tokens_per_second
            else 0.0
        )
        if gain < SCALING_FLOOR * users:
            return Knee(
                a.concurrency,
                highest,
                f"throughput stops scaling beyond {a.concurrency} concurrent users: {b.concurrency} users "
                f"gave {gain:+.0%} output tokens/s ({a.output_tokens_per_second:.1f} -> "
                f"{b.output_tokens_per_second:.1f}) for {users:+.0%} users, and time to first token p50 "
                f"went {_ms(a.time_to_first_token_ms.p50)} -> {_ms(b.time_to_first_token_ms.p50)}",
            )
    top = ordered[-1]
    return Knee(
        None,
        highest,
        f"still scaling at {highest} concurrent users, the most measured: "
        f"{top.output_tokens_per_second:.1f} output tokens/s, time to first token p99 "
        f"{_ms(top.time_to_first_token_ms.p99)}",
    )
