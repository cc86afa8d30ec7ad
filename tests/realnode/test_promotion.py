"""Promotion from the real Ollama to the vLLM stand-in while a client in the cluster sends requests
without pause: the Service switches runtimes and not one request fails.

The client is the OpenAI SDK with its default retries (tests/realnode/cutover_client.py): Ollama
drops its connections at once when its pod stops, and the SDK sends such a request again; the
test prints how many were.

The stand-in (e2e/fake-llm) runs the rendered vLLM container's arguments on the real node and
answers "fake vllm reply to: ..."; the GPU it requests is an `nvidia.com/gpu` extended resource
this test advertises on the real node (there is no GPU here) and removes afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from testkit import wait_until
from testkit.chart import REPO
from testkit.realnode import NODE, Cluster, dev_service

GPU_PRODUCT = "NVIDIA-L4"


@pytest.fixture
def advertised_gpus(cluster: Cluster) -> Iterator[None]:
    """Two fake GPUs on the real node: capacity a device plugin would report, and GFD's label."""
    patch = {"status": {"capacity": {"nvidia.com/gpu": "2"}}}
    cluster.kubectl("patch", "node", NODE, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    cluster.kubectl("label", "node", NODE, f"nvidia.com/gpu.product={GPU_PRODUCT}", "--overwrite")
    try:
        yield
    finally:
        gone = {"status": {"capacity": {"nvidia.com/gpu": None}}}
        cluster.kubectl("patch", "node", NODE, "--subresource=status", "--type=merge", "-p", json.dumps(gone))
        cluster.kubectl("label", "node", NODE, "nvidia.com/gpu.product-", check=False)


def test_promotion_to_production_loses_no_request_of_a_client_that_never_pauses(
    cluster: Cluster,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
    advertised_gpus: None,
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
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"llmstage.io/node": "real"},
            "tolerations": [{"key": "llmstage.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "client",
                    "image": images["client"],
                    "args": [
                        "python3",
                        "/app/cutover_client.py",
                        status["endpoint"],
                        status["servedModelName"],
                    ],
                    "env": [
                        {
                            "name": "LLM_API_KEY",
                            "valueFrom": {"secretKeyRef": {"name": "smol-api-key", "key": "api-key"}},
                        }
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    cluster.apply(ns, client)

    def answered_by_ollama() -> bool:
        log = cluster.kubectl("logs", "client", "-n", ns, check=False)
        return '"runtime": "ollama"' in log

    wait_until(answered_by_ollama, timeout=120, interval=1, what="the client's first answers from Ollama")

    # Promotion as a user does it: the CLI edits the manifest, kubectl applies it.
    promote = subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "promote", "-f", str(manifest), "--to", "production",
         "--gpu", GPU_PRODUCT, "--api-key-secret", "smol-api-key"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    # promote drops the Ollama-sized cpu/memory so vLLM gets its GPU-sized default (4 CPUs, 24Gi):
    # more than this 2-CPU node has. The stand-in needs little; a real vLLM would need that default.
    promoted = yaml.safe_load(manifest.read_text())
    assert "cpu" not in promoted["spec"]["resources"], promote.stderr
    promoted["spec"]["resources"].update(cpu="250m", memory="512Mi")
    manifest.write_text(yaml.safe_dump(promoted))
    cluster.kubectl("apply", "-n", ns, "-f", str(manifest))
    cluster.wait_ready("smol", ns, "vllm", timeout=300)

    def client_done() -> str | None:
        phase = cluster.get("pod", "client", ns)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(client_done, timeout=600, interval=1, what="the client to finish") == "Succeeded"
    log = cluster.kubectl("logs", "client", "-n", ns)
    summary = json.loads(log.strip().splitlines()[-1])
    counts = summary["summary"]
    print(
        f"cutover: {counts['requests']} requests in {counts['seconds']} s, {counts['failed']} failed, "
        f"{counts['ollama']} answered by Ollama, {counts['vllm']} by the vLLM stand-in, "
        f"{counts['retries']} sent again by the OpenAI client after a broken connection"
    )
    assert counts["failed"] == 0, summary
    assert counts["ollama"] > 0 and counts["vllm"] >= 20, summary
    # Only vLLM pods behind the Service now; the Ollama Deployment is gone.
    service = cluster.get("service", "smol", ns)
    assert service["spec"]["selector"]["llmstage.io/runtime"] == "vllm"
    assert not cluster.pods(ns, "llmstage.io/runtime=ollama")
