"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

One replica holds the Lease and reconciles; the others keep their watch caches warm and try to
take the Lease over every retry period. The rules are client-go's (and so controller-runtime's):

- a candidate takes the Lease when it is free (no holder) or expired: its record has not changed
  for `leaseDurationSeconds` of the candidate's own monotonic clock (no clock comparison across
  machines); every write carries the Lease's resourceVersion, so two candidates cannot both win;
- the leader renews every retry period; when no renewal succeeded for the renew deadline it
  steps down, and it may write only while `Leadership.may_write()`: until the renew deadline
  after the start of its last successful renewal. The renew deadline is shorter than the lease
  duration, so the fence closes (lease duration - renew deadline) before any candidate can
  take over, however long the leader was paused or cut off;
- on a clean stop the leader releases the Lease (empty holder, duration 1 s), so a rolling update
  hands over within a retry period instead of a lease duration.

What this adds to client-go: candidates also watch the Lease, so they see each renewal as it
happens rather than up to a retry period late; a killed leader is replaced about one lease
duration after its last renewal (15 s with the defaults) instead of up to two retry periods
later. And the fence is checked by the reconciler's HTTP client right before it sends each
write (`Kube(fence=...)`), not only before a batch.

Why not `kubernetes.aio.leaderelection` (kubernetes 37.0.2): a renewal request has no timeout, so
a hung request can outlive the lease with the old leader still leading; it logs a traceback for
every lost update race (a normal event for a standby); it never releases the Lease on shutdown;
and losing the lease cancels a task but does not stop writes already under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmstage.controller import metrics
from llmstage.controller.config import LeaderElection
from llmstage.controller.kube import KINDS, ApiError, Kube

log = logging.getLogger(__name__)

LEASE = KINDS[("coordination.k8s.io/v1", "Lease")]
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class NotLeaderError(Exception):
    """A write was about to be sent while this replica may not write (standby, or lease lost)."""


Callback = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class Campaign:
    """Who campaigns for which Lease, and what runs when it starts and when it stops leading."""

    lease: LeaderElection
    identity: str
    on_started: Callback
    on_stopped: Callback


class Leadership:
    """Whether this process may write now: the write fence every write passes through."""

    def __init__(self, *, elected: bool) -> None:
        # Without leader election the process always leads (one replica, the old behaviour).
        self.elected = elected
        self._valid_until = -math.inf if elected else math.inf

    def may_write(self) -> bool:
        return time.monotonic() < self._valid_until

    def check(self) -> None:
        if not self.may_write():
            raise NotLeaderError("not the leader (standby, or the lease could not be renewed in time)")

    def extend(self, until: float) -> None:
        self._valid_until = until

    def revoke(self) -> None:
        self._valid_until = -math.inf

    @property
    def valid_until(self) -> float:
        return self._valid_until


def _now() -> str:
    return datetime.now(UTC).strftime(MICRO_TIME)


@dataclass
class _Observed:
    """The last Lease record seen and when (monotonic), for the expiry rule."""

    holder: str
    renew_time: str | None
    duration: float
    resource_version: str
    at: float

    def expired(self, now: float) -> bool:
        return not self.holder or now >= self.at + self.duration


class LeaderElector:
    """Campaigns for the Lease `namespace/name` as `identity`; calls `on_started` when it becomes
    the leader and `on_stopped` when it stops being one. `run()` never returns on its own."""

    def __init__(self, kube: Kube, leadership: Leadership, campaign: Campaign) -> None:
        self.kube, self.leadership = kube, leadership
        lease = campaign.lease
        self.namespace, self.name, self.timing = lease.namespace, lease.name, lease.timing
        self.identity = campaign.identity
        self._on_started, self._on_stopped = campaign.on_started, campaign.on_stopped
        self._observed: _Observed | None = None
        self._changed = asyncio.Event()
        self.is_leader = False
        self.leader: str | None = None  # the holder last seen, for logs and /readyz

    # ---------------------------------------------------------------------------------- the loop
    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch(), name="lease watch")
        try:
            while True:
                try:
                    await self._acquire()
                    await self._lead()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug or a Lease nobody expected: stand by and try again
                    log.exception("leader election: unexpected error; standing by and retrying")
                    if self.is_leader:
                        await self._step_down("error")
                    await asyncio.sleep(self.timing.retry_period)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if self.is_leader:
                await self._step_down("stopping")

    async def _acquire(self) -> None:
        """As a candidate: try every retry period, and as soon as the observed record expires."""
        log.info(
            "leader election: %s is a candidate for lease %s/%s", self.identity, self.namespace, self.name
        )
        while True:
            if await self._attempt():
                return
            wait = self.timing.retry_period * (1 + 0.1 * random.random())
            if self._observed is not None and self._observed.holder:
                wait = min(
                    wait, max(self._observed.at + self._observed.duration - time.monotonic(), 0) + 0.05
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()

    async def _lead(self) -> None:
        self.is_leader = True
        metrics.LEADER.set(1)
        metrics.LEADER_TRANSITIONS.inc()
        log.info(
            "leader election: %s became the leader of lease %s/%s", self.identity, self.namespace, self.name
        )
        await _call(self._on_started)
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if not await self._renew():
                break
        # Cancelled (shutdown) instead: run() steps down.
        await self._step_down("lost the lease")

    async def _renew(self) -> bool:
        """Renew until it works or the fence closes; False when leadership is lost."""
        while True:
            remaining = self.leadership.valid_until - time.monotonic()
            if remaining <= 0:
                log.warning(
                    "leader election: %s could not renew lease %s/%s within the renew deadline (%.0fs)",
                    self.identity,
                    self.namespace,
                    self.name,
                    self.timing.renew_deadline,
                )
                return False
            if await self._attempt(timeout=remaining):
                return True
            if self._observed is not None and self._observed.holder not in ("", self.identity):
                log.warning(
                    "leader election: lease %s/%s is held by %s now",
                    self.namespace,
                    self.name,
                    self._observed.holder,
                )
                return False
            metrics.LEADER_RENEW_FAILURES.inc()
            await asyncio.sleep(min(self.timing.retry_period, max(remaining, 0)))

    async def _step_down(self, why: str) -> None:
        self.leadership.revoke()
        self.is_leader = False
        metrics.LEADER.set(0)
        level = logging.INFO if why == "stopping" else logging.WARNING
        log.log(level, "leader election: %s stopped leading (%s); writes stopped", self.identity, why)
        await _call(self._on_stopped)

    # ---------------------------------------------------------------------------- one attempt
    async def _attempt(self, timeout: float | None = None) -> bool:
        """client-go's tryAcquireOrRenew; errors and timeouts count as a failed attempt."""
        started = time.monotonic()
        budget = min(timeout if timeout is not None else math.inf, self.timing.renew_deadline)
        try:
            async with asyncio.timeout(budget):
                won = await self._try_acquire_or_renew()
        except (TimeoutError, ApiError) as err:
            log.debug("leader election: attempt failed: %s", err or "timed out")
            return False
        if won:
            # Writes are allowed for the renew deadline after the start of this attempt: the
            # record other candidates see is at least that fresh.
            self.leadership.extend(started + self.timing.renew_deadline)
        return won

    async def _try_acquire_or_renew(self) -> bool:
        now = _now()
        lease = await self.kube.get(LEASE, self.namespace, self.name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(acquire=now, renew=now, transitions=0),
            }
            try:
                created = await self.kube.create(LEASE, self.namespace, body)
            except ApiError as err:
                if err.status == 409:  # someone else created it first
                    return False
                raise
            self._observe(created)
            return True
        self._observe(lease)
        observed = self._observed
        assert observed is not None
        if observed.holder != self.identity and not observed.expired(time.monotonic()):
            return False
        spec = lease.get("spec") or {}
        mine = spec.get("holderIdentity") == self.identity
        lease["spec"] = self._spec(
            acquire=str(spec.get("acquireTime") or now) if mine else now,
            renew=now,
            transitions=int(spec.get("leaseTransitions") or 0) + (0 if mine else 1),
        )
        try:
            updated = await self.kube.replace(LEASE, self.namespace, self.name, lease)
        except ApiError as err:
            if err.status == 409:  # changed since our read: someone else renewed or took it
                return False
            raise
        self._observe(updated)
        return True

    def _spec(self, *, acquire: str, renew: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.timing.lease_duration)),
            "acquireTime": acquire,
            "renewTime": renew,
            "leaseTransitions": transitions,
        }

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renew = spec.get("renewTime")
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        rv = str(lease.get("metadata", {}).get("resourceVersion", ""))
        before = self._observed
        if before is None or (before.holder, before.renew_time, before.duration) != (holder, renew, duration):
            self._observed = _Observed(holder, renew, duration, rv, time.monotonic())
            if holder != self.leader:
                self.leader = holder or None
                if holder and holder != self.identity:
                    log.info("leader election: the leader is %s", holder)
            self._changed.set()
        else:
            before.resource_version = rv

    async def _watch(self) -> None:
        """Follow the Lease so that each renewal is seen when it happens (see the module doc)."""
        while True:
            try:
                async for event in self.kube.watch(
                    LEASE, self.namespace, field_selector=f"metadata.name={self.name}", timeout_seconds=240
                ):
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._observe(event["object"])
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the candidate loop polls anyway; the watch only speeds it up
                log.debug("leader election: lease watch ended: %r", err)
            await asyncio.sleep(self.timing.retry_period)

    # ----------------------------------------------------------------------------------- release
    async def release(self) -> None:
        """Hand the Lease back on a clean stop (client-go's ReleaseOnCancel): empty holder and a
        one-second duration, so a standby takes over at its next try. Only if still ours."""
        if not self.leadership.elected:
            return
        self.leadership.revoke()
        try:
            async with asyncio.timeout(self.timing.renew_deadline):
                lease = await self.kube.get(LEASE, self.namespace, self.name)
                spec = (lease or {}).get("spec") or {}
                if lease is None or spec.get("holderIdentity") != self.identity:
                    return
                now = _now()
                lease["spec"] = {
                    **spec,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "acquireTime": now,
                    "renewTime": now,
                }
                await self.kube.replace(LEASE, self.namespace, self.name, lease)
                log.info("leader election: %s released lease %s/%s", self.identity, self.namespace, self.name)
        except (TimeoutError, ApiError) as err:
            log.warning("leader election: could not release lease %s/%s: %s", self.namespace, self.name, err)


async def _call(fn: Callable[[], Awaitable[None] | None]) -> None:
    result = fn()
    if result is not None:
        await result


class ElectionThread:
    """A LeaderElector on its own event loop in its own thread, so that renewals never wait
    behind the reconciles on the operator's loop: on a busy loop (both cores loaded) renewals
    can miss the renew deadline and the leader steps down (docs/operator.md). A thread gets the
    interpreter every few milliseconds whatever the loop does (controller-runtime's elector is a
    goroutine for the same reason).

    `on_started` and `on_stopped` run on the operator's loop, and the elector waits for them:
    it cannot lead again before the work queue has finished stopping."""

    def __init__(
        self, connect: Callable[[], Awaitable[Kube]], leadership: Leadership, campaign: Campaign
    ) -> None:
        self._connect = connect
        self.leadership = leadership
        self.campaign = campaign
        self._operator_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.elector: LeaderElector | None = None

    def start(self) -> None:
        self._operator_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, name="leader-election", daemon=True)
        self._thread.start()

    async def stop(self, timeout: float = 30.0) -> None:
        """From the operator's loop: stop leading (the queue stops), release the Lease, end."""
        if self._thread is None:
            return
        await asyncio.to_thread(self._running.wait, timeout)
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self._thread.join, timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:
            log.exception("leader election: the election thread failed")
            self.leadership.revoke()
        finally:
            self._running.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        kube = await self._connect()
        try:
            # Both callbacks run on the operator's loop; the elector waits for them.
            on_loop = dataclasses.replace(self.campaign, on_started=self._started, on_stopped=self._stopped)
            self.elector = LeaderElector(kube, self.leadership, on_loop)
            task = asyncio.create_task(self.elector.run(), name="leader election")
            self._running.set()
            await self._stopping.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.elector.release()
        finally:
            await kube.close()

    async def _on_operator_loop(self, fn: Callable[[], Awaitable[None] | None]) -> None:
        assert self._operator_loop is not None
        try:
            future = asyncio.run_coroutine_threadsafe(_call(fn), self._operator_loop)
        except RuntimeError:  # the operator's loop is gone: nothing left to start or stop
            return
        await asyncio.wrap_future(future)

    async def _started(self) -> None:
        await self._on_operator_loop(self.campaign.on_started)

    async def _stopped(self) -> None:
        await self._on_operator_loop(self.campaign.on_stopped)


def describe(elector: LeaderElector) -> dict[str, Any]:
    """For /readyz and /healthz."""
    return {
        "leaderElection": True,
        "leader": elector.is_leader,
        "identity": elector.identity,
        "holder": elector.leader,
        "lease": f"{elector.namespace}/{elector.name}",
    }


def lease_name_for(namespaces: list[str] | None) -> str:
    """The default Lease name: one per watch scope, so operators watching different namespaces
    (test sessions, teams) do not wait for each other, and two replicas of one do."""
    if not namespaces:
        return "llmstage"
    import hashlib

    digest = hashlib.sha256(json.dumps(sorted(namespaces)).encode()).hexdigest()[:10]
    return f"llmstage-{digest}"
