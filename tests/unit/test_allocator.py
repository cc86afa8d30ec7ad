"""controller/allocator.py: freed memory goes back to the system after activity, never while idle."""

from __future__ import annotations

import asyncio
import ctypes

import pytest
from llmstage.controller import allocator


def test_trims_once_per_interval_with_activity_and_not_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def malloc_trim(pad: int) -> int:
        calls.append(pad)
        return 1

    monkeypatch.setattr(allocator, "_malloc_trim", lambda: malloc_trim)
    values = [0, 5, 5, 9, 9, 9]  # the first value is read at start

    class Done(Exception):
        pass

    def activity() -> int:
        if not values:
            raise Done
        return values.pop(0)

    async def scenario() -> None:
        with pytest.raises(Done):
            await allocator.trim_after_activity(activity, interval=0.001)

    asyncio.run(scenario())
    assert calls == [0, 0]  # after 0 -> 5 and 5 -> 9; the repeated values are idle looks


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_malloc_trim", lambda: None)
    asyncio.run(asyncio.wait_for(allocator.trim_after_activity(lambda: 1, interval=0.001), 5))


def test_this_glibc_has_malloc_trim() -> None:
    """The image is Debian (glibc), as is this test bed: the trim must be found there."""
    if not hasattr(ctypes.CDLL(None), "malloc_trim"):
        pytest.skip("not glibc")
    assert allocator._malloc_trim() is not None
