"""The benchmark's report: results files in bench/results/ and the table of figures beside their
targets (P1-P5 here, P7-P8 from bench/realnode.py). `python -m bench.run --report FILE` prints
the table of an earlier run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import realnode

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

TARGETS = {
    "P1": ("convergence / write floor at N=1000", "<= 1.25"),
    "P2": ("operator writes in a quiet cluster", "0"),
    "P3": ("p50 apply -> children present", "<= 300 ms"),
    "P4": ("operator peak RSS at N=1000", "<= 120 MB"),
    "P5": ("convergence N=1000 / N=100", "<= 11x"),
}


def write_results(result: dict[str, Any], stamp: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def verdicts(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(id, what, figure, target, met) rows of the summary table."""
    sizes = {int(k): v for k, v in result["sizes"].items()}
    big = max(sizes)
    rows = []
    for n, s in sorted(sizes.items()):
        if "operator" in s:
            rows.append(
                (
                    "P1",
                    f"N={n}: operator {s['operator']['seconds']:.1f} s / floor {s['floor']['seconds']:.1f} s"
                    + (f" (median of {len(s['repeats'])})" if len(s.get("repeats", [])) > 1 else ""),
                    f"{s['ratio']:.2f}",
                    "<= 1.25" if n == 1000 else "(info)",
                    ("yes" if s["ratio"] <= 1.25 else "NO") if n == 1000 else "",
                )
            )
    s = sizes[big]
    if "idle" in s:
        w = s["idle"]["writes"]
        rows.append(
            (
                "P2",
                f"writes in {s['idle']['seconds']:.0f} s idle (N={big})",
                str(w),
                "0",
                "yes" if w == 0 else "NO",
            )
        )
    if "latency" in s:
        lat = s["latency"]
        c50, c95 = lat["children_ms"]["p50"], lat["children_ms"]["p95"]
        r50, r95 = lat["ready_ms"]["p50"], lat["ready_ms"]["p95"]
        rows.append(
            (
                "P3",
                "apply -> children present p50 / p95",
                f"{c50:.0f} / {c95:.0f} ms",
                "p50 <= 300 ms",
                "yes" if c50 <= 300 else "NO",
            )
        )
        rows.append(("P3", "apply -> Ready p50 / p95", f"{r50:.0f} / {r95:.0f} ms", "(info)", ""))
    if s.get("memory_mib"):
        hwm = s["memory_mib"]["VmHWM"] * 1.048576  # MiB -> MB
        rows.append(
            (
                "P4",
                f"operator peak RSS at N={big}",
                f"{hwm:.0f} MB",
                "<= 120 MB" if big == 1000 else "(info)",
                ("yes" if hwm <= 120 else "NO") if big == 1000 else "",
            )
        )
    if 100 in sizes and big > 100 and "operator" in sizes[100]:
        growth = sizes[big]["operator"]["seconds"] / sizes[100]["operator"]["seconds"]
        target = 11 * big / 1000
        rows.append(
            (
                "P5",
                f"convergence N={big} / N=100",
                f"{growth:.1f}x",
                f"<= {target:g}x",
                "yes" if growth <= target else "NO",
            )
        )
        if "floor" in sizes[big] and "floor" in sizes[100]:
            # The test bed's own growth, for context: the part of P5 the operator does not control.
            floor_growth = sizes[big]["floor"]["seconds"] / sizes[100]["floor"]["seconds"]
            rows.append(("P5", f"write floor N={big} / N=100", f"{floor_growth:.1f}x", "(info)", ""))
    rows += realnode.verdicts(result.get("realnode") or {})
    return rows


def table(result: dict[str, Any]) -> str:
    rows = [("", "measure", "figure", "target", "met"), *verdicts(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    m = result["machine"]
    load = m["loadavg_at_start"][0]
    busy = "; the machine was busy before the run, so figures are noisy" if load > 1.0 else ""
    lines.append(
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_mib']} MiB, load at start {load:.1f}{busy}"
    )
    return "\n".join(lines)
