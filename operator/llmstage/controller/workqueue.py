"""A coalescing work queue: level-based reconciliation on top of kopf's watch events.

Every event about an LLMService or one of its children only marks the service dirty. One worker
per key at a time runs the reconciler; events that arrive meanwhile collapse into one more run.
So a burst of 50 child events costs one or two reconciles, and two reconciles of the same
service never race each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# Returns seconds until it wants to run again (bounded waits), or None.
Handler = Callable[[K], Awaitable[float | None]]


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handler: Handler[K],
        *,
        concurrency: int = 32,
        max_backoff: float = 300.0,
        expected_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._handler = handler
        # Errors that need a retry but no traceback in the log (e.g. API errors after retries).
        self._expected_errors = expected_errors
        self._slots = asyncio.Semaphore(concurrency)
        self._max_backoff = max_backoff
        self._dirty: set[K] = set()
        self._running: dict[K, asyncio.Task[None]] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, key: K, delay: float = 0.0) -> None:
        """Mark `key` dirty now, or after `delay` seconds (an earlier add wins over a later one)."""
        loop = asyncio.get_running_loop()
        if delay > 0:
            when = loop.time() + delay
            timer = self._timers.get(key)
            if timer is not None and timer.when() <= when:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_at(when, self._fire, key)
            return
        self._dirty.add(key)
        if key not in self._running:
            self._idle.clear()
            self._running[key] = loop.create_task(self._work(key), name=f"reconcile {key}")

    def forget(self, key: K) -> None:
        """The object is gone: drop timers and backoff state (a running pass finishes)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _work(self, key: K) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                async with self._slots:
                    try:
                        requeue = await self._handler(key)
                    except asyncio.CancelledError:
                        raise
                    except Exception as err:
                        failures = self._failures.get(key, 0) + 1
                        self._failures[key] = failures
                        delay = min(0.5 * 2 ** (failures - 1), self._max_backoff)
                        # An API server that is away or overloaded is news, not a bug: one line.
                        expected = isinstance(err, self._expected_errors)
                        log.log(
                            logging.WARNING if expected else logging.ERROR,
                            "reconcile of %s failed (attempt %d): %s; retrying in %.1fs",
                            key,
                            failures,
                            err,
                            delay,
                            exc_info=not expected,
                        )
                        self.add(key, delay)
                        continue
                self._failures.pop(key, None)
                if requeue is not None:
                    self.add(key, requeue)
        finally:
            self._running.pop(key, None)
            if not self._running:
                self._idle.set()

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until no reconcile runs (timers may still be pending)."""
        await self._idle.wait()

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
