"""The coalescing work queue behind level-based reconciliation."""

from __future__ import annotations

import asyncio
import logging

import pytest
from llmstage.controller.workqueue import WorkQueue


def test_events_during_a_run_coalesce_into_one_more_run() -> None:
    async def scenario() -> list[str]:
        calls: list[str] = []
        gate = asyncio.Event()

        async def handler(key: str) -> None:
            calls.append(key)
            if len(calls) == 1:
                await gate.wait()

        q: WorkQueue[str] = WorkQueue(handler)
        q.add("a")
        await asyncio.sleep(0)
        for _ in range(10):  # a burst while the first run is in progress
            q.add("a")
        gate.set()
        await asyncio.sleep(0.05)
        await q.wait_idle()
        return calls

    assert asyncio.run(scenario()) == ["a", "a"]


def test_one_key_never_runs_twice_at_once_but_keys_run_in_parallel() -> None:
    async def scenario() -> tuple[int, set[str]]:
        running: set[str] = set()
        max_same = 0
        seen: set[str] = set()

        async def handler(key: str) -> None:
            nonlocal max_same
            assert key not in running
            running.add(key)
            seen.add(key)
            max_same = max(max_same, len(running))
            await asyncio.sleep(0.01)
            running.discard(key)

        q: WorkQueue[str] = WorkQueue(handler, concurrency=4)
        for i in range(20):
            q.add(f"k{i % 4}")
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        await q.wait_idle()
        return max_same, seen

    parallel, seen = asyncio.run(scenario())
    assert seen == {"k0", "k1", "k2", "k3"}
    assert parallel > 1


def test_a_failing_reconcile_is_retried_with_backoff_and_then_succeeds() -> None:
    async def scenario() -> int:
        attempts = 0

        async def handler(key: str) -> None:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise RuntimeError("API hiccup")

        q: WorkQueue[str] = WorkQueue(handler)
        q.add("a")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if attempts >= 3:
                break
        await q.wait_idle()
        await q.stop()
        return attempts

    assert asyncio.run(scenario()) == 3


def test_requested_requeue_runs_again_later() -> None:
    async def scenario() -> int:
        runs = 0

        async def handler(key: str) -> float | None:
            nonlocal runs
            runs += 1
            return 0.05 if runs == 1 else None

        q: WorkQueue[str] = WorkQueue(handler)
        q.add("a")
        await asyncio.sleep(0.2)
        await q.wait_idle()
        return runs

    assert asyncio.run(scenario()) == 2


def test_an_expected_error_is_retried_and_logged_in_one_line_other_errors_with_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unreachable(Exception):
        pass

    async def scenario() -> list[str]:
        calls: list[str] = []

        async def handler(key: str) -> None:
            calls.append(key)
            if len(calls) == 1:
                raise Unreachable("api server away")
            if len(calls) == 2:
                raise KeyError("a bug")

        q: WorkQueue[str] = WorkQueue(handler, expected_errors=(Unreachable,))
        q.add("a")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(calls) == 3:
                break
        await q.wait_idle()
        return calls

    with caplog.at_level(logging.WARNING, logger="llmstage.controller.workqueue"):
        assert asyncio.run(scenario()) == ["a", "a", "a"]
    expected, bug = caplog.records
    assert expected.levelno == logging.WARNING and not expected.exc_info
    assert "api server away" in expected.getMessage() and "attempt 1" in expected.getMessage()
    assert bug.levelno == logging.ERROR and bug.exc_info
