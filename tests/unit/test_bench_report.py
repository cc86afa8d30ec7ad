"""bench/report.py: the per-service counts of issue 16 (P1c, P1u) from a results file's fields."""

from __future__ import annotations

from typing import Any

from bench.report import per_service, verdicts


def size(n: int, writes: dict[str, int], cpu: float, reconciles: float) -> dict[str, Any]:
    return {
        "floor": {"seconds": 10.0},
        "operator": {"seconds": 11.0, "extra": {"cpu": {"operator": cpu}, "writes": writes}},
        "ratio": 1.1,
        "operator_metrics_at_convergence": {"llmstage_reconciles_total": reconciles},
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
