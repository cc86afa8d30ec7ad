"""A coalescing work queue: level-based reconciliation on top of kopf's watch events.

Every event about an LLMService or one of its children only marks the service dirty. One worker
per key at a time runs the reconciler; events that arrive meanwhile collapse into one more run.
So a burst of 50 child events costs one or two reconciles, and two reconciles of the same
service never race each other.

Only the leader works: a standby's queue is inactive and ignores events (its watch cache stays
warm). `activate(keys)` starts it with every known key, `deactivate()` cancels what runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

from llmstage.controller import metrics
from llmstage.controller.config import DEFAULT_CONCURRENCY

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# Returns seconds until it wants to run again (bounded waits), or None.
Handler = Callable[[K], Awaitable[float | None]]


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handler: Handler[K],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_backoff: float = 300.0,
        expected_errors: tuple[type[Exception], ...] = (),
        abandon_errors: tuple[type[Exception], ...] = (),
        active: bool = True,
    ) -> None:
        self._handler = handler
        # Errors that need a retry but no traceback in the log (e.g. API errors after retries).
        self._expected_errors = expected_errors
        # Errors that end the pass without a retry (the replica lost its lease: the new leader
        # reconciles everything).
        self._abandon_errors = abandon_errors
        self.active = active
        # When each key waiting for a worker was marked dirty (depth and queue latency).
        self._enqueued: dict[K, float] = {}
        self.in_flight = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._max_backoff = max_backoff
        self._dirty: set[K] = set()
        self._running: dict[K, asyncio.Task[None]] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def depth(self) -> int:
        """Keys waiting for a reconcile to start (not counting delayed retries)."""
        return len(self._enqueued)

    def add(self, key: K, delay: float = 0.0) -> None:
        """Mark `key` dirty now, or after `delay` seconds (an earlier add wins over a later one)."""
        if not self.active:
            return
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
        self._enqueued.setdefault(key, time.monotonic())
        if key not in self._running:
            self._idle.clear()
            self._running[key] = loop.create_task(self._work(key), name=f"reconcile {key}")

    def forget(self, key: K) -> None:
        """The object is gone: drop timers and backoff state (a running pass finishes)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def activate(self, keys: Iterable[K]) -> None:
        """Start working (this replica became the leader): every key once, then as events say."""
        self.active = True
        for key in keys:
            self.add(key)

    async def deactivate(self) -> None:
        """Stop working (this replica is no longer the leader): cancel timers and running passes
        and forget what was dirty; the next leader starts from the whole cache again."""
        self.active = False
        await self.stop()
        self._dirty.clear()
        self._enqueued.clear()
        self._failures.clear()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _work(self, key: K) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                async with self._slots:
                    enqueued = self._enqueued.pop(key, None)
                    if enqueued is not None:
                        metrics.QUEUE_SECONDS.observe(time.monotonic() - enqueued)
                    self.in_flight += 1
                    try:
                        requeue = await self._handler(key)
                    except asyncio.CancelledError:
                        raise
                    except self._abandon_errors as err:
                        # No retry count and no backoff; once deactivated the add is a no-op.
                        log.info("reconcile of %s stopped: %s", key, err)
                        self._dirty.discard(key)
                        self._enqueued.pop(key, None)
                        self.add(key, 1.0)
                        continue
                    except Exception as err:
                        metrics.RETRIES.inc()
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
                    finally:
                        self.in_flight -= 1
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
        # A task cancelled before it ever ran never reaches its `finally`: without this its key
        # would stay "running" and every later add() of it would be ignored (found under a CPU
        # hog, where a replica lost and regained its lease while tasks were just created).
        for key, task in list(self._running.items()):
            if task in tasks:
                del self._running[key]
        if not self._running:
            self._idle.set()
