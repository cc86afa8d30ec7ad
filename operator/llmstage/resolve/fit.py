"""Will the model fit? Weights + KV cache + overhead against GPU (vLLM, Ollama on GPU) or container memory.

    weights   = parameters x bytes per parameter (dtype, or the quantization's bits / 8)
    KV cache  = maxModelLen x sequences x (2 x layers x kvHeads x headDim x bytes per element)
    overhead  = CUDA context, activations, CUDA graphs: a fixed reserve per GPU (vLLM) or per process (Ollama)
    available = GPU memory (per product, as nvidia-smi reports it) x count x gpuMemoryUtilization

vLLM's KV cache is paged and shared by the running sequences; its batch (--max-num-seqs, 256 by
default in vLLM 0.12.0) is not preallocated. So the vLLM fit asks whether the memory left after the
weights holds the expected concurrent users of a replica at full context length; fewer short
requests, or many more, batch in the same pages. Bytes per KV element follow --kv-cache-dtype
(fp8: 1) and otherwise the model's dtype.

The article's "ignoring memory requirements" mistake: an undersized GPU either refuses to start
(DoesNotFit) or, worse, starts and batches fewer sequences than the expected users need
(KVCacheLimitsConcurrency), losing vLLM's throughput advantage. Both come with the numbers and a
suggestion. Everything is in GiB (2^30 bytes). Pure functions only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from llmstage.api.constants import MAX_GPUS, MAX_NODES
from llmstage.resolve.gpu_capability import FP8_KV_CACHE_MIN, FP8_WEIGHTS_MIN, compute_capability
from llmstage.resolve.resolved import MemoryFit

GIB = 2**30
VLLM_OVERHEAD_PER_GPU_GIB = 1.5  # non-torch memory + activation peak vLLM profiles for; about 1-2 GiB
OLLAMA_OVERHEAD_GIB = 1.0  # llama.cpp compute buffers and the server process
MAX_GPUS_PER_POD = MAX_GPUS

# Total memory per GPU as nvidia-smi reports it (MiB), which is what vLLM's utilisation applies to.
# Keys are the product tokens of nvidia.com/gpu.product label values (NVIDIA-H100-80GB-HBM3 -> H100).
GPU_MEMORY_MIB: dict[str, int] = {
    "T4": 15360,
    "L4": 23034,  # "24 GB"
    "A10": 23028,
    "A10G": 23028,  # "24 GB" (AWS g5)
    "L40": 46068,
    "L40S": 46068,  # "48 GB"
    "A100-40GB": 40960,
    "A100-80GB": 81920,
    "H100": 81559,  # "80 GB" (SXM and PCIe)
    "H100-NVL": 95830,  # "94 GB"
    "H200": 143771,  # "141 GB"
}

# Bytes per element of unquantized weights and KV cache.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float": 4,
    "fp32": 4,
    "f32": 4,
    "float16": 2,
    "half": 2,
    "fp16": 2,
    "f16": 2,
    "bfloat16": 2,
    "bf16": 2,
}

# Effective bits per weight, including block scales: GGUF (llama.cpp) and vLLM quantizations.
QUANTIZATION_BITS: dict[str, float] = {
    "q2_k": 3.35,
    "q3_k_s": 3.5,
    "q3_k_m": 3.91,
    "q3_k_l": 4.27,
    "q4_0": 4.5,
    "q4_1": 5.0,
    "q4_k_s": 4.58,
    "q4_k_m": 4.85,
    "q5_0": 5.5,
    "q5_1": 6.0,
    "q5_k_s": 5.54,
    "q5_k_m": 5.69,
    "q6_k": 6.56,
    "q8_0": 8.5,
    "awq": 4.25,
    "awq_marlin": 4.25,
    "gptq": 4.25,
    "gptq_marlin": 4.25,
    "bitsandbytes": 4.5,
    "fp8": 8,
    # vLLM 0.32's online methods (vllm/config/quantization.py _ONLINE_SHORTHANDS).
    "fp8_per_tensor": 8,
    "fp8_per_channel": 8,
    "fp8_per_block": 8,
    "int8_per_channel_weight_only": 8,
    "mxfp8": 8.25,
    "mxfp4": 4.25,
    "nvfp4_per_token": 4.5,
    "int8": 8,
    "w8a8": 8,
    "experts_int8": 8,
    **{name: 8 * b for name, b in DTYPE_BYTES.items()},
}


class FitReason(StrEnum):
    FITS = "Fits"
    # Starts, but the KV cache holds fewer full-length sequences than the expected users: requests queue.
    KV_CACHE_LIMITS_CONCURRENCY = "KVCacheLimitsConcurrency"
    DOES_NOT_FIT = "DoesNotFit"  # will not start (vLLM) or gets OOM-killed (Ollama on CPU)
    PARTIAL_GPU_OFFLOAD = "PartialGPUOffload"  # Ollama runs the remaining layers on the CPU: slow
    UNKNOWN_MODEL = "UnknownModelShape"
    UNKNOWN_GPU = "UnknownGPUProduct"
    UNKNOWN_QUANTIZATION = "UnknownQuantization"


@dataclass(frozen=True)
class ModelShape:
    """What the fit check needs to know about a model."""

    parameters_billion: float
    layers: int
    kv_heads: int
    head_dim: int

    def kv_bytes_per_token(self, bytes_per_element: float = 2) -> float:
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_element

    def weights_gib(self, bytes_per_parameter: float) -> float:
        return self.parameters_billion * 1e9 * bytes_per_parameter / GIB


@dataclass(frozen=True)
class FitReport:
    fits: bool | None
    reason: FitReason
    message: str
    weights_gib: float | None = None
    kv_cache_gib: float | None = None
    overhead_gib: float | None = None
    required_gib: float | None = None
    available_gib: float | None = None
    # How many sequences of the full context the memory left for the KV cache holds.
    full_length_sequences: int | None = None

    def to_memory_fit(self) -> MemoryFit:
        return MemoryFit(fits=self.fits, reason=self.reason.value, message=self.message)


def gpu_memory_gib(product: str) -> float | None:
    """Memory of one GPU from an nvidia.com/gpu.product label value; None when unknown.

    Handles GPU feature discovery's spellings: NVIDIA-L4, NVIDIA-A10G, NVIDIA-L40S,
    NVIDIA-A100-SXM4-40GB, NVIDIA-A100-80GB-PCIe, NVIDIA-H100-80GB-HBM3, NVIDIA-H100-NVL,
    NVIDIA-H200, Tesla-T4, the "-SHARED" suffix of time-sliced GPUs and MIG slices (…-MIG-3g.40gb).
    """
    upper = product.upper().removesuffix("-SHARED")
    mig = re.search(r"-MIG-\d+G\.(\d+)GB$", upper)
    if mig:
        return float(mig.group(1))  # the slice's memory as its profile names it, e.g. 3g.40gb
    tokens = set(upper.split("-"))
    key: str | None = None
    if "H200" in tokens:
        key = "H200"
    elif "H100" in tokens:
        key = "H100-NVL" if "NVL" in tokens else "H100"
    elif "A100" in tokens:
        key = "A100-80GB" if "80GB" in tokens else "A100-40GB"
    else:
        key = next((k for k in ("L40S", "L40", "L4", "A10G", "A10", "T4") if k in tokens), None)
    return GPU_MEMORY_MIB[key] / 1024 if key else None


def bytes_per_parameter(
    quantization: str | None, dtype: str | None, native_dtype: str = "bfloat16"
) -> float | None:
    """Bytes of one weight: from the quantization when there is one, else the dtype ('auto' = native)."""
    if quantization:
        bits = QUANTIZATION_BITS.get(quantization.lower())
        return None if bits is None else bits / 8
    name = native_dtype if dtype in (None, "auto") else dtype
    return DTYPE_BYTES.get(name.lower(), 2.0)


def layout(nodes: int, gpus_per_node: int, product: str) -> str:
    """A multi-node replica's shape as the fit, `recommend` and the status say it:
    '2 nodes x 8 NVIDIA-H100-80GB-HBM3: TP 8, PP 2' (tensor parallel within a node, pipeline across)."""
    return f"{nodes} nodes x {gpus_per_node} {product}: TP {gpus_per_node}, PP {nodes}"


def _kib(n: float) -> str:
    return f"{n / 1024:.0f} KiB"


def _vllm_required(
    shape: ModelShape, bpp: float, kv_bytes: float, max_model_len: int, seqs: int, gpus: int
) -> float:
    kv = shape.kv_bytes_per_token(kv_bytes) * max_model_len * seqs / GIB
    return shape.weights_gib(bpp) + kv + VLLM_OVERHEAD_PER_GPU_GIB * gpus


# vLLM 0.12.0 EngineArgs._set_default_max_num_seqs_and_batched_tokens_args, OpenAI server.
VLLM_DEFAULT_MAX_NUM_SEQS = "256, or 1024 on 70+ GiB GPUs but A100"


def vllm_fit(  # noqa: C901, PLR0913 - keyword-only: one argument per term of the fit
    shape: ModelShape,
    *,
    bytes_per_param: float,
    max_model_len: int,
    concurrent_sequences: int,
    gpu_product: str,
    gpu_memory_gib_each: float,
    gpu_count: int,
    gpu_memory_utilization: float,
    kv_bytes_per_element: float = 2,
    kv_cache_dtype: str | None = None,
    max_num_seqs: int | None = None,
    nodes: int = 1,
    layout_note: str = "",
) -> FitReport:
    """vLLM on `gpu_count` GPUs of one product on each of `nodes` nodes: weights + overhead, and a KV
    cache for `concurrent_sequences` sequences of max_model_len tokens (the expected users per replica).

    Across nodes the pipeline stages split the layers, so the weights and the KV cache are spread
    over every GPU of the group: the sums are the same, against the memory of all of them."""
    total_gpus = gpu_count * nodes
    weights = shape.weights_gib(bytes_per_param)
    per_token = shape.kv_bytes_per_token(kv_bytes_per_element)
    per_seq = per_token * max_model_len / GIB
    kv = per_seq * concurrent_sequences
    overhead = VLLM_OVERHEAD_PER_GPU_GIB * total_gpus
    required = weights + kv + overhead
    available = gpu_memory_gib_each * total_gpus * gpu_memory_utilization
    room = available - weights - overhead
    full = max(0, math.floor(room / per_seq)) if per_seq > 0 else 0
    kv_note = f", --kv-cache-dtype={kv_cache_dtype}" if kv_cache_dtype else ""
    where = f"{nodes} nodes x {gpu_count}" if nodes > 1 else f"{gpu_count}"
    numbers = (
        f"{weights:.1f} GiB weights + {kv:.1f} GiB KV cache ({concurrent_sequences} x {max_model_len} "
        f"tokens x {_kib(per_token)}{kv_note}) + {overhead:.1f} GiB overhead = {required:.1f} GiB "
        f"{'<=' if required <= available else '>'} {available:.1f} GiB available "
        f"({where} x {gpu_product} {gpu_memory_gib_each:.1f} GiB x {gpu_memory_utilization:g})"
    )
    prefix = f"{layout(nodes, gpu_count, gpu_product)}{layout_note}; " if nodes > 1 else ""
    batch = (
        f"--max-num-seqs={max_num_seqs}"
        if max_num_seqs
        else f"vLLM's default --max-num-seqs ({VLLM_DEFAULT_MAX_NUM_SEQS})"
    )
    report = FitReport(
        True,
        FitReason.FITS,
        f"{prefix}fits: {numbers}; the KV cache holds {full} full-length sequences, shorter ones batch up "
        f"to {batch}",
        weights_gib=weights,
        kv_cache_gib=kv,
        overhead_gib=overhead,
        required_gib=required,
        available_gib=available,
        full_length_sequences=full,
    )
    if required <= available:
        return report

    def enough_for(gpus: int) -> bool:
        need = _vllm_required(
            shape, bytes_per_param, kv_bytes_per_element, max_model_len, concurrent_sequences, gpus
        )
        return need <= gpu_memory_gib_each * gpus * gpu_memory_utilization

    tips: list[str] = []
    bigger = [n for n in (2, 4, 8) if gpu_count < n <= MAX_GPUS_PER_POD]
    enough = next((n for n in bigger if nodes == 1 and enough_for(n)), None)
    if enough:
        tips.append(f"spec.resources.gpu.count {enough} (tensorParallelSize {enough})")
    elif gpu_count == MAX_GPUS_PER_POD:
        more = next((n for n in range(nodes + 1, MAX_NODES + 1) if enough_for(gpu_count * n)), None)
        if more:
            tips.append(f"spec.resources.gpu.nodes {more} ({layout(more, gpu_count, gpu_product)})")
    # Only what the product can run (gpu_capability.py): an unknown product gets every tip.
    capability = compute_capability(gpu_product) or (99, 0)
    if kv_bytes_per_element > 1 and room > 0 and capability >= FP8_KV_CACHE_MIN:
        tips.append("--kv-cache-dtype=fp8 in spec.vllm.extraArgs (halves the KV cache)")
    if room > 0:
        longest = int(room * GIB / (per_token * concurrent_sequences)) // 1024 * 1024
        if longest >= 1024:
            tips.append(f"spec.vllm.maxModelLen {longest}")
    if bytes_per_param > 1:
        fp8 = _vllm_required(shape, 1, kv_bytes_per_element, max_model_len, concurrent_sequences, total_gpus)
        if fp8 <= available and capability >= FP8_WEIGHTS_MIN:
            tips.append(f"spec.vllm.quantization fp8 (weights {shape.weights_gib(1):.1f} GiB)")
        else:
            tips.append(f"a 4-bit AWQ/GPTQ checkpoint (weights {shape.weights_gib(4.25 / 8):.1f} GiB)")
    if not tips:
        tips.append("a GPU product with more memory")
    try_text = "; try " + " or ".join(tips)
    if full >= 1:
        return replace(
            report,
            fits=False,
            reason=FitReason.KV_CACHE_LIMITS_CONCURRENCY,
            message=f"{prefix}KV cache holds only {full} of {concurrent_sequences} full-length sequences "
            f"(expected users per replica), so long requests queue: {numbers}{try_text}",
        )
    what = "the weights do not fit" if room <= 0 else f"not even one {max_model_len}-token sequence fits"
    return replace(
        report,
        fits=False,
        reason=FitReason.DOES_NOT_FIT,
        message=f"{prefix}{what}, vLLM will not start: {numbers}{try_text}",
    )


# vLLM on CPUs: the API server, engine core and worker processes with torch and the tokenizer,
# besides weights and KV cache. SmolLM2-135M on vLLM 0.32.0's CPU backend here: 4.7-5.2 GB of
# summed RSS of four processes, which counts shared pages several times.
VLLM_CPU_OVERHEAD_GIB = 3.0
VLLM_CPU_MIN_KV_GIB = 1  # VLLM_CPU_KVCACHE_SPACE is whole GiB
VLLM_CPU_FALLBACK_MEMORY_GIB = 16  # a model of unknown size


def vllm_cpu_kv_gib(shape: ModelShape, kv_bytes: float, max_model_len: int, sequences: int) -> int:
    """Whole GiB of KV cache that hold `sequences` full-length sequences."""
    need = shape.kv_bytes_per_token(kv_bytes) * max_model_len * sequences / GIB
    return max(VLLM_CPU_MIN_KV_GIB, math.ceil(need))


def vllm_cpu_fit(
    shape: ModelShape,
    *,
    bytes_per_param: float,
    max_model_len: int,
    concurrent_sequences: int,
    memory_gib: float,
    kv_bytes_per_element: float = 4,
) -> FitReport:
    """vLLM's CPU backend in a container of `memory_gib`: weights + overhead, and as much of the KV
    cache `concurrent_sequences` full-length sequences want as is left (kv_cache_gib of the report:
    what VLLM_CPU_KVCACHE_SPACE gets)."""
    weights = shape.weights_gib(bytes_per_param)
    per_token = shape.kv_bytes_per_token(kv_bytes_per_element)
    per_seq = per_token * max_model_len / GIB
    want = vllm_cpu_kv_gib(shape, kv_bytes_per_element, max_model_len, concurrent_sequences)
    overhead = VLLM_CPU_OVERHEAD_GIB
    room = memory_gib - weights - overhead
    kv = min(want, math.floor(room)) if room > 0 else 0
    required = weights + want + overhead
    full = math.floor(kv / per_seq) if per_seq > 0 else 0
    numbers = (
        f"{weights:.1f} GiB weights + {kv} GiB KV cache (VLLM_CPU_KVCACHE_SPACE; {concurrent_sequences} x "
        f"{max_model_len} tokens x {_kib(per_token)} want {want} GiB) + {overhead:.1f} GiB overhead = "
        f"{weights + kv + overhead:.1f} GiB of {memory_gib:.1f} GiB container memory (spec.resources.memory)"
    )
    report = FitReport(
        True,
        FitReason.FITS,
        f"fits: {numbers}; the KV cache holds {full} full-length sequences",
        weights_gib=weights,
        kv_cache_gib=kv,
        overhead_gib=overhead,
        required_gib=required,
        available_gib=memory_gib,
        full_length_sequences=full,
    )
    enough = f"spec.resources.memory {math.ceil(required * 1.1)}Gi"
    if kv < VLLM_CPU_MIN_KV_GIB:
        return replace(
            report,
            fits=False,
            reason=FitReason.DOES_NOT_FIT,
            message=f"the weights and vLLM's processes leave no GiB for the KV cache, vLLM will not start: "
            f"{numbers}; try {enough}",
        )
    if full < concurrent_sequences:
        what = "not even one" if full == 0 else f"only {full} of {concurrent_sequences}"
        return replace(
            report,
            fits=False,
            reason=FitReason.DOES_NOT_FIT if full == 0 else FitReason.KV_CACHE_LIMITS_CONCURRENCY,
            message=f"the KV cache holds {what} full-length sequences (expected users per replica): "
            f"{numbers}; try {enough} or a lower spec.vllm.maxModelLen",
        )
    return report


@dataclass(frozen=True)
class OllamaNeed:
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib


def ollama_need(
    shape: ModelShape, *, bytes_per_param: float, context_length: int, num_parallel: int
) -> OllamaNeed:
    """Memory Ollama needs: "required RAM scales by OLLAMA_NUM_PARALLEL * OLLAMA_CONTEXT_LENGTH" (f16 KV)."""
    kv = shape.kv_bytes_per_token(2) * context_length * num_parallel / GIB
    return OllamaNeed(shape.weights_gib(bytes_per_param), kv, OLLAMA_OVERHEAD_GIB)


def ollama_fit(
    shape: ModelShape,
    *,
    bytes_per_param: float,
    context_length: int,
    num_parallel: int,
    memory_gib: float,
    gpu_product: str | None = None,
    gpu_memory_gib_each: float | None = None,
    gpu_count: int = 0,
) -> FitReport:
    """Ollama on GPUs (VRAM; layers that do not fit run on the CPU) or on CPU (container memory)."""
    need = ollama_need(
        shape, bytes_per_param=bytes_per_param, context_length=context_length, num_parallel=num_parallel
    )
    per_token = shape.kv_bytes_per_token(2)
    on_gpu = gpu_count >= 1 and gpu_memory_gib_each is not None
    if on_gpu:
        assert gpu_memory_gib_each is not None
        available = gpu_memory_gib_each * gpu_count
        where = f"{gpu_count} x {gpu_product} {gpu_memory_gib_each:.1f} GiB"
    else:
        available, where = memory_gib, "container memory (spec.resources.memory)"
    numbers = (
        f"{need.weights_gib:.1f} GiB weights + {need.kv_cache_gib:.1f} GiB KV cache ({num_parallel} x "
        f"{context_length} tokens x {_kib(per_token)}) + {need.overhead_gib:.1f} GiB overhead = "
        f"{need.total_gib:.1f} GiB {'<=' if need.total_gib <= available else '>'} {available:.1f} GiB {where}"
    )
    report = FitReport(
        True,
        FitReason.FITS,
        f"fits: {numbers}",
        weights_gib=need.weights_gib,
        kv_cache_gib=need.kv_cache_gib,
        overhead_gib=need.overhead_gib,
        required_gib=need.total_gib,
        available_gib=available,
    )
    if need.total_gib <= available:
        return report
    tips = []
    if not on_gpu:
        tips.append(f"spec.resources.memory {math.ceil(need.total_gib * 1.2)}Gi")
    if num_parallel > 1:
        tips.append("a lower spec.ollama.numParallel")
    tips.append("a lower spec.ollama.contextLength")
    if bytes_per_param > QUANTIZATION_BITS["q4_k_m"] / 8 + 1e-9:
        tips.append("a smaller quantization (e.g. q4_K_M)")
    try_text = "; try " + " or ".join(tips)
    if on_gpu:
        return replace(
            report,
            fits=False,
            reason=FitReason.PARTIAL_GPU_OFFLOAD,
            message="model exceeds GPU memory, Ollama runs the remaining layers on the CPU (slow): "
            f"{numbers}{try_text}",
        )
    return replace(
        report,
        fits=False,
        reason=FitReason.DOES_NOT_FIT,
        message=f"Ollama would be OOM-killed: {numbers}{try_text}",
    )


def unknown(reason: FitReason, message: str) -> FitReport:
    return FitReport(None, reason, message)
