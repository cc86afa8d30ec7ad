"""The chart's two operator replicas as pods on the real node (issue 14): both ready (the leader
and a warm standby), exactly one holding the Lease, and a `kubectl rollout restart` of the chart's
Deployment that never leaves a spec change unreconciled for longer than the lease duration.

The service whose spec changes has `replicas: 0`: every change is a reconcile and a status write,
but no Ollama pod has to start on the 2-CPU node."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from testkit import wait_until
from testkit.chart import ChartRelease
from testkit.realnode import NODE, Cluster, dev_service

LEASE_DURATION = 15.0  # the chart's leaderElection.leaseDuration


def operator_pods(cluster: Cluster, release: ChartRelease) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/name=llmstage-operator,app.kubernetes.io/instance={release.release}"
    return [
        p for p in cluster.pods(release.namespace, selector) if not p["metadata"].get("deletionTimestamp")
    ]


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def lease_holder(cluster: Cluster, release: ChartRelease) -> str:
    lease = cluster.get("lease", release.fullname, release.namespace)
    return str(lease["spec"].get("holderIdentity") or "")


def test_two_operator_pods_run_one_leads_and_both_are_ready(
    cluster: Cluster, operator_in_cluster: ChartRelease
) -> None:
    release = operator_in_cluster
    pods = wait_until(
        lambda: (lambda ps: ps if len(ps) == 2 and all(map(pod_ready, ps)) else None)(
            operator_pods(cluster, release)
        ),
        timeout=180,
        interval=1,
        what="two ready operator pods",
    )
    names = sorted(p["metadata"]["name"] for p in pods)
    assert all(p["spec"]["nodeName"] == NODE for p in pods)
    holder = wait_until(lambda: lease_holder(cluster, release), timeout=60, interval=1, what="a lease holder")
    # The identity is POD_NAME/pid/random: the leader is one of the two pods.
    assert holder.split("/")[0] in names, (holder, names)
    for pod in pods:
        container = pod["status"]["containerStatuses"][0]
        assert container["ready"] and container["restartCount"] == 0, container


def test_a_rolling_restart_of_the_chart_never_leaves_a_change_unreconciled_longer_than_the_lease(
    cluster: Cluster,
    operator_in_cluster: ChartRelease,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
) -> None:
    release = operator_in_cluster
    ns = new_namespace("ha")
    cluster.apply(ns, dev_service("idle", images, replicas=0))

    def generation_observed() -> bool:
        obj = cluster.get("llmservice", "idle", ns)
        return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]

    wait_until(generation_observed, timeout=120, interval=1, what="the idle service reconciled")
    before = {p["metadata"]["name"] for p in operator_pods(cluster, release)}
    holder_before = lease_holder(cluster, release)
    lags: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def change_spec_every_two_seconds() -> None:
        value = 1
        while not stop.is_set():
            value = 3 - value
            patched = json.loads(
                cluster.kubectl(
                    "patch",
                    "llmservice",
                    "idle",
                    "-n",
                    ns,
                    "--type=merge",
                    "-o",
                    "json",
                    "-p",
                    json.dumps({"spec": {"expectedConcurrency": value}}),
                )
            )
            generation, changed = patched["metadata"]["generation"], time.monotonic()
            while not stop.is_set():
                obj = cluster.get("llmservice", "idle", ns)
                if (obj.get("status") or {}).get("observedGeneration", 0) >= generation:
                    lags.append(time.monotonic() - changed)
                    break
                if time.monotonic() - changed > 90:
                    failures.append(f"generation {generation} not reconciled in 90 s")
                    return
                time.sleep(0.2)
            time.sleep(2)

    user = threading.Thread(target=change_spec_every_two_seconds, daemon=True)
    user.start()
    try:
        time.sleep(4)
        cluster.kubectl("rollout", "restart", f"deployment/{release.fullname}", "-n", release.namespace)
        cluster.kubectl(
            "rollout", "status", f"deployment/{release.fullname}", "-n", release.namespace, "--timeout=300s"
        )
        wait_until(
            lambda: not before & {p["metadata"]["name"] for p in operator_pods(cluster, release)},
            timeout=120,
            interval=1,
            what="the old operator pods gone",
        )
        time.sleep(6)
    finally:
        stop.set()
        user.join(timeout=100)
    assert not failures, failures
    holder_after = lease_holder(cluster, release)
    after = {p["metadata"]["name"] for p in operator_pods(cluster, release)}
    print(
        f"\nrolling restart: leader {holder_before} -> {holder_after}; "
        f"{len(lags)} changes, longest {max(lags):.1f}s"
    )
    assert holder_after.split("/")[0] in after, (holder_after, after)
    assert len(lags) >= 5, lags
    assert max(lags) < LEASE_DURATION, [round(x, 1) for x in lags]
