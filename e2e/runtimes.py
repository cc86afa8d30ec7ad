"""What the e2e scenarios run, on the cluster they are given.

On the local cluster's kwok nodes (`make e2e`) no container runs: the repository's examples are
applied as they are, and the scenarios check objects and statuses.

On kind (`make e2e-kind`, hack/e2e_kind.py) containers run, on a node of 2 to 4 CPUs and no GPU,
where the examples ask for Llama 3.1 8B with 2 to 4 CPUs, 9 to 24 GiB and an H100. So each example
is applied with what such a node can serve, set by the environment hack/e2e_kind.py writes:

  LLMSTAGE_E2E_OLLAMA_MODEL     the Ollama stages (dev, staging) serve this model, for real, under
                                the example's name (spec.servedModelName): clients send the same
                                model name in every stage, as with the example's model
  LLMSTAGE_E2E_OLLAMA_REGISTRY  where Ollama pulls it from (plain HTTP), when not registry.ollama.ai
  LLMSTAGE_E2E_VLLM_IMAGE       the vLLM stages run this image, e2e/fake-llm: vLLM's GPU image cannot
                                run without a GPU (the node advertises fake nvidia.com/gpu, so the
                                pods schedule as on a GPU node); it answers with canned text
  LLMSTAGE_E2E_CLIENT_IMAGE     the image of the client pods (Python with the OpenAI SDK and the
                                repository's client programs)

and with small CPU and memory requests (the GPU request stays). A runtime that cannot run is the
only stand-in; everything else (the operator from its image, Ollama, the gateway, the Service,
kube-proxy, DNS) is real.
"""

from __future__ import annotations

import copy
import os
from typing import Any

OLLAMA_MODEL = os.environ.get("LLMSTAGE_E2E_OLLAMA_MODEL", "")
OLLAMA_REGISTRY = os.environ.get("LLMSTAGE_E2E_OLLAMA_REGISTRY", "")
VLLM_IMAGE = os.environ.get("LLMSTAGE_E2E_VLLM_IMAGE", "")
CLIENT_IMAGE = os.environ.get("LLMSTAGE_E2E_CLIENT_IMAGE", "")
# Containers run (kind): the scenarios that need answers from pods run too.
CONTAINERS_RUN = bool(OLLAMA_MODEL and VLLM_IMAGE and CLIENT_IMAGE)
WHY_NOT = "no container runs on kwok nodes (make e2e-kind runs it on kind)"

# Requests a CI node holds several of at once. Ollama's memory is what ModelFits asks for the
# 135M model at its 8192-token context (weights, KV cache, Ollama's overhead).
OLLAMA_RESOURCES = {"cpu": "100m", "memory": "2Gi"}
STAND_IN_RESOURCES = {"cpu": "50m", "memory": "256Mi"}


def runtime_of(spec: dict[str, Any]) -> str:
    return str(spec.get("runtime") or ("vllm" if spec.get("stage") == "production" else "ollama"))


def for_this_cluster(doc: dict[str, Any]) -> dict[str, Any]:
    """An LLMService as the scenarios apply it here (unchanged where no container runs)."""
    if not CONTAINERS_RUN:
        return doc
    doc = copy.deepcopy(doc)
    spec = doc["spec"]
    gpu = (spec.get("resources") or {}).get("gpu")
    if runtime_of(spec) == "ollama":
        spec.setdefault("servedModelName", spec["model"]["name"])
        spec["model"] = {"name": OLLAMA_MODEL}
        if OLLAMA_REGISTRY:
            spec.setdefault("ollama", {})["registry"] = {"host": OLLAMA_REGISTRY, "insecure": True}
        spec["resources"] = dict(OLLAMA_RESOURCES)
    else:
        spec.setdefault("vllm", {})["image"] = VLLM_IMAGE
        spec["resources"] = dict(STAND_IN_RESOURCES)
    if gpu:
        spec["resources"]["gpu"] = gpu
    spec.setdefault("cache", {})["size"] = "1Gi"
    return doc
