"""controller/kopfwatch.py: a watched kind whose CRD is deleted ends its stream quietly instead of
stopping the operator (kopf treats any watcher error as fatal)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import watching
from kopf._cogs.clients.errors import APIForbiddenError, APINotFoundError
from llmstage.controller import kopfwatch


def source(error: Exception | None) -> Any:
    async def continuous_watch(**kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "ADDED", "object": {"metadata": {"name": "chat"}}}
        if error is not None:
            raise error

    return continuous_watch


async def drain(gen: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in gen]


def test_a_404_ends_the_stream_after_a_pause_and_keeps_what_came_before() -> None:
    watch = kopfwatch.tolerant(
        source(APINotFoundError("404 page not found", status=404, headers={})), pause=0.01
    )
    events = asyncio.run(drain(watch(resource="scaledobjects", namespace="team")))
    assert events == [{"type": "ADDED", "object": {"metadata": {"name": "chat"}}}]


def test_other_errors_stay_kopfs_to_handle() -> None:
    watch = kopfwatch.tolerant(source(APIForbiddenError("forbidden", status=403, headers={})), pause=0.01)
    with pytest.raises(APIForbiddenError):
        asyncio.run(drain(watch(resource="scaledobjects", namespace="team")))


def test_kopf_reconnects_through_the_wrapped_name() -> None:
    """If a kopf upgrade stops calling continuous_watch by its module name, this fails."""
    assert "continuous_watch(" in inspect.getsource(watching.infinite_watch)
    original = watching.continuous_watch
    try:
        kopfwatch.tolerate_vanished_kinds()
        kopfwatch.tolerate_vanished_kinds()  # idempotent: wrapped once
        wrapped = watching.continuous_watch
        assert wrapped.__name__ == "continuous_watch_tolerating_404"
        assert wrapped is not original
    finally:
        setattr(watching, "continuous_watch", original)  # noqa: B010
