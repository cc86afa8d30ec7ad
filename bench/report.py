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
    "P1": ("convergence / write floor at N=1000", "<= 1.10"),
    "P1c": ("operator writes per converged service (applies + status + Events)", "<= 6"),
    "P1u": ("operator CPU per service; N=1000 within 1.2x of N=100", "<= 30 ms"),
    "P2": ("operator writes in a quiet cluster", "0"),
    "P3": ("p50 apply -> children present", "<= 300 ms"),
    "P4": ("operator peak RSS at N=100 and N=1000", "<= 100 MB at N=1000"),
    "P5": ("convergence N=1000 / N=100, beside the write floor's growth in the same run", "<= floor's"),
}
# Clients whose writes are the operator's in the audit log (user agents llmstage/..., kopf/...).
OPERATOR_AGENTS = ("llmstage", "kopf")


def per_service(size: dict[str, Any], n: int) -> dict[str, float]:
    """Counts per converged service, which a noisy clock does not move: the operator's
    writes by kind from the audit log, its reconciles and CPU from its own metrics and /proc."""
    writes = (size["operator"].get("extra") or {}).get("writes") or {}
    ours = {k: v for k, v in writes.items() if k.split(" ", 1)[0] in OPERATOR_AGENTS}
    status = sum(v for k, v in ours.items() if k.endswith("/status"))
    events = sum(v for k, v in ours.items() if k.endswith(" events"))
    cpu = ((size["operator"].get("extra") or {}).get("cpu") or {}).get("operator")
    metrics = size.get("operator_metrics_at_convergence") or {}
    return {
        "writes": sum(ours.values()) / n,
        "applies": (sum(ours.values()) - status - events) / n,
        "status": status / n,
        "events": events / n,
        "reconciles": metrics.get("llmstage_reconciles_total", 0) / n,
        "watch_events": metrics.get("llmstage_watch_events_total", 0) / n,
        "renders": metrics.get("llmstage_renders_total", 0) / n,
        "cpu_ms": cpu * 1000 / n if cpu is not None else float("nan"),
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
                    "<= 1.10" if n == 1000 else "(info)",
                    ("yes" if s["ratio"] <= 1.10 else "NO") if n == 1000 else "",
                )
            )
    counted = {n: per_service(s, n) for n, s in sorted(sizes.items()) if "operator" in s}
    for n, c in counted.items():
        rows.append(
            (
                "P1c",
                f"N={n}: writes per service ({c['applies']:.2f} applies, {c['status']:.2f} status, "
                f"{c['events']:.2f} Events)",
                f"{c['writes']:.2f}",
                "<= 6",
                "yes" if c["writes"] <= 6 else "NO",
            )
        )
        rows.append(
            (
                "P1u",
                f"N={n}: operator CPU per service ({c['reconciles']:.1f} reconciles, "
                f"{c['watch_events']:.1f} watch events, {c['renders']:.1f} renders per service)",
                f"{c['cpu_ms']:.1f} ms",
                "<= 30 ms",
                "yes" if c["cpu_ms"] <= 30 else "NO",
            )
        )
    if 100 in counted and big > 100 and big in counted:
        flat = counted[big]["cpu_ms"] / counted[100]["cpu_ms"]
        rows.append(
            (
                "P1u",
                f"CPU per service N={big} / N=100",
                f"{flat:.2f}x",
                "<= 1.2x",
                "yes" if flat <= 1.2 else "NO",
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
    for n, size in sorted(sizes.items()):
        # The largest size is read after P2 and P3 too (memory_mib); smaller ones at convergence.
        memory = (size.get("memory_mib") if n == big else None) or size.get("memory_at_convergence_mib")
        if memory:
            hwm = memory["VmHWM"] * 1.048576  # MiB -> MB
            rows.append(
                (
                    "P4",
                    f"N={n}: operator peak RSS",
                    f"{hwm:.0f} MB",
                    "<= 100 MB" if n == 1000 else "(info)",
                    ("yes" if hwm <= 100 else "NO") if n == 1000 else "",
                )
            )
    if 100 in sizes and big > 100 and "operator" in sizes[100]:
        growth = sizes[big]["operator"]["seconds"] / sizes[100]["operator"]["seconds"]
        if "floor" in sizes[big] and "floor" in sizes[100]:
            # The operator may grow no faster than the test bed's own cost does.
            floor_growth = sizes[big]["floor"]["seconds"] / sizes[100]["floor"]["seconds"]
            rows.append(
                (
                    "P5",
                    f"convergence N={big} / N=100 (write floor: {floor_growth:.1f}x)",
                    f"{growth:.1f}x",
                    f"<= {floor_growth:.1f}x",
                    "yes" if growth <= floor_growth else "NO",
                )
            )
        else:
            rows.append(("P5", f"convergence N={big} / N=100", f"{growth:.1f}x", "(info)", ""))
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
