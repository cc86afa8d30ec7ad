"""Waiting for the API server before the operator starts: one log line per attempt, with the
cause, and a growing pause (1 s doubling to a minute), instead of kopf's retry of the whole
start-up every 60 s with a multi-kilobyte traceback.

    await wait_until_reachable(probe, log)     returns once probe() succeeds

`probe` is one GET /version without retries of its own; `cause(err)` is what the line says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from llmstage.controller.kube import ApiError

FIRST_DELAY = 1.0
MAX_DELAY = 60.0


def cause(err: BaseException) -> str:
    """Why a request failed, in one line: the connection error's own words (not its repr), or
    the API server's answer."""
    if isinstance(err, ApiError) and err.status == 0 and err.__cause__ is not None:
        inner = err.__cause__
        text = str(inner) or type(inner).__name__
    elif isinstance(err, ApiError):
        text = f"the API server answered {err.status} {err.reason}: {err.message}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


async def wait_until_reachable(
    probe: Callable[[], Awaitable[Any]],
    log: logging.Logger,
    server: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Call probe() until it succeeds; the number of failed attempts."""
    delay, failures = FIRST_DELAY, 0
    while True:
        try:
            await probe()
        except (ApiError, OSError, TimeoutError) as err:
            failures += 1
            log.warning(
                "cannot reach the API server %s (attempt %d): %s; retrying in %.0f s",
                server,
                failures,
                cause(err),
                delay,
            )
            await sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        if failures:
            log.info("the API server %s answers after %d failed attempts", server, failures)
        return failures
