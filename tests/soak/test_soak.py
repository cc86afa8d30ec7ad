"""The long reliability runs (`make soak`; docs/reliability.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import scenarios
from testkit.check import condition

REPO = Path(__file__).resolve().parents[2]


def test_200_services_survive_20_operator_kills(soak_bed: scenarios.Bed) -> None:
    result = scenarios.kill_during_convergence(soak_bed, services=200, kills=20, seed=20)
    problems = soak_bed.problems()
    assert not problems, f"after kills at {result['kills_at_seconds']}s: {problems.summary()}"
    for svc in soak_bed.services():
        reconciling = condition(svc, "Reconciling")
        assert reconciling and reconciling["status"] == "False", scenarios.brief_status(svc)
    assert soak_bed.drift() == []
    print(f"\n20 kills: {result}")


def test_operator_reconnects_after_an_apiserver_restart_mid_convergence(soak_bed: scenarios.Bed) -> None:
    soak_bed.start_operator()
    first = {f"a-{i:03d}": soak_bed.spec(i) for i in range(100)}
    scenarios.create_many(soak_bed, first)
    time.sleep(5)  # mid-convergence
    restart = subprocess.run(
        [sys.executable, str(REPO / "hack" / "cluster.py"), "restart-apiserver"],
        capture_output=True,
        text=True,
    )
    assert restart.returncode == 0, restart.stdout + restart.stderr
    # Created after the restart: only re-established watches see these.
    second = {f"b-{i:03d}": soak_bed.spec(i) for i in range(20)}
    scenarios.create_many(soak_bed, second)
    soak_bed.wait([*first, *second], timeout=600)
    assert soak_bed.operator is not None and soak_bed.operator.alive()
    problems = soak_bed.problems()
    assert not problems, problems.summary()


def test_500_fuzzed_specs(soak_bed: scenarios.Bed) -> None:
    counts = scenarios.fuzz(soak_bed, 500, settle_timeout=900)
    print(f"\nfuzz outcomes: {counts}")


def test_50_updates_while_10_promotions(soak_bed: scenarios.Bed) -> None:
    scenarios.concurrent_updates_and_promotions(soak_bed, 50, 10)
