"""Fault tolerance, CI-sized (the long versions are in tests/soak, `make soak`):

- the operator SIGKILLed at random points while services converge, restarted each time;
- fuzzed specs (hypothesis, from the CRD schema of the pydantic models) against the real API
  server with the operator running;
- concurrent spec updates while other services are promoted.

Each test has its own namespace (outside this session's prefix, so the session's operator stays
out), its own `llmstage run` and kwok nodes that only its pods may use. The scenarios themselves
are in bench/scenarios.py, shared with the soak.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bench import scenarios
from testkit.check import condition

KILL_SERVICES, KILLS = 30, 5
FUZZ_EXAMPLES = 50
UPDATED, PROMOTED = 20, 4  # `make soak`: 50 and 10


@pytest.fixture(scope="module")
def run_id() -> Iterator[str]:
    """kwok nodes for this module's pods (3 CPU nodes, 4 nodes with 8 fake H100s each)."""
    with scenarios.extra_nodes(cpu_pods=200, gpus=24) as rid:
        yield rid


@pytest.fixture
def bed(
    api_client: client.ApiClient,
    namespace_prefix: str,
    run_id: str,
    crd_installed: None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[scenarios.Bed]:
    # "r" instead of the session's "t": the session-wide operator (namespace_prefix*) must not
    # reconcile these namespaces too.
    base = request.node.name[5:25].replace("_", "-").strip("-")
    name = f"r{namespace_prefix[1:]}{base}-{uuid.uuid4().hex[:4]}"
    with scenarios.bed_in_new_namespace(api_client, name, run_id, tmp_path) as b:
        yield b


def test_killed_operator_converges_without_duplicate_or_orphaned_children(bed: scenarios.Bed) -> None:
    result = scenarios.kill_during_convergence(bed, KILL_SERVICES, KILLS, seed=7)
    problems = bed.problems()
    assert not problems, f"after {KILLS} kills at {result['kills_at_seconds']}s: {problems.summary()}"
    for svc in bed.services():  # no stuck status
        reconciling, stalled = condition(svc, "Reconciling"), condition(svc, "Stalled")
        assert reconciling and reconciling["status"] == "False", scenarios.brief_status(svc)
        assert stalled and stalled["status"] == "False", scenarios.brief_status(svc)
    assert bed.drift() == []


def test_fuzzed_specs_are_rejected_naming_the_field_or_end_ready_or_stalled(bed: scenarios.Bed) -> None:
    counts = scenarios.fuzz(bed, FUZZ_EXAMPLES, settle_timeout=150)
    print(f"\nfuzz outcomes: {counts}")


def test_concurrent_updates_and_promotions_end_as_the_specs_say(bed: scenarios.Bed) -> None:
    scenarios.concurrent_updates_and_promotions(bed, UPDATED, PROMOTED)
