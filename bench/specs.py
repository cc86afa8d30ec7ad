"""Mixed-stage LLMService specs sized for kwok capacity, and what the operator should make of them.

Two in five are dev (Ollama on CPU), two in five staging (Ollama on CPU, HPA 1-2), one in five
production (vLLM on one fake H100, replicas fixed at 1 so the GPU count stays N/5). Every pod is
pinned to the benchmark's own nodes (node selector + toleration of their taint): the shared
nodes of the test bed stay free for the other test sessions.
"""

from __future__ import annotations

from typing import Any

from testkit.check import rendered as rendered  # the children of one spec, for bench's phases

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
API_KEY_SECRET = "llm-api-key"
BENCH_NODE_LABEL = "llmstage.io/bench-node"
H100 = "NVIDIA-H100-80GB-HBM3"
STAGES = ("dev", "dev", "staging", "staging", "production")
MODELS = ("llama3.1:8b", "qwen2.5:7b", "mistral:7b", "gemma2:9b")
HF_IDS = {
    "llama3.1:8b": "meta-llama/Llama-3.1-8B-Instruct",
    "qwen2.5:7b": "Qwen/Qwen2.5-7B-Instruct",
    "mistral:7b": "mistralai/Mistral-7B-Instruct-v0.3",
    "gemma2:9b": "google/gemma-2-9b-it",
}


def pinned(run_id: str) -> dict[str, Any]:
    """spec.scheduling that keeps pods on the nodes of benchmark run `run_id`."""
    return {
        "nodeSelector": {BENCH_NODE_LABEL: run_id},
        "tolerations": [{"key": BENCH_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
    }


def spec(i: int, scheduling: dict[str, Any] | None = None) -> dict[str, Any]:
    stage = STAGES[i % len(STAGES)]
    model = MODELS[(i // len(STAGES)) % len(MODELS)]
    s: dict[str, Any] = {"stage": stage, "model": {"name": model}}
    if stage == "staging":
        s["expectedConcurrency"] = 4
    if stage == "production":
        s["model"]["huggingFaceId"] = HF_IDS[model]
        s["replicas"] = 1
        s["resources"] = {"gpu": {"count": 1, "product": H100}}
        s["vllm"] = {"maxModelLen": 8192, "apiKeySecretRef": {"name": API_KEY_SECRET}}
    if scheduling:
        s["scheduling"] = scheduling
    return s


def llmservice(name: str, spec_: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMService", "metadata": meta, "spec": spec_}


def gpus(n: int) -> int:
    return sum(1 for i in range(n) if STAGES[i % len(STAGES)] == "production")
