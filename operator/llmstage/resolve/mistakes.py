"""The article's common mistakes: specs that run, but badly, reported as `Finding`s.

    common_mistakes(...) -> list[Finding]      pure; called by `resolve` once the spec is resolved

Each finding ends up in Resolved.warnings, then in the Ready/Warnings conditions and an Event.
Mistakes that would stop the workload from running are SpecErrors in the resolver instead.
"""

from __future__ import annotations

import re

from llmstage.api.constants import AccessMode, ModelFormat, Runtime, Stage
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.catalog import CatalogEntry, parse_ollama_tag
from llmstage.resolve.decision import CONCURRENCY_THRESHOLD, Decision
from llmstage.resolve.resolved import Finding, ModelCache, ModelInfo, VLLMSettings

# Ollama's (llama.cpp's) quantization levels: q4_K_M, q8_0, iq2_xs, ...
_GGUF_QUANT = re.compile(r"^i?q[1-8](_[0-9a-z]+)*$", re.IGNORECASE)
FULL_PRECISION = frozenset({"fp16", "f16", "bf16", "fp32", "f32", "float16", "bfloat16", "float32"})


def is_gguf_quantization(name: str) -> bool:
    """A GGUF (Ollama) quantization level such as q4_K_M: meaningless to vLLM."""
    return _GGUF_QUANT.match(name) is not None


def common_mistakes(  # noqa: PLR0913 - the resolved facts the mistakes read
    spec: LLMServiceSpec,
    stage: Stage,
    runtime: Runtime,
    decision: Decision,
    model: ModelInfo,
    entry: CatalogEntry | None,
    vllm: VLLMSettings | None,
    gpu_count: int,
    cache: ModelCache,
    max_pods: int,
) -> list[Finding]:
    users = spec.expected_concurrency
    out: list[Finding] = []
    if runtime == Runtime.OLLAMA:
        why = "runtime ollama is set explicitly" if spec.runtime != "auto" else "there is no GPU"
        if stage == Stage.PRODUCTION:
            out.append(
                Finding(
                    "OllamaInProduction",
                    f"stage production runs Ollama because {why}: it works until traffic spikes, then "
                    "requests queue and latency climbs; give it a GPU (spec.resources.gpu) and use "
                    "runtime auto or vllm",
                )
            )
        if users > CONCURRENCY_THRESHOLD:
            out.append(
                Finding(
                    "TooManyUsersForOllama",
                    f"{users} expected users > {CONCURRENCY_THRESHOLD} on Ollama ({why}): Ollama's "
                    f"throughput stays flat beyond about {CONCURRENCY_THRESHOLD} parallel requests; "
                    "vLLM keeps scaling, so add a GPU and use runtime auto or vllm",
                )
            )
        quant = (model.quantization or "").lower()
        if model.format == ModelFormat.SAFETENSORS or quant in FULL_PRECISION:
            what = f"quantization {model.quantization}" if quant in FULL_PRECISION else "safetensors weights"
            out.append(
                Finding(
                    "FullPrecisionOnOllama",
                    f"{what} on Ollama: Ollama is built for GGUF quantized models; full precision "
                    "needs about 3x the memory and runs slower, especially on CPU; use a quantized tag "
                    "such as q4_K_M or q8_0",
                )
            )
        asked_quant = spec.model.quantization
        tag_quant = parse_ollama_tag(model.ollama_tag).quantization
        if (
            asked_quant
            and is_gguf_quantization(asked_quant)
            and (tag_quant or "").lower() != asked_quant.lower()
        ):
            out.append(
                Finding(
                    "QuantizationNotInTag",
                    f"spec.model.quantization {asked_quant} does not change what Ollama pulls "
                    f"({model.ollama_tag}): put it in the tag, e.g. spec.model.name "
                    f"{parse_ollama_tag(model.ollama_tag).base}-instruct-{asked_quant}",
                )
            )
    else:
        assert vllm is not None
        asked_quant = spec.model.quantization
        # GGUF weights on vLLM are refused in resolve/vllm.py (the pinned vLLM has no GGUF loader).
        if asked_quant and is_gguf_quantization(asked_quant):
            out.append(
                Finding(
                    "GGUFOnVLLM",
                    f"spec.model.quantization {asked_quant} is a GGUF (Ollama) quantization; vLLM "
                    f"serves {model.hugging_face_id or 'the source weights'} in {vllm.dtype} instead: set "
                    "spec.vllm.quantization fp8 to quantize on vLLM, or an AWQ/GPTQ checkpoint in "
                    "spec.model.huggingFaceId",
                )
            )
        if users <= 1 and stage != Stage.PRODUCTION:
            out.append(
                Finding(
                    "VLLMForSingleUser",
                    f"vLLM for a single user in stage {stage} ({decision.reason}): massive overhead "
                    "for no benefit (slower startup, more configuration, same output); use runtime "
                    "auto, which picks Ollama here",
                )
            )
        if vllm.tensor_parallel_size < gpu_count:
            out.append(
                Finding(
                    "GPUsIdle",
                    f"tensorParallelSize {vllm.tensor_parallel_size} < {gpu_count} GPUs per replica: "
                    f"{gpu_count - vllm.tensor_parallel_size} GPUs sit idle; raise "
                    "spec.vllm.tensorParallelSize or lower spec.resources.gpu.count",
                )
            )
        # Only the Hub gates: a claim, a bucket or an image holds the files already.
        if entry and entry.gated and spec.hugging_face_token_secret_ref is None and model.source is None:
            out.append(
                Finding(
                    "GatedModelWithoutToken",
                    f"{model.hugging_face_id} is gated on Hugging Face: the download fails without a "
                    "token; set spec.huggingFaceTokenSecretRef (or pre-fill the cache)",
                )
            )
    # A claim per pod is ReadWriteOnce by design; a user's claim (claimName) has a mode of its own.
    if cache.shared_single_attach and cache.claim_name is None and max_pods > 1:
        who = "pods on other nodes" if cache.access_mode == AccessMode.READ_WRITE_ONCE else "a second pod"
        out.append(
            Finding(
                "SharedReadWriteOnceCache",
                f"up to {max_pods} pods share a {cache.access_mode} model cache: {who} cannot attach it; "
                "remove spec.cache.mode and accessMode (a claim per pod), use spec.cache.accessMode "
                "ReadWriteMany with a class that supports it, or a single replica",
            )
        )
    return out
