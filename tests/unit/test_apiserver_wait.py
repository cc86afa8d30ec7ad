"""`llmstage run` against an API server it cannot reach: one line per attempt with the cause,
and a pause that grows, until the server answers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from llmstage.controller.apiserver import MAX_DELAY, cause, wait_until_reachable
from llmstage.controller.kube import ApiError


def refused() -> ApiError:
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")
    except ConnectionRefusedError as inner:
        err = ApiError(0, "Unreachable", f"GET /version: {inner!r}")
        err.__cause__ = inner
        return err


def test_the_cause_is_the_error_s_words_not_its_repr() -> None:
    assert cause(refused()) == "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    assert cause(ApiError(401, "Unauthorized", "Unauthorized")) == (
        "the API server answered 401 Unauthorized: Unauthorized"
    )
    connector = aiohttp.ClientConnectionError("Cannot connect to host api:443\nssl:default")
    assert cause(connector) == "Cannot connect to host api:443 ssl:default"


def test_one_line_per_failed_attempt_with_a_growing_pause(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[BaseException | None] = [refused()] * 9 + [None]
    slept: list[float] = []

    async def probe() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    log = logging.getLogger("test.apiserver")
    with caplog.at_level(logging.INFO, logger="test.apiserver"):
        failures = asyncio.run(wait_until_reachable(probe, log, "https://api:6443", sleep=sleep))
    assert failures == 9
    assert slept == [1, 2, 4, 8, 16, 32, MAX_DELAY, MAX_DELAY, MAX_DELAY]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 9
    assert warnings[0] == (
        "cannot reach the API server https://api:6443 (attempt 1): [Errno 111] Connect call failed "
        "('127.0.0.1', 1); retrying in 1 s"
    )
    assert all("\n" not in w and "Traceback" not in w for w in warnings)
    assert (
        caplog.records[-1].getMessage() == "the API server https://api:6443 answers after 9 failed attempts"
    )


def test_run_logs_one_line_per_attempt_and_no_traceback(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n'
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "operator")
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        command = [sys.executable, "-m", "llmstage.cli", "run", "--kubeconfig", str(kubeconfig)]
        command += ["--liveness", "off", "--metrics-port", "0", "--log-format", "text", "--no-leader-elect"]
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and log.read_text().count("cannot reach the API server") < 2:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = log.read_text()
    attempts = [line for line in text.splitlines() if "cannot reach the API server" in line]
    assert len(attempts) >= 2, text
    assert "(attempt 1)" in attempts[0] and "retrying in 1 s" in attempts[0]
    assert "(attempt 2)" in attempts[1] and "retrying in 2 s" in attempts[1]
    assert "Traceback" not in text and "ConnectionKey" not in text
