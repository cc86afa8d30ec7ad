"""`llmstage run` as a process: liveness, metrics and JSON logs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from testkit import OperatorProcess, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_liveness_metrics_and_json_logs(
    kubeconfig: Path, crd_installed: None, namespace: str, tmp_path: Path
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
    try:

        def healthz() -> dict[str, object] | None:
            try:
                r = httpx.get(f"http://127.0.0.1:{live}/healthz", timeout=1)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

        probe = wait_until(healthz, timeout=30, interval=0.3, what="the liveness endpoint")
        assert "cache" in probe
        text = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        for name in (
            "llmstage_reconciles_total",
            "llmstage_reconcile_duration_seconds",
            "llmstage_api_errors_total",
            'llmstage_managed_objects{kind="children"}',
        ):
            assert name in text, name
        lines = [line for line in proc.log().splitlines() if line.strip()]
        assert lines and all(json.loads(line)["level"] for line in lines)
    finally:
        assert proc.stop() in (0, -15)
