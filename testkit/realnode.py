"""Helpers of the real-node tier (tests/realnode): the node's facts from hack/realnode/, kubectl
as a user types it, and the LLMService the tests serve."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from testkit.chart import REPO
from testkit.user import User

sys.path.insert(0, str(REPO / "hack"))
import realnode as node

NODE = node.NODE_NAME
REGISTRY = node.REGISTRY  # where this machine pushes
REGISTRY_IN_CLUSTER = node.REGISTRY_SERVICE  # what pods pull from themselves
SCHEDULING: dict[str, Any] = {
    "nodeSelector": {node.NODE_LABEL[0]: node.NODE_LABEL[1]},
    "tolerations": [{"key": node.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
MODEL = "smollm2:135m"
# Where hack/vllm-cpu/make_model.py puts the model and the LoRA adapter in the smollm2-hf image.
HF_MODEL_PATH = "/models/smollm2-135m-instruct"
LORA_PATH = "/models/smollm2-135m-lora"
# vLLM on the 2-CPU node: eager (a start in about a minute instead of four), a context the KV
# cache holds, one OpenMP thread (the CPU request less the API server's core).
VLLM_ON_THE_NODE: dict[str, Any] = {"enforceEager": True, "maxModelLen": 2048}


def images_push(*names: str) -> dict[str, dict[str, str]]:
    """Build (cached) and push images to the local registry: name -> reference, repository, tag."""
    res = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", REGISTRY, "--json", *names],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"hack/images.py push failed:\n{res.stderr[-3000:]}"
    return json.loads(res.stdout)


class Cluster(User):
    """The shared kubectl user, plus pods that run to completion on the real node."""

    def wait_ready(
        self, name: str, ns: str, runtime: str, timeout: float = 300, interval: float = 1.0
    ) -> dict[str, Any]:
        # Real pods pull and load a model: a longer default wait than on kwok nodes.
        return super().wait_ready(name, ns, runtime, timeout, interval)

    def run_pod(
        self,
        ns: str,
        name: str,
        image: str,
        args: list[str],
        env: list[dict[str, Any]] | None = None,
        volumes: dict[str, dict[str, Any]] | None = None,
        scheduling: dict[str, Any] | None = None,
        timeout: float = 300,
    ) -> str:
        """A pod on the real node that runs `args` to completion (User.run_pod); its log."""
        return super().run_pod(ns, name, image, args, env, volumes, scheduling or SCHEDULING, timeout)


def dev_service(name: str, images: dict[str, str], **spec: Any) -> dict[str, Any]:
    """A dev LLMService of the small model on the real node, pulling from the local registry."""
    base: dict[str, Any] = {
        "stage": "dev",
        "model": {"name": MODEL},
        "ollama": {"registry": {"host": REGISTRY_IN_CLUSTER, "insecure": True}},
        # The real node has 2 CPUs; the defaults are sized for a real model on a real server.
        # 2Gi is what ModelFits asks for (weights, an 8192-token KV cache and Ollama's overhead).
        "resources": {"cpu": "500m", "memory": "2Gi"},
        "cache": {"storageClassName": "real-local", "size": "1Gi"},
        "scheduling": SCHEDULING,
        # Used once promoted to production (vLLM's CPU image): where its weights come from (Ollama
        # pulls the tag above) and how it runs on this node.
        "vllm": dict(VLLM_ON_THE_NODE),
    }
    base["model"] = {
        **base["model"],
        "source": {"oci": {"image": images["smollm2-hf"], "path": HF_MODEL_PATH}},
    }
    for key, value in spec.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": base,
    }


def production_vllm(name: str, images: dict[str, str], key_secret: str, **spec: Any) -> dict[str, Any]:
    """A production LLMService on vLLM's CPU image on the real node, its API key from `key_secret`."""
    service = dev_service(
        name,
        images,
        stage="production",
        runtime="vllm",
        replicas=1,
        expectedConcurrency=2,
        vllm={"apiKeySecretRef": {"name": key_secret}},
    )
    # One core (the node has two, and Ollama, the operator and CoreDNS run there too); the memory
    # is the fit's (weights, KV cache and vLLM's processes), not the Ollama-sized default above.
    service["spec"]["resources"] = {"gpu": {"count": 0}, "cpu": "1"}
    for key, value in spec.items():
        base = service["spec"]
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return service
