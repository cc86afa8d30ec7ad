"""The benchmark's chart: throughput and latency against concurrency, as one SVG file.

Two panels side by side over the same x axis (the levels, evenly spaced, as the article's chart
has them): output tokens/s on the left, time to first token p50/p99 and inter-token latency p50
on the right, and the knee as a dashed line on both. Plain SVG text, no plotting library: it is
stored in the ConfigMap beside the result (a few KiB) and opens in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from llmstage.benchmark.knee import find_knee
from llmstage.benchmark.result import BenchmarkResult, Level

WIDTH, HEIGHT = 960, 400
PANEL_W, PANEL_H = 380, 260
TOP, LEFT = 70, 70
GAP = 100
COLORS = {"tokens": "#1f77b4", "ttft50": "#d62728", "ttft99": "#ff9896", "itl50": "#2ca02c"}


def _nice_max(value: float) -> float:
    """A round axis maximum at or above value (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:g}"


def _panel(
    x0: float,
    title: str,
    unit: str,
    levels: Sequence[Level],
    series: list[tuple[str, str, list[float]]],
    knee: int | None,
) -> list[str]:
    top = max((v for _, _, values in series for v in values), default=0.0)
    y_max = _nice_max(top)
    n = len(levels)

    def x(i: int) -> float:
        return x0 + (PANEL_W * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + PANEL_H - PANEL_H * v / y_max

    out = [
        f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 20}" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>',
    ]
    for k in range(5):
        value = y_max * k / 4
        out.append(
            f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x0 - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">{_fmt(value)}</text>'
        )
    out.append(
        f'<text x="{x0 - 50}" y="{TOP + PANEL_H / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 {x0 - 50} {TOP + PANEL_H / 2})">{escape(unit)}</text>'
    )
    for i, level in enumerate(levels):
        out.append(
            f'<text x="{x(i):.1f}" y="{TOP + PANEL_H + 16}" text-anchor="middle" font-size="11">'
            f"{level.concurrency}</text>"
        )
        if level.concurrency == knee:
            out.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{TOP}" y2="{TOP + PANEL_H}" stroke="#555" '
                'stroke-dasharray="5,4"/>'
                f'<text x="{x(i) + 4:.1f}" y="{TOP + 14}" font-size="11">knee</text>'
            )
    out.append(
        f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 34}" text-anchor="middle" font-size="12">'
        "concurrent users</text>"
    )
    for row, (label, color, values) in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>' for i, v in enumerate(values)
        ]
        ly = TOP + PANEL_H + 52 + 16 * row
        out.append(f'<rect x="{x0}" y="{ly - 9}" width="12" height="4" fill="{color}"/>')
        out.append(f'<text x="{x0 + 18}" y="{ly - 3}" font-size="11">{escape(label)}</text>')
    return out


def svg_chart(result: BenchmarkResult) -> str:
    levels = sorted(result.levels, key=lambda lv: lv.concurrency)
    knee = find_knee(levels).concurrency
    service = result.service
    title = (
        f"{service.namespace}/{service.name}: {service.runtime.value}, stage {service.stage.value}, "
        f"{service.ready_replicas} pod(s); {result.settings.prompt_tokens} prompt / "
        f"{result.settings.output_tokens} output tokens; {result.finished_at:%Y-%m-%d %H:%M} UTC"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 40}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT + 40}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    parts += _panel(
        LEFT,
        "Throughput",
        "output tokens/s",
        levels,
        [("output tokens/s", COLORS["tokens"], [lv.output_tokens_per_second for lv in levels])],
        knee,
    )
    parts += _panel(
        LEFT + PANEL_W + GAP,
        "Latency",
        "ms",
        levels,
        [
            ("time to first token p50", COLORS["ttft50"], [lv.time_to_first_token_ms.p50 for lv in levels]),
            ("time to first token p99", COLORS["ttft99"], [lv.time_to_first_token_ms.p99 for lv in levels]),
            ("inter-token latency p50", COLORS["itl50"], [lv.inter_token_latency_ms.p50 for lv in levels]),
        ],
        knee,
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
