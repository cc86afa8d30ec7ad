"""Leader election (llmstage.controller.leader) against an in-memory Lease API with the API
server's rules (resourceVersion preconditions, 409 on a stale write), with short timings.

What must hold: one leader at a time; a candidate takes over a dead leader's lease only after
the lease duration; a leader that cannot renew closes its write fence at the renew deadline,
before anyone else can take over; a released lease is taken over at once; and the HTTP client
refuses a write while the fence is closed before sending a byte."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from llmstage.controller.config import LeaderElection, Timing
from llmstage.controller.kube import ApiError, Kube
from llmstage.controller.leader import Campaign, LeaderElector, Leadership, NotLeaderError, lease_name_for

# Whole seconds: a Lease records its duration in seconds.
FAST = Timing(lease_duration=2.0, renew_deadline=1.0, retry_period=0.2)


class FakeLeases:
    """The API server's Lease semantics, for one namespace, shared by every elector."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.history: list[tuple[float, str]] = []  # (when, holder) of every successful write
        self.changed = asyncio.Condition()

    async def _bump(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        lease["metadata"]["resourceVersion"] = str(self.rv)
        self.leases[lease["metadata"]["name"]] = lease
        self.history.append((time.monotonic(), lease["spec"].get("holderIdentity", "")))
        async with self.changed:
            self.changed.notify_all()
        return copy.deepcopy(lease)


class FakeKube:
    """One replica's view of FakeLeases; `down` makes every call hang (a partitioned replica)."""

    def __init__(self, api: FakeLeases) -> None:
        self.api, self.down = api, False

    async def _gate(self) -> None:
        if self.down:
            await asyncio.sleep(3600)

    async def get(self, kind: Any, namespace: str | None, name: str) -> dict[str, Any] | None:
        await self._gate()
        lease = self.api.leases.get(name)
        return copy.deepcopy(lease) if lease else None

    async def create(self, kind: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        await self._gate()
        if obj["metadata"]["name"] in self.api.leases:
            raise ApiError(409, "AlreadyExists", "exists")
        return await self.api._bump(copy.deepcopy(obj))

    async def replace(
        self, kind: Any, namespace: str | None, name: str, obj: dict[str, Any]
    ) -> dict[str, Any]:
        await self._gate()
        current = self.api.leases.get(name)
        if current is None or current["metadata"]["resourceVersion"] != obj["metadata"].get(
            "resourceVersion"
        ):
            raise ApiError(409, "Conflict", "the object has been modified")
        return await self.api._bump(copy.deepcopy(obj))

    async def watch(self, kind: Any, namespace: str | None, **_: Any) -> AsyncIterator[dict[str, Any]]:
        await self._gate()
        seen = None
        while True:
            lease = self.api.leases.get("lease")
            if lease is not None and lease["metadata"]["resourceVersion"] != seen:
                seen = lease["metadata"]["resourceVersion"]
                yield {"type": "MODIFIED", "object": copy.deepcopy(lease)}
            async with self.api.changed:
                await self.api.changed.wait()


class Replica:
    def __init__(self, api: FakeLeases, identity: str) -> None:
        self.kube = FakeKube(api)
        self.leadership = Leadership(elected=True)
        self.started: list[float] = []
        self.stopped: list[float] = []
        self.elector = LeaderElector(
            self.kube,  # type: ignore[arg-type]
            self.leadership,
            Campaign(
                LeaderElection("ops", "lease", FAST),
                identity,
                on_started=lambda: self.started.append(time.monotonic()),
                on_stopped=lambda: self.stopped.append(time.monotonic()),
            ),
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.elector.run())
        return self

    async def kill(self) -> None:
        """Like SIGKILL: gone, without releasing anything."""
        assert self.task is not None
        self.kube.down = True
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def wait_for(check: Any, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)
    return time.monotonic()


def test_one_leader_and_a_dead_leader_is_replaced_after_the_lease_duration() -> None:
    async def scenario() -> None:
        api = FakeLeases()
        a = Replica(api, "a").start()
        await wait_for(lambda: a.elector.is_leader)
        b = Replica(api, "b").start()
        await asyncio.sleep(1.0)
        assert a.elector.is_leader and not b.elector.is_leader
        assert a.leadership.may_write() and not b.leadership.may_write()
        last_renewal = api.history[-1][0]
        await a.kill()
        took_over = await wait_for(lambda: b.elector.is_leader)
        # Not before the lease expired (counted from when b saw the last renewal), and soon after.
        assert FAST.lease_duration <= took_over - last_renewal < FAST.lease_duration + 0.5
        assert b.leadership.may_write() and b.started
        lease = api.leases["lease"]["spec"]
        assert lease["holderIdentity"] == "b" and lease["leaseTransitions"] == 1
        await b.kill()

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_stops_writing_before_anyone_can_take_over() -> None:
    async def scenario() -> None:
        api = FakeLeases()
        a = Replica(api, "a").start()
        await wait_for(lambda: a.elector.is_leader)
        b = Replica(api, "b").start()
        await asyncio.sleep(0.5)
        last_renewal = api.history[-1][0]
        a.kube.down = True  # partitioned: every request hangs, the process goes on
        fence_closed = await wait_for(lambda: not a.leadership.may_write())
        took_over = await wait_for(lambda: b.elector.is_leader)
        assert fence_closed - last_renewal <= FAST.renew_deadline + 0.05
        # The margin client-go keeps: lease duration - renew deadline.
        assert took_over - fence_closed >= FAST.lease_duration - FAST.renew_deadline - 0.25
        await wait_for(lambda: bool(a.stopped))
        assert not a.elector.is_leader
        with pytest.raises(NotLeaderError):
            a.leadership.check()
        # Back on the network, a is a candidate again and does not take the lease from b.
        a.kube.down = False
        await asyncio.sleep(1.0)
        assert b.elector.is_leader and not a.elector.is_leader
        holders = {h for _, h in api.history[-3:]}
        assert holders == {"b"}
        await a.kill()
        await b.kill()

    asyncio.run(scenario())


def test_a_released_lease_is_taken_over_within_a_retry_period() -> None:
    async def scenario() -> None:
        api = FakeLeases()
        a = Replica(api, "a").start()
        await wait_for(lambda: a.elector.is_leader)
        b = Replica(api, "b").start()
        await asyncio.sleep(0.5)
        assert a.task is not None
        a.task.cancel()  # a clean stop: step down, then release
        await asyncio.gather(a.task, return_exceptions=True)
        assert a.stopped and not a.leadership.may_write()
        released = time.monotonic()
        await a.elector.release()
        took_over = await wait_for(lambda: b.elector.is_leader)
        assert took_over - released < FAST.retry_period + 0.2
        await b.kill()

    asyncio.run(scenario())


def test_timing_checks_name_the_flags() -> None:
    assert Timing().problems() == []
    assert "--leader-elect-lease-duration must be greater" in Timing(10, 10, 2).problems()[0]
    assert "--leader-elect-renew-deadline must be greater" in Timing(15, 2, 2).problems()[0]


def test_lease_names_follow_the_watch_scope() -> None:
    assert lease_name_for(None) == "llmstage"
    assert lease_name_for(["b", "a"]) == lease_name_for(["a", "b"]) != lease_name_for(["a"])
    assert len(lease_name_for(["x" * 63] * 5)) <= 63


def test_the_http_client_refuses_a_write_without_sending_it(tmp_path: Any) -> None:
    """The fence is checked at send time; a refused write never reaches the server, reads pass."""

    async def scenario() -> list[str]:
        seen: list[str] = []

        async def handler(request: web.Request) -> web.Response:
            seen.append(request.method)
            return web.json_response({"kind": "Lease", "metadata": {"name": "x"}})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        )
        leadership = Leadership(elected=True)
        kube = await Kube.connect(str(kubeconfig), fence=leadership.check)
        from llmstage.controller.kube import KINDS

        lease = KINDS[("coordination.k8s.io/v1", "Lease")]
        try:
            assert await kube.get(lease, "ns", "x") is not None
            with pytest.raises(NotLeaderError):
                await kube.create(lease, "ns", {"metadata": {"name": "x"}})
            # The fence of the HTTP layer alone (the check before each attempt skipped).
            kube.fence = None
            with pytest.raises(NotLeaderError):
                await kube.create(lease, "ns", {"metadata": {"name": "x"}})
            leadership.extend(time.monotonic() + 5)
            await kube.create(lease, "ns", {"metadata": {"name": "x"}})
        finally:
            await kube.close()
            await runner.cleanup()
        return seen

    assert asyncio.run(scenario()) == ["GET", "POST"]


def test_the_election_thread_leads_and_hands_over_through_the_operators_loop() -> None:
    """The elector on its own thread and loop; the queue callbacks on the operator's loop."""
    from llmstage.controller.leader import ElectionThread

    async def scenario() -> None:
        import threading

        api = FakeLeases()
        operator_thread = threading.get_ident()
        calls: list[tuple[str, int]] = []

        async def connect() -> Any:
            return FakeKube(api)

        async def stopped() -> None:
            await asyncio.sleep(0.05)  # the elector waits for the queue to stop
            calls.append(("stopped", threading.get_ident()))

        leadership = Leadership(elected=True)
        election = ElectionThread(
            connect,
            leadership,
            Campaign(
                LeaderElection("ops", "lease", FAST),
                "a",
                on_started=lambda: calls.append(("started", threading.get_ident())),
                on_stopped=stopped,
            ),
        )
        election.start()
        await wait_for(lambda: leadership.may_write())
        await wait_for(lambda: bool(calls))
        assert election.elector is not None and election.elector.is_leader
        await election.stop()
        assert not leadership.may_write()
        assert calls == [("started", operator_thread), ("stopped", operator_thread)]
        assert api.leases["lease"]["spec"]["holderIdentity"] == ""  # released

    asyncio.run(scenario())
