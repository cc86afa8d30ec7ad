"""A quiet cluster gets no writes from the operator (P2 of the benchmarks).

Counted from the API server's audit log (.cluster/logs/audit.log, every write at Metadata level),
where the operator's requests carry the user agent `llmstage/<version>` and kopf's `kopf/...`.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from testkit import OperatorProcess, audit, wait_until
from testkit.chart import create_namespace, delete_namespaces
from testkit.check import is_ready, settled

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
QUIET_SECONDS = 20
H100 = "NVIDIA-H100-80GB-HBM3"

SPECS: dict[str, dict[str, Any]] = {
    "dev": {"stage": "dev", "model": {"name": "llama3.1:8b"}},
    "staging": {"stage": "staging", "model": {"name": "qwen2.5:7b"}, "expectedConcurrency": 4},
    # vLLM on a GPU: its Deployment carries `nvidia.com/gpu: 1`, which the API server returns as
    # the string "1"; a naive comparison re-applied it on every reconcile.
    "production": {
        "stage": "production",
        "model": {"name": "llama3.1:8b", "huggingFaceId": "meta-llama/Llama-3.1-8B-Instruct"},
        "replicas": 1,
        "resources": {"gpu": {"count": 1, "product": H100}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
    },
    # Stalled: no node has this GPU. A status message with a running "for N s" in it was a
    # write loop (each status write triggered a reconcile that wrote a new message).
    "stalled": {
        "stage": "production",
        "model": {"name": "llama3.1:8b"},
        "replicas": 1,
        "resources": {"gpu": {"count": 1, "product": "NVIDIA-B200"}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
    },
}


@pytest.fixture
def converged(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> audit.Mark:
    """Converged LLMServices (dev, staging, production Ready; one Stalled); returns the audit
    mark taken before they were created."""
    return converge(api_client, namespace)


def converge(api_client: client.ApiClient, namespace: str) -> audit.Mark:
    if not audit.AUDIT_LOG.exists():
        pytest.skip(f"no audit log at {audit.AUDIT_LOG} (only the local test cluster writes one)")
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "llm-api-key"}, "stringData": {"api-key": "k"}}
    )
    start = audit.mark()
    for name, spec in SPECS.items():
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LLMService",
            "metadata": {"name": name},
            "spec": spec,
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def all_settled() -> bool:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return len(items) == len(SPECS) and all(
            is_ready(s) or (s["metadata"]["name"] == "stalled" and settled(s)) for s in items
        )

    wait_until(all_settled, timeout=120, interval=0.5, what="dev, staging, production Ready and one Stalled")
    # Status lags the last child events by a reconcile or two; then nothing is left to do.
    wait_until(lambda: _quiet(namespace, 3), timeout=30, interval=0, what="3 s without operator writes")
    return start


def _quiet(namespace: str, seconds: float) -> bool:
    m = audit.mark()
    time.sleep(seconds)
    return not audit.operator_writes(m, [namespace])


def test_the_operator_writes_nothing_while_nothing_changes(namespace: str, converged: audit.Mark) -> None:
    # The audit log must attribute the operator's writes at all, or zero below proves nothing.
    during_convergence = audit.operator_writes(converged, [namespace], wait=False)
    verbs = {(e["verb"], e["objectRef"]["resource"]) for e in during_convergence}
    assert ("patch", "deployments") in verbs and ("patch", "llmservices") in verbs, audit.describe(
        during_convergence
    )

    quiet = audit.mark()
    time.sleep(QUIET_SECONDS)
    writes = audit.operator_writes(quiet, [namespace])
    assert writes == [], f"the operator wrote in {QUIET_SECONDS}s of quiet: {audit.describe(writes)}"


def test_events_that_change_nothing_the_operator_owns_cause_no_writes(
    api_client: client.ApiClient, namespace: str, converged: audit.Mark
) -> None:
    """Every child event triggers a reconcile; one about a change that is not ours (a label on
    the LLMService and on each child, an annotation on the Service and the claim) must end in no
    request at all. (Not a Deployment annotation: the API server bumps a Deployment's generation
    for those, and until the controller observes it the Deployment's status is stale, which the
    operator rightly reports as not Ready for that moment.)"""
    custom, apps, core = (
        client.CustomObjectsApi(api_client),
        client.AppsV1Api(api_client),
        client.CoreV1Api(api_client),
    )
    m = audit.mark()
    label = {"metadata": {"labels": {"example.com/team": "search"}}}
    touch = {"metadata": {"annotations": {"example.com/touched": str(time.time())}, **label["metadata"]}}
    for name in SPECS:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, label)
    for dep in apps.list_namespaced_deployment(namespace).items:
        apps.patch_namespaced_deployment(dep.metadata.name, namespace, label)
    for svc in core.list_namespaced_service(namespace).items:
        core.patch_namespaced_service(svc.metadata.name, namespace, touch)
    for pvc in core.list_namespaced_persistent_volume_claim(namespace).items:
        core.patch_namespaced_persistent_volume_claim(pvc.metadata.name, namespace, touch)
    time.sleep(8)  # several reconciles' worth
    writes = audit.operator_writes(m, [namespace])
    assert writes == [], f"no-op events made the operator write: {audit.describe(writes)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settled_after_start(port: int, services: int) -> bool:
    """It leads, reconciled every service once and has nothing queued or running."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("llmstage_reconciles_total{", "llmstage_workqueue_depth ", "llmstage_leader ")):
            name = line.split("{")[0].split(" ")[0]
            values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        if line.startswith("llmstage_reconciles_in_flight "):
            values["in_flight"] = float(line.rsplit(" ", 1)[1])
    return (
        values.get("llmstage_leader") == 1
        and values.get("llmstage_reconciles_total", 0) >= services
        and values.get("llmstage_workqueue_depth") == 0
        and values.get("in_flight") == 0
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restarted_operator_writes_nothing_for_converged_services(
    kubeconfig: Path,
    api_client: client.ApiClient,
    crd_installed: None,
    namespace_prefix: str,
    tmp_path: Path,
    stop: signal.Signals,
) -> None:
    """After a restart (a rolling update; a killed or rescheduled pod) the new process
    reconciles every service once from a fresh cache, and for converged services that is no
    request at all. Short lease timings: after SIGKILL the new process waits for the lease."""
    # Its own namespace and operator (outside the session operator's prefix): it is restarted.
    ns = create_namespace(kubeconfig, f"w{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    metrics = _free_port()
    args: tuple[str, ...] = (
        "--namespace",
        ns,
        "--metrics-port",
        str(metrics),
        "--metrics-address",
        "127.0.0.1",
    )
    args += ("--unschedulable-grace", "8")  # as the session operator: Stalled soon
    args += (
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=0.5s",
    )
    first = OperatorProcess(kubeconfig, tmp_path / "first.log", *args).start()
    second: OperatorProcess | None = None
    try:
        converge(api_client, ns)
        m = audit.mark()
        assert first.stop(stop) in (0, -stop)
        second = OperatorProcess(kubeconfig, tmp_path / "second.log", *args).start()
        wait_until(
            lambda: _settled_after_start(metrics, len(SPECS)),
            timeout=60,
            interval=0.5,
            what="the restarted operator to lead and reconcile every service once",
        )
        time.sleep(QUIET_SECONDS)
        writes = audit.operator_writes(m, [ns])
        assert writes == [], f"the restarted operator wrote: {audit.describe(writes)}"
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.stop()
        delete_namespaces(kubeconfig, [ns])
    for proc in (first, second):
        assert proc is not None and "Traceback" not in proc.log(), proc.log()[-3000:]
