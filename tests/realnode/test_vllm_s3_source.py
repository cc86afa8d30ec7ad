"""The `s3` model source for real: the real vLLM (its CPU image) on the real node serves
SmolLM2-135M-Instruct from a bucket of a real S3 server, versitygw v1.8.0 built from its Go module
(hack/tools/versitygw, `make tools`), run by testkit/s3server.py as a process on this machine.

How the pod reaches it: versitygw listens on the node's bridge address (10.88.0.1, the pods'
gateway on `llmstage0`, hack/realnode/config.py NODE_IP), where pods reach it as they would a store
in the cluster's network; the rendered NetworkPolicy admits ingress only and leaves egress open,
so kube-router lets the download step's connections out. Credentials by reference: an account of
the server's own, its keys in a Secret that credentialsSecretRef names, which the kubelet puts into
the download step's environment (the operator never reads Secrets).

The download step runs as rendered: in the operator's image (the chart passes it to the operator
with --download-image), each file checked against its checksum or ETag. Then the store stops and
the pod is replaced: the new pod starts from the cache that the claim kept.

The model's files are the ones hack/images.py converted for the smollm2-hf image (its cache entry,
models/smollm2-135m-instruct), the same that the `oci` source of test_vllm.py mounts."""

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

# A vLLM start on one core of the shared 2-CPU node, the image pull included the first time, twice
# (the first pod and its replacement): the waits inside allow 900 s and 600 s.
pytestmark = pytest.mark.timeout(2400)

KEY_SECRET = "smol-api-key"
CREDENTIALS_SECRET = "models-s3"
BUCKET = "models"
PREFIX = "smollm2-135m-instruct"
WEIGHTS = "model.safetensors"


def model_dir() -> Path:
    """The converted model in the smollm2-hf image's cache entry (built if missing)."""
    entry = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "path", "smollm2-hf"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = Path(entry) / "models" / PREFIX
    assert (path / "config.json").is_file() and (path / WEIGHTS).is_file(), path
    return path


@pytest.fixture(scope="module")
def store(real_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """versitygw on the node's bridge address, the model under s3://models/smollm2-135m-instruct/:
    the weights uploaded with a SHA-256 checksum, the other files with their ETags only."""
    server = S3Server(tmp_path_factory.mktemp("versitygw"), host=node.NODE_IP)
    server.start()
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(model_dir().iterdir()):
            extra = {"ChecksumAlgorithm": "SHA256"} if path.name == WEIGHTS else {}
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{path.name}", Body=path.read_bytes(), **extra)
        yield server
    finally:
        server.stop()


def serving_pods(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={name}")
        if not p["metadata"].get("deletionTimestamp")
    ]


def ask(cluster: Cluster, ns: str, images: dict[str, str], pod: str) -> str:
    key = [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "api-key"}}}]
    answer = cluster.run_pod(
        ns,
        pod,
        images["client"],
        ["python3", "/app/client_openai.py", "--namespace", ns, "--service", "smol", "--model", MODEL,
         "What is the capital of France? Answer in one sentence."],
        key,
    )  # fmt: skip
    assert len(answer.split()) >= 3 and "failed" not in answer, answer
    return answer.strip()


def test_vllm_serves_a_model_from_an_s3_bucket_and_restarts_without_the_store(
    cluster: Cluster,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
    store: S3Server,
) -> None:
    files = {p.name: p.stat().st_size for p in model_dir().iterdir() if p.is_file()}
    ns = new_namespace("s3")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, "--from-literal=api-key=s3-key")
    # A reader of its own on the server, its keys in a Secret the download step gets by reference.
    reader, secret = f"reader{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    store.create_user(reader, secret)
    cluster.kubectl(
        "create", "secret", "generic", CREDENTIALS_SECRET, "-n", ns,
        f"--from-literal=AWS_ACCESS_KEY_ID={reader}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}",
    )  # fmt: skip
    source = {
        "s3": {
            "url": f"s3://{BUCKET}/{PREFIX}",
            "endpoint": store.endpoint,
            "credentialsSecretRef": {"name": CREDENTIALS_SECRET},
        }
    }
    cluster.apply(ns, production_vllm("smol", images, KEY_SECRET, model={"name": MODEL, "source": source}))
    cluster.wait_ready("smol", ns, "vllm", timeout=900)

    (pod,) = serving_pods(cluster, ns, "smol")
    name, spec = pod["metadata"]["name"], pod["spec"]
    assert spec["nodeName"] == NODE
    step = next(c for c in spec["initContainers"] if c["name"] == "download-model")
    # The operator's own image (the chart passed it with --download-image), not vLLM's.
    assert step["image"] == images["llmstage"] and step["command"] == ["python", "-m", "llmstage.fetch"]
    # The keys only by reference: the pod spec names the Secret, never its values.
    keys = {e["name"]: e for e in step["env"] if e["name"].endswith(("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"))}
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in keys.values()} == {CREDENTIALS_SECRET}, keys
    assert not any("value" in e for e in keys.values()) and secret not in str(spec)
    log = cluster.kubectl("logs", name, "-n", ns, "-c", "download-model")
    print(log)
    assert "signing requests with the Secret of credentialsSecretRef" in log
    assert f"{WEIGHTS}: {files[WEIGHTS]} bytes, checked: sha256 from x-amz-checksum-sha256" in log
    assert f"config.json: {files['config.json']} bytes, checked: md5 from the ETag" in log
    assert f"{len(files)} files of s3://{BUCKET}/{PREFIX}/ are in the cache" in log
    server = next(c for c in spec["containers"] if c["name"] == "server")
    assert server["args"][0] == f"/models/s3/{BUCKET}/{PREFIX}"
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert statuses["server"]["restartCount"] == 0, statuses["server"]
    print(f"vLLM answered from the bucket's copy: {ask(cluster, ns, images, 'client')!r}")

    # The store goes away; the pod is replaced and starts from what the cache claim holds.
    store.stop()
    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false")

    def replaced_and_ready() -> dict[str, Any] | None:
        fresh = [p for p in serving_pods(cluster, ns, "smol") if p["metadata"]["name"] != name]
        if not fresh:
            return None
        statuses = fresh[0].get("status", {}).get("containerStatuses") or []
        return fresh[0] if statuses and all(c["ready"] for c in statuses) else None

    restarted = wait_until(replaced_and_ready, timeout=600, interval=2, what=f"a new Ready pod of {ns}/smol")
    log = cluster.kubectl("logs", restarted["metadata"]["name"], "-n", ns, "-c", "download-model")
    print(log)
    assert f"the cache holds the {len(files)} files of the last complete download: starting from them" in log
    assert f"downloading {WEIGHTS}" not in log, log
    print(f"vLLM answered from the cache, the store gone: {ask(cluster, ns, images, 'client-again')!r}")
