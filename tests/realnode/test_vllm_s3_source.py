"""Model sources for real on the real node: vLLM's CPU image serves SmolLM2-135M-Instruct from the
`s3` source, a bucket on a real S3 server (versitygw, built from its Go module by `make tools`)
listening on the node's bridge address, where pods reach it as they would a store in the cluster's
network. The download step runs as rendered: in the operator's image (the one the chart installed,
which passes it to the operator), with the Secret's keys by reference, each file checked against
its checksum or ETag. Then the store goes away and the pod restarts: it starts from the cache.

The model's files are the ones hack/images.py converted for the smollm2-hf image (its cache entry,
models/smollm2-135m-instruct)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import wait_until
from testkit.chart import REPO
from testkit.realnode import MODEL, NODE, Cluster, node, production_vllm
from testkit.s3server import S3Server

KEY_SECRET = "smol-s3-api-key"
KEY = "realnode-key"
BUCKET = "models"
PREFIX = "smollm2-135m-instruct"


def model_dir() -> Path:
    """The converted model in the smollm2-hf image's cache entry (built if missing)."""
    entry = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "path", "smollm2-hf"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = Path(entry) / "models" / PREFIX
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file(), path
    return path


@pytest.fixture(scope="module")
def store(real_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """versitygw on the node's bridge address, the model under s3://models/smollm2-135m-instruct/
    (the weights with a SHA-256 checksum, the rest with their ETags)."""
    server = S3Server(tmp_path_factory.mktemp("versitygw"), host=node.NODE_IP)
    server.start()
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(model_dir().iterdir()):
            extra = {"ChecksumAlgorithm": "SHA256"} if path.suffix == ".safetensors" else {}
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{path.name}", Body=path.read_bytes(), **extra)
        yield server
    finally:
        server.stop()


def pods_of(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={name}")
        if not p["metadata"].get("deletionTimestamp")
    ]


def ask(cluster: Cluster, ns: str, images: dict[str, str], service: str, pod: str) -> str:
    env = [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "api-key"}}}]
    args = ["python3", "/app/client_openai.py", "--namespace", ns, "--service", service, "--model", MODEL]
    return cluster.run_pod(ns, pod, images["client"], [*args, "What is the capital of France?"], env)


def test_vllm_serves_a_model_from_an_s3_bucket_and_restarts_without_it(
    cluster: Cluster,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
    store: S3Server,
) -> None:
    ns = new_namespace("s3")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, f"--from-literal=api-key={KEY}")
    # A reader of its own on the server, its keys in a Secret the download step gets by reference.
    reader, secret = f"reader{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    store.create_user(reader, secret)
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "models-s3",
        "-n",
        ns,
        f"--from-literal=AWS_ACCESS_KEY_ID={reader}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}",
    )
    source = {
        "s3": {
            "url": f"s3://{BUCKET}/{PREFIX}",
            "endpoint": store.endpoint,
            "credentialsSecretRef": {"name": "models-s3"},
        }
    }
    cluster.apply(ns, production_vllm("smol", images, KEY_SECRET, model={"name": MODEL, "source": source}))
    cluster.wait_ready("smol", ns, "vllm", timeout=900)

    (pod,) = pods_of(cluster, ns, "smol")
    name, spec = pod["metadata"]["name"], pod["spec"]
    assert spec["nodeName"] == NODE
    step = next(c for c in spec["initContainers"] if c["name"] == "download-model")
    # The operator's own image (the chart passed it with --download-image), not vLLM's.
    assert step["image"] == images["llmstage"] and step["command"] == ["python", "-m", "llmstage.fetch"]
    log = cluster.kubectl("logs", name, "-n", ns, "-c", "download-model")
    print(log)
    assert "signing requests with the Secret of credentialsSecretRef" in log
    assert "model.safetensors: 269060552 bytes, checked: sha256 from x-amz-checksum-sha256" in log
    assert "config.json: 818 bytes, checked: md5 from the ETag" in log
    server = next(c for c in spec["containers"] if c["name"] == "server")
    assert server["args"][0] == f"/models/s3/{BUCKET}/{PREFIX}"

    answer = ask(cluster, ns, images, "smol", "client")
    print(f"vLLM answered from the bucket's copy: {answer.strip()!r}")
    assert len(answer.split()) >= 3 and "failed" not in answer, answer

    # The store goes away; the pod is replaced and starts from what the cache volume holds.
    store.stop()
    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false")

    def replaced_and_ready() -> dict[str, Any] | None:
        fresh = [p for p in pods_of(cluster, ns, "smol") if p["metadata"]["name"] != name]
        if not fresh:
            return None
        statuses = fresh[0].get("status", {}).get("containerStatuses") or []
        return fresh[0] if statuses and all(c["ready"] for c in statuses) else None

    restarted = wait_until(replaced_and_ready, timeout=600, interval=2, what=f"a new Ready pod of {ns}/smol")
    log = cluster.kubectl("logs", restarted["metadata"]["name"], "-n", ns, "-c", "download-model")
    print(log)
    assert "the cache holds the 6 files of the last complete download: starting from them" in log
    answer = ask(cluster, ns, images, "smol", "client-again")
    assert len(answer.split()) >= 3 and "failed" not in answer, answer
