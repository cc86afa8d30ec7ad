"""vLLM 0.32.0 on the real node, on its CPU backend: a production LLMService served for real.

vLLM's CPU image (hack/vllm-cpu) serves SmolLM2-135M-Instruct from an OCI image volume (the
`oci` model source, mounted by the real kubelet and containerd), with a LoRA adapter from the same
image, as UID 2000 with a read-only root, behind the pod's nginx gateway. Clients are pods on the
node calling the Service's DNS name. Nothing here is a stand-in but the builds of the images
(README "What runs where")."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from testkit import wait_until
from testkit.realnode import LORA_PATH, NODE, Cluster, netpol_enforced, production_vllm

# A vLLM start on one core of the shared 2-CPU node, the image pull included the first time: the
# waits inside allow 900 s, so the suite's 600 s per test would cut them.
pytestmark = pytest.mark.timeout(1800)


# The gateway's port for /metrics (render/gateway.py METRICS_PORT).
METRICS_PORT = 9090
KEY_SECRET = "smol-api-key"
KEY = "realnode-key"
LORA = "smol-lora"
# What the autoscalers query (render/autoscaling.py via the adapter, render/keda.py): it must be
# a series of the real server's /metrics, labelled with the served model name.
QUEUE_METRIC = "vllm:num_requests_waiting"
# A scrape from a new pod, which a NetworkPolicy enforcer admits a moment after it starts.
SCRAPE = """
import sys, time, urllib.request
for _ in range(60):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())
        break
    except OSError:
        time.sleep(1)
else:
    sys.exit("no answer from " + sys.argv[1])
"""


def key_env() -> list[dict[str, Any]]:
    return [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "api-key"}}}]


def server_pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    pods = [
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={name}")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


@pytest.fixture
def served(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """A production vLLM service with a LoRA adapter, Ready: (namespace, status)."""
    ns = new_namespace("vllm")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, f"--from-literal=api-key={KEY}")
    adapter = {"name": LORA, "source": {"oci": {"image": images["smollm2-hf"], "path": LORA_PATH}}}
    cluster.apply(ns, production_vllm("smol", images, KEY_SECRET, lora={"adapters": [adapter]}))
    # The image pull (3.5 GB compressed, the first time on this node) and an eager start on one core.
    return ns, cluster.wait_ready("smol", ns, "vllm", timeout=900)


def test_a_production_vllm_on_cpu_serves_with_its_key_and_only_the_inference_api(
    cluster: Cluster, served: tuple[str, dict[str, Any]], images: dict[str, str], monitoring_namespace: str
) -> None:
    ns, status = served
    assert status["endpoint"] == f"http://smol.{ns}.svc:8000/v1"
    assert status["loraAdapters"] == [LORA]

    # The OpenAI client, as a user's application runs it, with the key from the Secret.
    args = ["python3", "/app/client_openai.py", "--namespace", ns, "--service", "smol"]
    question = "What is the capital of France? Answer in one sentence."
    answer = cluster.run_pod(
        ns, "client", images["client"], [*args, "--model", "smollm2:135m", question], key_env()
    )
    print(f"vLLM (CPU) answered: {answer.strip()!r}")
    assert len(answer.split()) >= 3 and "failed" not in answer, answer
    lora = cluster.run_pod(ns, "client-lora", images["client"], [*args, "--model", LORA, question], key_env())
    print(f"the adapter {LORA} answered: {lora.strip()!r}")
    assert len(lora.split()) >= 3, lora

    # Every route from a client pod through the Service: the inference API with the key only, the
    # rest of vLLM's routes not at all (vLLM's own key checks /v1 only: /invocations ran a chat
    # completion without one before the gateway).
    checks = {
        "GET:/v1/models:key": 200,
        "GET:/v1/models": 401,
        "POST:/v1/chat/completions": 401,
        "POST:/invocations": 404,
        "POST:/invocations:key": 404,
        "POST:/pause": 404,
        "POST:/abort_requests": 404,
        "POST:/tokenize": 404,
        "POST:/v1/load_lora_adapter:key": 404,
        "GET:/metrics": 404,
        "GET:/health": 200,
    }
    out = cluster.run_pod(
        ns,
        "routes",
        images["client"],
        ["python3", "/app/route_check.py", f"http://smol.{ns}.svc:8000", "smollm2:135m", *checks],
        key_env(),
    )
    assert json.loads(out.strip().splitlines()[-1]) == checks

    pod = server_pod(cluster, ns, "smol")
    name, spec = pod["metadata"]["name"], pod["spec"]
    assert spec["nodeName"] == NODE
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert statuses["server"]["ready"] and statuses["server"]["restartCount"] == 0, statuses["server"]

    # Every rendered flag and variable was accepted: the server started and serves. As rendered:
    # its user, a read-only root, /dev/shm of the rendered size, its KV cache and threads.
    def exec_(*command: str) -> str:
        return cluster.kubectl("exec", name, "-n", ns, "-c", "server", "--", *command, check=False)

    assert exec_("id", "-u").strip() == "2000"
    denied = exec_("sh", "-c", "touch /probe 2>&1; echo rc=$?")
    assert "Read-only file system" in denied and "rc=1" in denied, denied
    server = next(c for c in spec["containers"] if c["name"] == "server")
    (shm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
    size = exec_("python3", "-c", "import os; s = os.statvfs('/dev/shm'); print(s.f_blocks * s.f_frsize)")
    assert int(size) == 2 * 2**30 and shm["emptyDir"]["sizeLimit"] == "2Gi", size
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and env["OMP_NUM_THREADS"] == "1"
    log = cluster.kubectl("logs", name, "-n", ns, "-c", "server")
    assert "--dtype=float32" in server["args"] and "--enforce-eager" in server["args"]
    kv_gib = int(env["VLLM_CPU_KVCACHE_SPACE"])
    assert kv_gib >= 1 and "Traceback" not in log, log[-3000:]

    # The metric the autoscalers read, from the gateway's metrics port (what the PodMonitor scrapes),
    # scraped from the monitoring namespace: the NetworkPolicy admits it alone to that port.
    ip = pod["status"]["podIP"]
    metrics = cluster.run_pod(
        monitoring_namespace,
        f"metrics-{ns}",
        images["client"],
        ["python3", "-c", SCRAPE, f"http://{ip}:{METRICS_PORT}/metrics"],
    )
    series = [line for line in metrics.splitlines() if line.startswith(QUEUE_METRIC + "{")]
    assert series and all('model_name="smollm2:135m"' in line for line in series), metrics[:2000]
    for family in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total"):
        assert f"# TYPE {family}" in metrics or f"# TYPE {family.removesuffix('_total')}" in metrics, family
    if netpol_enforced():
        # The API's own clients are not Prometheus: the metrics port refuses them.
        own = cluster.reach(ns, "metrics-own-namespace", images["client"], ip, METRICS_PORT, "/metrics")
        print(f"a pod of {ns} on the metrics port: {own!r}")
        assert own == "refused"

    # The memory the fit gave the pod holds vLLM's processes: what the cgroup saw at its peak.
    peak = exec_(
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.peak",
    )
    limit = server["resources"]["limits"]["memory"]
    print(f"vLLM pod: memory peak {int(peak) / 2**30:.2f} GiB of {limit}, KV cache {kv_gib} GiB")
    assert int(peak) < int(limit.removesuffix("Gi")) * 2**30


def test_a_rolling_update_finishes_every_stream_that_started(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    """vLLM 0.32 aborts its requests on SIGTERM unless --shutdown-timeout lets them drain
    (rendered: 90 s); the preStop sleep takes the pod out of the endpoints first, and the gateway
    turns SIGTERM into nginx's graceful quit. A client streams back to back through the Service
    while a spec change rolls the Deployment (a claim per pod: surge first)."""
    ns = new_namespace("roll")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, f"--from-literal=api-key={KEY}")
    service = production_vllm("roll", images, KEY_SECRET, cache={"mode": "PerPod"}, resources={"cpu": "500m"})
    cluster.apply(ns, service)
    cluster.wait_ready("roll", ns, "vllm", timeout=900)
    first = server_pod(cluster, ns, "roll")["metadata"]["name"]

    streams = 300
    cluster.start_pod(
        ns,
        "streamer",
        images["client"],
        [
            *("python3", "/app/stream_client.py", f"http://roll.{ns}.svc:8000/v1", "smollm2:135m"),
            *("--seconds", str(streams)),
        ],
        key_env(),
    )
    wait_until(
        lambda: '"finished": true' in cluster.kubectl("logs", "streamer", "-n", ns, check=False),
        timeout=300,
        interval=1,
        what="the first finished stream",
    )

    # A change of the pod template: the operator renders it, the Deployment rolls.
    service["spec"]["vllm"]["env"] = {"VLLM_LOGGING_LEVEL": "INFO"}
    cluster.apply(ns, service)

    def replaced() -> str | None:
        pods = [p for p in cluster.pods(ns, "app.kubernetes.io/instance=roll")]
        names = {p["metadata"]["name"] for p in pods}
        return None if first in names else ",".join(sorted(names))

    wait_until(replaced, timeout=900, interval=2, what="the old pod gone after the rollout")
    cluster.wait_ready("roll", ns, "vllm", timeout=300)

    def client_done() -> str | None:
        phase = cluster.get("pod", "streamer", ns)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert (
        wait_until(client_done, timeout=streams + 300, interval=2, what="the streaming client to finish")
        == "Succeeded"
    )
    summary = json.loads(cluster.kubectl("logs", "streamer", "-n", ns).strip().splitlines()[-1])
    counts = summary["summary"]
    print(f"rolling update under streams: {counts}, errors {summary['errors']}")
    assert counts["cut"] == 0 and counts["refused"] == 0, summary
    assert counts["finished"] >= math.floor(streams / 60), counts  # streams kept coming throughout
