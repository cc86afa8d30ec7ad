"""Model sources of the real vLLM (its CPU image) on the real node, beside the `oci` image volume
that tests/realnode/test_vllm.py serves from: weights on a claim (`pvc`), and the Hugging Face
cache of the default source filled, with no route to the Hub (this machine has none).

Each test fills a claim of class real-local from the smollm2-hf image (mounted as an image
volume in a pod of the client image), as a user's copy job or an earlier start would, then
applies a production LLMService and asks it through the Service with the API key. The real
kubelet mounts the claims; nothing here is a stand-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from testkit.realnode import HF_MODEL_PATH, Cluster, production_vllm

# A vLLM start on one core of the shared 2-CPU node, the image pull included the first time: the
# waits inside allow 900 s, so the suite's 600 s per test would cut them.
pytestmark = pytest.mark.timeout(1800)


KEY_SECRET = "smol-api-key"
REPO_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the catalog maps smollm2:135m to
# A commit id for refs/main: huggingface_hub resolves a revision through refs/ and reads
# snapshots/<commit>/ (file_download.py); any 40 hex digits name the snapshot the fill writes.
COMMIT = "0" * 40

# Copies the model directory of the smollm2-hf image (/src) into the claim (/dst); with a third and
# fourth argument, also writes that file with that content (the cache's refs/main).
COPY = """
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
if len(sys.argv) > 3:
    os.makedirs(os.path.dirname(sys.argv[3]), exist_ok=True)
    with open(sys.argv[3], "w") as f:
        f.write(sys.argv[4])
print("copied", sorted(os.listdir(dst)))
"""


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "real-local",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def fill(cluster: Cluster, ns: str, images: dict[str, str], claim_name: str, dest: str, *extra: str) -> None:
    """The model's Hugging Face files from the smollm2-hf image into claim_name at dest."""
    cluster.apply(ns, claim(claim_name))
    cluster.run_pod(
        ns,
        f"fill-{claim_name}",
        images["client"],
        ["python3", "-c", COPY, f"/src{HF_MODEL_PATH}", f"/dst/{dest.strip('/')}", *extra],
        volumes={
            "/src": {"image": {"reference": images["smollm2-hf"], "pullPolicy": "IfNotPresent"}},
            "/dst": {"persistentVolumeClaim": {"claimName": claim_name}},
        },
    )


def ask(cluster: Cluster, ns: str, images: dict[str, str], name: str) -> str:
    key = [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "api-key"}}}]
    answer = cluster.run_pod(
        ns,
        "client",
        images["client"],
        ["python3", "/app/client_openai.py", "--namespace", ns, "--service", name, "--model", "smollm2:135m",
         "What is the capital of France? Answer in one sentence."],
        key,
    )  # fmt: skip
    assert len(answer.split()) >= 3 and "failed" not in answer, answer
    return answer.strip()


def test_weights_on_a_claim_are_served_read_only_without_a_download(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    ns = new_namespace("pvc")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, "--from-literal=api-key=pvc-key")
    fill(cluster, ns, images, "weights", "/smollm2")
    service = production_vllm("smol", images, KEY_SECRET)
    service["spec"]["model"]["source"] = {"pvc": {"claimName": "weights", "path": "/smollm2"}}
    cluster.apply(ns, service)
    cluster.wait_ready("smol", ns, "vllm", timeout=900)

    pod = next(p for p in cluster.pods(ns, "app.kubernetes.io/instance=smol") if p["status"].get("phase"))
    spec = pod["spec"]
    server = next(c for c in spec["containers"] if c["name"] == "server")
    # No download step for a pvc source without adapters; the claim is mounted read-only.
    assert not [c["name"] for c in spec.get("initContainers") or [] if c["name"].startswith("download")]
    source = next(
        v for v in spec["volumes"] if (v.get("persistentVolumeClaim") or {}).get("claimName") == "weights"
    )
    mount = next(m for m in server["volumeMounts"] if m["name"] == source["name"])
    assert source["persistentVolumeClaim"].get("readOnly") or mount.get("readOnly"), (source, mount)
    print(f"vLLM from a claim answered: {ask(cluster, ns, images, 'smol')!r}")


def test_a_filled_hugging_face_cache_starts_without_the_hub(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    """The default source (the Hub) with the cache already holding the repository, as a restart
    finds it: the download step must not ask huggingface.co (which this machine cannot reach: a
    list of the repository's files, as every start made before, fails here) and vLLM serves offline."""
    ns = new_namespace("hub")
    cluster.kubectl("create", "secret", "generic", KEY_SECRET, "-n", ns, "--from-literal=api-key=hub-key")
    repo_dir = f"huggingface/hub/models--{REPO_ID.replace('/', '--')}"
    fill(
        cluster,
        ns,
        images,
        "hf-cache",
        f"{repo_dir}/snapshots/{COMMIT}",
        f"/dst/{repo_dir}/refs/main",
        COMMIT,
    )
    service = production_vllm("smol", images, KEY_SECRET, cache={"claimName": "hf-cache"})
    del service["spec"]["model"]["source"]  # the Hub, through the catalog's repository id
    service["spec"]["cache"].pop("storageClassName", None)
    service["spec"]["cache"].pop("size", None)
    cluster.apply(ns, service)
    cluster.wait_ready("smol", ns, "vllm", timeout=900)

    pod = next(p for p in cluster.pods(ns, "app.kubernetes.io/instance=smol") if p["status"].get("phase"))
    log = cluster.kubectl("logs", pod["metadata"]["name"], "-n", ns, "-c", "download-model")
    assert "the Hub is not asked" in log and "downloading" not in log, log
    print(f"vLLM from the filled Hugging Face cache answered: {ask(cluster, ns, images, 'smol')!r}")
