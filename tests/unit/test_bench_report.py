"""bench/report.py: the per-service counts (P1c, P1u) from a results file's fields."""

from __future__ import annotations

from typing import Any

from bench.report import per_service, verdicts


def size(
    n: int, writes: dict[str, int], cpu: float, reconciles: float, floor: float = 10.0, seconds: float = 11.0
) -> dict[str, Any]:
    return {
        "floor": {"seconds": floor},
        "operator": {"seconds": seconds, "extra": {"cpu": {"operator": cpu}, "writes": writes}},
        "ratio": seconds / floor,
        "operator_metrics_at_convergence": {
            "llmstage_reconciles_total": reconciles,
            "llmstage_watch_events_total": 12 * n,
            "llmstage_renders_total": n,
        },
    }


WRITES_100 = {
    "llmstage patch deployments": 100,
    "llmstage patch services": 100,
    "llmstage patch persistentvolumeclaims": 100,
    "llmstage patch llmservices/status": 250,
    "llmstage create events": 150,
    "kube-controller-manager create pods": 100,  # not the operator's
    "kopf patch llmservices": 0,
}


def test_counts_are_the_operators_writes_and_cpu_per_service() -> None:
    counts = per_service(size(100, WRITES_100, cpu=2.5, reconciles=450), 100)
    assert counts["writes"] == 7.0 and counts["applies"] == 3.0
    assert counts["status"] == 2.5 and counts["events"] == 1.5
    assert counts["reconciles"] == 4.5 and counts["cpu_ms"] == 25.0
    assert counts["watch_events"] == 12.0 and counts["renders"] == 1.0


def test_verdicts_print_both_sizes_and_the_flatness_of_cpu_per_service() -> None:
    result = {
        "sizes": {
            "100": size(100, WRITES_100, cpu=2.5, reconciles=450),
            "1000": size(1000, {k: v * 10 for k, v in WRITES_100.items()}, cpu=40.0, reconciles=5000),
        },
        "machine": {"cpus": 2, "cpu_model": "x", "memory_mib": 1, "loadavg_at_start": [0.1]},
    }
    rows = {(r[0], r[1].split(":")[0]): r for r in verdicts(result)}
    assert rows[("P1c", "N=100")][2:] == ("7.00", "<= 6", "NO")
    assert rows[("P1u", "N=1000")][2:] == ("40.0 ms", "<= 30 ms", "NO")
    flat = next(r for r in verdicts(result) if r[1].startswith("CPU per service N=1000 / N=100"))
    assert flat[2:] == ("1.60x", "<= 1.2x", "NO")


def test_p1_and_p5_are_judged_against_issue_16s_targets() -> None:
    result = {
        "sizes": {
            "100": size(100, WRITES_100, cpu=2.5, reconciles=450, floor=20.0, seconds=22.0),
            "1000": size(1000, WRITES_100, cpu=25.0, reconciles=4500, floor=300.0, seconds=345.0),
        },
        "machine": {"cpus": 2, "cpu_model": "x", "memory_mib": 1, "loadavg_at_start": [0.1]},
    }
    rows = verdicts(result)
    p1 = next(r for r in rows if r[0] == "P1" and r[1].startswith("N=1000"))
    assert p1[2:] == ("1.15", "<= 1.10", "NO")
    # The operator grew 15.7x while the floor grew 15.0x: worse than the floor, so not met.
    p5 = next(r for r in rows if r[0] == "P5")
    assert p5[2:] == ("15.7x", "<= 15.0x", "NO")


def test_p4_is_printed_for_both_sizes_and_judged_at_n_1000() -> None:
    small = size(100, WRITES_100, cpu=2.5, reconciles=450)
    small["memory_at_convergence_mib"] = {"VmHWM": 80.0, "VmRSS": 79.0}
    big = size(1000, WRITES_100, cpu=25.0, reconciles=4500)
    big["memory_at_convergence_mib"] = {"VmHWM": 90.0, "VmRSS": 90.0}
    big["memory_mib"] = {"VmHWM": 100.0, "VmRSS": 99.0}  # after P2 and P3: the one judged
    result = {"sizes": {"100": small, "1000": big}}
    p4 = [r for r in verdicts(result) if r[0] == "P4"]
    assert [r[1] for r in p4] == ["N=100: operator peak RSS", "N=1000: operator peak RSS"]
    assert p4[0][2:] == ("84 MB", "(info)", "")
    assert p4[1][2:] == ("105 MB", "<= 100 MB", "NO")
