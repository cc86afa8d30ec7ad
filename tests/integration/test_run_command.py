"""`llmstage run` as a process: /healthz and /readyz, the metrics an on-call engineer needs,
JSON logs with the service as fields, and one clear line when a port is taken."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client

from testkit import OperatorProcess, wait_until
from testkit.chart import create_namespace, delete_namespaces

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
NEW_SERIES = (
    "llmstage_workqueue_depth",
    "llmstage_workqueue_queue_duration_seconds_bucket",
    "llmstage_workqueue_retries_total",
    "llmstage_reconciles_in_flight",
    "llmstage_leader",
    "llmstage_build_info{",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text


@pytest.fixture
def namespace(kubeconfig: Path, crd_installed: None, namespace_prefix: str) -> Iterator[str]:
    """Outside the session operator's prefix: this test's operator is the only writer."""
    name = create_namespace(kubeconfig, f"o{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    yield name
    delete_namespaces(kubeconfig, [name])


def test_health_readiness_metrics_and_json_logs(
    kubeconfig: Path, namespace: str, tmp_path: Path, api_client: client.ApiClient
) -> None:
    live, metrics = free_port(), free_port()
    # Later options win over OperatorProcess's defaults (liveness off, metrics off).
    proc = OperatorProcess(
        kubeconfig,
        tmp_path / "op.log",
        "--namespace",
        namespace,
        "--log-format",
        "json",
        "--liveness",
        f"http://127.0.0.1:{live}/healthz",
        "--metrics-port",
        str(metrics),
        "--metrics-address",
        "127.0.0.1",
    ).start()
    custom = client.CustomObjectsApi(api_client)
    try:

        def probe(path: str) -> dict[str, object] | None:
            try:
                r = httpx.get(f"http://127.0.0.1:{live}{path}", timeout=1)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 200 else None

        health = wait_until(lambda: probe("/healthz"), timeout=30, interval=0.3, what="/healthz")
        assert "cache" in health
        ready = wait_until(lambda: probe("/readyz"), timeout=30, interval=0.3, what="/readyz")
        assert ready["ready"] is True and ready["leaderElection"] is True
        wait_until(lambda: (probe("/healthz") or {}).get("leader"), timeout=30, what="it leads")

        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LLMService",
            "metadata": {"name": "chat"},
            "spec": {"stage": "dev", "model": {"name": "llama3.1:8b"}},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        series = (
            f'llmstage_llmservice_condition{{name="chat",namespace="{namespace}",status="True",type="Ready"}}'
        )
        wait_until(lambda: series in scrape(metrics), timeout=60, interval=0.5, what="chat's Ready series")

        text = scrape(metrics)
        for name in (
            "llmstage_reconciles_total",
            "llmstage_reconcile_duration_seconds",
            "llmstage_api_errors_total",
            'llmstage_managed_objects{kind="children"}',
            *NEW_SERIES,
        ):
            assert name in text, name
        assert "llmstage_leader 1.0" in text
        # Every LLMService event took the direct route from kopf's stream (controller/kopfwatch.py).
        handled = sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith('llmstage_watch_events_total{changed="') and 'kind="llmservices"' in line
        )
        direct = [
            line for line in text.splitlines() if line.startswith("llmstage_watch_events_direct_total{")
        ]
        assert handled > 0 and f'llmstage_watch_events_direct_total{{kind="llmservices"}} {handled}' in direct
        conditions = [line for line in text.splitlines() if line.startswith("llmstage_llmservice_condition{")]
        # One series per condition type of the service, the current status as a label.
        types = [line.split('type="')[1].split('"')[0] for line in conditions if 'name="chat"' in line]
        assert sorted(types) == sorted(set(types)) and {"Ready", "Stalled", "Reconciling"} <= set(types)

        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "chat")
        wait_until(
            lambda: 'name="chat"' not in scrape(metrics), timeout=30, interval=0.3, what="chat's series gone"
        )

        lines = [json.loads(line) for line in proc.log().splitlines() if line.strip()]
        assert lines and all(line["level"] and line["time"] and line["logger"] for line in lines)
        applied = [line for line in lines if line["message"].startswith("applied ")]
        assert applied, "no reconcile log line"
        for line in applied:
            assert line["namespace"] == namespace and line["name"] == "chat"
            assert line["generation"] == 1 and len(line["reconcile_id"]) == 12
    finally:
        assert proc.stop() in (0, -15)


def test_a_taken_port_ends_the_run_with_one_line_naming_the_flag(kubeconfig: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = {
            "--metrics-port": [
                "--liveness",
                "off",
                "--metrics-port",
                str(port),
                "--metrics-address",
                "127.0.0.1",
            ],
            "--liveness": ["--liveness", f"http://127.0.0.1:{port}/healthz", "--metrics-port", "0"],
        }
        for flag, args in cases.items():
            res = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "llmstage.cli",
                    "run",
                    "--kubeconfig",
                    str(kubeconfig),
                    "-n",
                    "x",
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert res.returncode == 2, res.stderr
            lines = [line for line in res.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, res.stderr
            assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0] and flag in lines[0], (
                lines
            )
            assert "Traceback" not in res.stderr


def test_context_picks_the_cluster_for_the_watches_the_writes_and_the_lease(
    kubeconfig: Path, namespace: str, tmp_path: Path, api_client: client.ApiClient
) -> None:
    """A kubeconfig whose current context points at nothing: with --context the operator (kopf's
    watches and llmstage's own client) works on the named one, and the Lease lands in its namespace."""
    config = yaml.safe_load(kubeconfig.read_text())
    real = config["contexts"][0]
    config["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}})
    config["contexts"] = [
        {"name": "nowhere", "context": {"cluster": "nowhere", "user": real["context"]["user"]}},
        {"name": "test-bed", "context": {**real["context"], "namespace": namespace}},
    ]
    config["current-context"] = "nowhere"
    two = tmp_path / "kubeconfig"
    two.write_text(yaml.safe_dump(config))
    proc = OperatorProcess(
        two, tmp_path / "op.log", "--namespace", namespace, "--context", "test-bed"
    ).start()
    custom = client.CustomObjectsApi(api_client)
    try:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LLMService",
            "metadata": {"name": "chat"},
            "spec": {"stage": "dev", "model": {"name": "llama3.1:8b"}},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

        def ready() -> bool:
            status = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "chat").get(
                "status"
            )
            return any(
                c["type"] == "Ready" and c["status"] == "True" for c in (status or {}).get("conditions", [])
            )

        wait_until(ready, timeout=90, interval=0.5, what="chat Ready through --context")
        leases = client.CoordinationV1Api(api_client).list_namespaced_lease(namespace).items
        assert [lease.metadata.name.startswith("llmstage") for lease in leases] == [True]
    finally:
        assert proc.stop() in (0, -15)


def test_an_unknown_context_ends_the_run_with_one_line(kubeconfig: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "run", "--kubeconfig", str(kubeconfig), "--context", "prod"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"llmstage run: kubeconfig {kubeconfig} has no context prod (it has: ")
