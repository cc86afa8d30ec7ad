"""Two operators on one namespace, on the local cluster, with the default lease timings (15 s /
10 s / 2 s): one leads, the other stands by and takes over.

- SIGKILL the leader: the standby reconciles a service created right after within 20 s;
- SIGSTOP the leader (a hung process) while it works: the standby takes over once the lease
  expires, and after SIGCONT the old leader writes nothing. Checked in the API server's audit log,
  where each replica's requests carry its identity in the user agent: never two identities
  writing in the same second, and the old leader's writes all come before the new one's;
- a rolling update, done to two replicas as the chart's Deployment does it (maxSurge 1,
  maxUnavailable 0: a new replica starts and becomes ready, then an old one gets SIGTERM, twice):
  a spec change is never left unreconciled for longer than the lease duration.

Each test has its own namespace outside the session operator's prefix and its own processes.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from testkit import OperatorProcess, audit, wait_until
from testkit.chart import create_namespace, delete_namespaces
from testkit.check import is_ready

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
LEASE_DURATION = 15.0  # the default of --leader-elect-lease-duration
IDENTITY = re.compile(r"^llmstage/\S+ \((?P<identity>[^)]+)\)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """`llmstage run` with leader election on (the default) and its health endpoint."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.port = free_port()
        self.proc = OperatorProcess(
            kubeconfig,
            log,
            "--namespace",
            namespace,
            "--liveness",
            f"http://127.0.0.1:{self.port}/healthz",
            "--log-format",
            "json",
        )

    def start(self) -> Replica:
        self.proc.start()
        return self

    def state(self) -> dict[str, Any]:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def leads(self) -> bool:
        return self.state().get("leader") is True

    @property
    def identity(self) -> str:
        return str(
            wait_until(lambda: self.state().get("identity"), timeout=30, what="the replica's identity")
        )

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc.proc is not None
        self.proc.proc.send_signal(sig)


@pytest.fixture
def ns(kubeconfig: Path, crd_installed: None, namespace_prefix: str) -> Iterator[str]:
    # "l" instead of the session's "t": the session operator (namespace_prefix*) stays out.
    name = create_namespace(kubeconfig, f"l{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    yield name
    delete_namespaces(kubeconfig, [name])


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    """The test's replicas (new_replica adds them); stopped and their logs checked at the end."""
    made: list[Replica] = []
    yield made
    for r in made:
        if r.proc.proc is not None and r.proc.proc.poll() is None:
            r.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        r.proc.stop()
    for r in made:
        log = r.proc.log()
        assert "Traceback" not in log, log[-5000:]


def new_replica(replicas: list[Replica], kubeconfig: Path, ns: str, tmp_path: Path) -> Replica:
    r = Replica(kubeconfig, ns, tmp_path / f"replica-{len(replicas)}.log")
    replicas.append(r)
    return r.start()


def create_service(api: client.ApiClient, ns: str, name: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"stage": "dev", "model": {"name": "llama3.1:8b"}},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def get_service(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def reconciled(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


def two_replicas(
    replicas: list[Replica], kubeconfig: Path, ns: str, tmp_path: Path
) -> tuple[Replica, Replica]:
    leader = new_replica(replicas, kubeconfig, ns, tmp_path)
    wait_until(leader.leads, timeout=60, interval=0.2, what="the first replica to lead")
    standby = new_replica(replicas, kubeconfig, ns, tmp_path)
    wait_until(standby.ready, timeout=60, interval=0.2, what="the second replica ready (warm standby)")
    state = standby.state()
    assert state["leader"] is False and state["holder"] == leader.identity, state
    return leader, standby


def writes_by_identity(mark: audit.Mark, ns: str) -> list[tuple[str, str, str]]:
    """(second, identity, what) of every operator write in `ns` since `mark`."""
    out = []
    for event in audit.operator_writes(mark, [ns]):
        m = IDENTITY.match(str(event.get("userAgent", "")))
        assert m, f"an operator write without an identity in its user agent: {event.get('userAgent')}"
        ref = event.get("objectRef") or {}
        what = f"{event['verb']} {ref.get('resource')}/{ref.get('name')}"
        out.append((event["requestReceivedTimestamp"][:19], m["identity"], what))
    return out


def test_a_killed_leader_is_replaced_and_a_new_service_reconciled_within_20_seconds(
    kubeconfig: Path, api_client: client.ApiClient, ns: str, replicas: list[Replica], tmp_path: Path
) -> None:
    leader, standby = two_replicas(replicas, kubeconfig, ns, tmp_path)
    create_service(api_client, ns, "before")
    wait_until(lambda: is_ready(get_service(api_client, ns, "before")), timeout=60, what="before Ready")

    killed = time.monotonic()
    leader.signal(signal.SIGKILL)
    create_service(api_client, ns, "after")
    wait_until(standby.leads, timeout=30, interval=0.1, what="the standby to take over")
    took_over = time.monotonic() - killed
    wait_until(
        lambda: reconciled(get_service(api_client, ns, "after")), timeout=30, interval=0.1, what="after"
    )
    reconciled_after = time.monotonic() - killed
    print(
        f"\nSIGKILL: standby leads after {took_over:.1f}s, "
        f"new service reconciled after {reconciled_after:.1f}s"
    )
    assert reconciled_after < 20, f"the new service was reconciled {reconciled_after:.1f}s after the kill"
    wait_until(lambda: is_ready(get_service(api_client, ns, "after")), timeout=60, what="after Ready")


def test_a_paused_leader_is_replaced_and_writes_nothing_after_it_resumes(
    kubeconfig: Path, api_client: client.ApiClient, ns: str, replicas: list[Replica], tmp_path: Path
) -> None:
    if not audit.AUDIT_LOG.exists():
        pytest.skip(f"no audit log at {audit.AUDIT_LOG} (only the local test cluster writes one)")
    leader, standby = two_replicas(replicas, kubeconfig, ns, tmp_path)
    old, new = leader.identity, standby.identity
    mark = audit.mark()
    # Work in progress when the leader hangs: services being created while it is stopped.
    names = [f"svc-{i}" for i in range(6)]
    for name in names[:3]:
        create_service(api_client, ns, name)
    wait_until(
        lambda: any(w[1] == old for w in writes_by_identity(mark, ns)),
        timeout=30,
        interval=0.2,
        what="the leader to start writing",
    )
    leader.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    for name in names[3:]:
        create_service(api_client, ns, name)
    wait_until(standby.leads, timeout=40, interval=0.1, what="the standby to take over")
    took_over = time.monotonic() - stopped
    wait_until(
        lambda: all(is_ready(get_service(api_client, ns, n)) for n in names),
        timeout=90,
        interval=0.5,
        what="every service Ready under the new leader",
    )
    leader.signal(signal.SIGCONT)
    # The old leader finds out it lost the lease and stays on as a standby.
    wait_until(
        lambda: "stopped leading" in leader.proc.log(),
        timeout=30,
        interval=0.2,
        what="the old leader to step down",
    )
    wait_until(lambda: leader.state().get("leader") is False, timeout=10, what="the old leader's /healthz")
    # Give it the chance to send what it had queued before it was stopped, and a change to react to.
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, names[0], {"spec": {"expectedConcurrency": 2}}
    )
    wait_until(
        lambda: reconciled(get_service(api_client, ns, names[0])), timeout=30, what="the change reconciled"
    )
    time.sleep(5)
    print(f"\nSIGSTOP: standby leads {took_over:.1f}s after the leader stopped")

    writes = writes_by_identity(mark, ns)
    assert {w[1] for w in writes} == {old, new}, writes
    per_second: dict[str, set[str]] = defaultdict(set)
    for second, identity, _ in writes:
        per_second[second].add(identity)
    shared = {s: ids for s, ids in per_second.items() if len(ids) > 1}
    assert not shared, f"two identities wrote in the same second: {shared}"
    last_old = max(i for i, w in enumerate(writes) if w[1] == old)
    first_new = min(i for i, w in enumerate(writes) if w[1] == new)
    assert last_old < first_new, (
        f"the old leader wrote after the new one started: {writes[first_new]} ... {writes[last_old]}"
    )
    assert leader.proc.alive(), leader.proc.log()[-3000:]
    log = leader.proc.log()
    assert "could not renew lease" in log or "is held by" in log, log[-3000:]


def test_a_rolling_update_never_leaves_a_change_unreconciled_longer_than_the_lease(
    kubeconfig: Path, api_client: client.ApiClient, ns: str, replicas: list[Replica], tmp_path: Path
) -> None:
    old_a, old_b = two_replicas(replicas, kubeconfig, ns, tmp_path)
    create_service(api_client, ns, "chat")
    wait_until(lambda: is_ready(get_service(api_client, ns, "chat")), timeout=60, what="chat Ready")
    custom = client.CustomObjectsApi(api_client)
    lags: list[float] = []
    stop = threading.Event()
    failures: list[str] = []

    def change_spec_every_second() -> None:
        """A user changing the spec all along; each change must be observed by a leader."""
        value = 1
        while not stop.is_set():
            value = 3 - value
            obj = custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, "chat", {"spec": {"expectedConcurrency": value}}
            )
            generation, changed = obj["metadata"]["generation"], time.monotonic()
            while not stop.is_set():
                obj = get_service(api_client, ns, "chat")
                if (obj.get("status") or {}).get("observedGeneration", 0) >= generation:
                    lags.append(time.monotonic() - changed)
                    break
                if time.monotonic() - changed > 60:
                    failures.append(f"generation {generation} not reconciled in 60 s")
                    return
                time.sleep(0.1)
            time.sleep(1.0)

    user = threading.Thread(target=change_spec_every_second, daemon=True)
    user.start()
    try:
        time.sleep(3)
        # maxSurge 1, maxUnavailable 0, twice: a new replica ready, then an old one stopped.
        for old in (old_a, old_b):
            fresh = new_replica(replicas, kubeconfig, ns, tmp_path)
            wait_until(fresh.ready, timeout=60, interval=0.2, what="the new replica ready")
            assert old.proc.stop(timeout=30) in (0, -15), old.proc.log()[-3000:]
        wait_until(lambda: any(r.leads() for r in replicas[2:]), timeout=30, what="a new replica to lead")
        time.sleep(5)
    finally:
        stop.set()
        user.join(timeout=70)
    assert not failures, failures
    assert len(lags) >= 5, lags
    print(f"\nrolling update: {len(lags)} spec changes, longest wait {max(lags):.1f}s")
    assert max(lags) < LEASE_DURATION, f"a change waited {max(lags):.1f}s: {[round(x, 1) for x in lags]}"
    # The handover went through the Lease's release, not its expiry.
    released = [r for r in replicas[:2] if "released lease" in r.proc.log()]
    assert released, "no old replica released the lease on SIGTERM"
    assert json.dumps(replicas[2].state())  # the new replicas answer
