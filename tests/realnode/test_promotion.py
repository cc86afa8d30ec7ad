"""Promotion from the real Ollama to the real vLLM (its CPU image) while a client in the cluster sends
requests without pause: the Service switches runtimes and not one request fails.

The client is the OpenAI SDK with its default retries (tests/realnode/cutover_client.py): Ollama
drops its connections at once when its pod stops, and the SDK sends such a request again; the
test prints how many were. Which runtime answered is told by the answer (Ollama's OpenAI API marks
its answers with system_fingerprint fp_ollama). The promotion is `llmstage promote --cpu`: vLLM on
CPU nodes, as a team without GPUs would promote."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from testkit import wait_until
from testkit.chart import REPO
from testkit.realnode import Cluster, dev_service

# A vLLM start on one core of the shared 2-CPU node, the image pull included the first time: the
# waits inside allow 900 s, so the suite's 600 s per test would cut them.
pytestmark = pytest.mark.timeout(1800)


def test_promotion_to_production_loses_no_request_of_a_client_that_never_pauses(
    cluster: Cluster,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
    tmp_path: Path,
) -> None:
    ns = new_namespace("promote")
    cluster.kubectl(
        "create", "secret", "generic", "smol-api-key", "-n", ns, "--from-literal=api-key=realnode-key"
    )
    manifest = tmp_path / "smol.yaml"
    manifest.write_text(yaml.safe_dump(dev_service("smol", images)))
    cluster.kubectl("apply", "-n", ns, "-f", str(manifest))
    status = cluster.wait_ready("smol", ns, "ollama")

    # The client: requests back to back until 20 answers came from vLLM.
    key = {"secretKeyRef": {"name": "smol-api-key", "key": "api-key"}}
    cluster.start_pod(
        ns,
        "client",
        images["client"],
        [
            *("python3", "/app/cutover_client.py", status["endpoint"], status["servedModelName"]),
            *("--max-seconds", "900"),
        ],
        [{"name": "LLM_API_KEY", "valueFrom": key}],
    )

    def answered_by_ollama() -> bool:
        log = cluster.kubectl("logs", "client", "-n", ns, check=False)
        return '"runtime": "ollama"' in log

    wait_until(answered_by_ollama, timeout=120, interval=1, what="the client's first answers from Ollama")

    # Promotion as a user does it: the CLI edits the manifest, kubectl applies it.
    promote = subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "promote", "-f", str(manifest), "--to", "production",
         "--cpu", "--api-key-secret", "smol-api-key"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    # promote drops the Ollama-sized cpu/memory so vLLM gets its CPU backend's default (4 CPUs,
    # memory from the fit): more CPUs than this 2-CPU node has, so one, as a user would set.
    promoted = yaml.safe_load(manifest.read_text())
    assert "cpu" not in promoted["spec"]["resources"] and promoted["spec"]["runtime"] == "vllm", (
        promote.stderr
    )
    promoted["spec"]["resources"].update(cpu="1")
    # And one replica: production's default is 2-8, and a second vLLM does not fit beside the
    # first (and the Ollama pod it replaces) on the 2-CPU node, so the cutover would wait for it.
    promoted["spec"]["replicas"] = 1
    manifest.write_text(yaml.safe_dump(promoted))
    cluster.kubectl("apply", "-n", ns, "-f", str(manifest))
    cluster.wait_ready("smol", ns, "vllm", timeout=900)

    def client_done() -> str | None:
        phase = cluster.get("pod", "client", ns)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(client_done, timeout=900, interval=1, what="the client to finish") == "Succeeded"
    log = cluster.kubectl("logs", "client", "-n", ns)
    summary = json.loads(log.strip().splitlines()[-1])
    counts = summary["summary"]
    print(
        f"cutover: {counts['requests']} requests in {counts['seconds']} s, {counts['failed']} failed, "
        f"{counts['ollama']} answered by Ollama, {counts['vllm']} by vLLM, "
        f"{counts['retries']} sent again by the OpenAI client after a broken connection"
    )
    assert counts["failed"] == 0, summary
    assert counts["ollama"] > 0 and counts["vllm"] >= 20, summary
    # Only vLLM pods behind the Service now; the Ollama Deployment is gone.
    service = cluster.get("service", "smol", ns)
    assert service["spec"]["selector"]["llmstage.io/runtime"] == "vllm"
    assert not cluster.pods(ns, "llmstage.io/runtime=ollama")
