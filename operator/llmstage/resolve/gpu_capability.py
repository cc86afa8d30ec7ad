"""What a GPU product can compute: its CUDA compute capability, and the vLLM settings it cannot run.

    compute_capability(product) -> (major, minor) | None
    unsupported_precision(product, dtype, quantization, kv_cache_dtype) -> [(field, message)]

The table beside fit.GPU_MEMORY_MIB (same product tokens, plus a few products that table lacks).
Values are NVIDIA's published mapping, "CUDA GPU Compute Capability"
(developer.nvidia.com/cuda-gpus, the page the CUDA Programming Guide's appendix "Compute
Capabilities" points to).

What vLLM 0.32.0 (the pinned release) refuses below a capability, read from its wheel:
- bfloat16: vllm/platforms/cuda.py check_if_supports_dtype raises "Bfloat16 is only supported on
  GPUs with compute capability of at least 8.0" (called by v1/worker/gpu_worker.py at start).
  dtype auto is not refused: _resolve_auto_dtype (config/model.py) falls back to float16.
- fp8 weights (--quantization fp8 and the online fp8_per_* methods):
  model_executor/layers/quantization/fp8.py Fp8Config.get_min_capability() and
  online/base.py OnlineQuantizationConfig.get_min_capability() are 75; config/vllm.py stops the
  start below it ("... Minimum capability: 75").
- an fp8 KV cache (--kv-cache-dtype fp8*): no start-up check; the attention backend that takes it
  is FlashInfer, whose floor 0.32 raised to 8.0 (v1/attention/backends/flashinfer.py
  supports_compute_capability: "broken on SM75", flashinfer-ai/flashinfer#3620). Below it only
  the Triton backend is left, and its fp8 (fp8e4nv) kernels need SM 8.9
  (vllm-project/vllm#47949), so the engine fails at its first forward pass.
"""

from __future__ import annotations

import re

# (major, minor) per product token; the tokens are those of nvidia.com/gpu.product label values.
COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "V100": (7, 0),
    "T4": (7, 5),
    "A100": (8, 0),
    "A30": (8, 0),
    "A10": (8, 6),
    "A10G": (8, 6),
    "A40": (8, 6),
    "L4": (8, 9),
    "L40": (8, 9),
    "L40S": (8, 9),
    "H100": (9, 0),
    "H200": (9, 0),
    "GH200": (9, 0),
    "B200": (10, 0),
}

BF16_MIN = (8, 0)
FP8_WEIGHTS_MIN = (7, 5)
FP8_KV_CACHE_MIN = (8, 0)


def compute_capability(product: str) -> tuple[int, int] | None:
    """From an nvidia.com/gpu.product value (NVIDIA-L4, Tesla-T4, NVIDIA-A100-SXM4-40GB, MIG slices
    such as NVIDIA-A100-SXM4-40GB-MIG-3g.20gb, the -SHARED suffix); None for a product not listed."""
    tokens = set(re.split(r"[-_ ]", product.upper().removesuffix("-SHARED")))
    # The longest token first: GH200 before H200, A10G before A10, L40S before L40.
    for token in sorted(COMPUTE_CAPABILITY, key=len, reverse=True):
        if token in tokens:
            return COMPUTE_CAPABILITY[token]
    return None


def _version(capability: tuple[int, int]) -> str:
    return f"{capability[0]}.{capability[1]}"


def unsupported_precision(
    product: str,
    *,
    dtype: str,
    dtype_field: str,
    quantization: str | None,
    quantization_field: str,
    kv_cache_dtype: str | None,
) -> list[tuple[str, str]]:
    """(field, message) for each setting vLLM 0.32.0 cannot run on `product`; empty when all can
    (or the product is not in the table: new products appear all the time)."""
    capability = compute_capability(product)
    if capability is None:
        return []
    name = f"{product} (compute capability {_version(capability)})"
    out: list[tuple[str, str]] = []
    if dtype.lower() in ("bfloat16", "bf16") and capability < BF16_MIN:
        out.append(
            (
                dtype_field,
                f"bfloat16 needs compute capability {_version(BF16_MIN)} or more, so vLLM refuses to "
                f"start on {name}: set it to float16 (or auto, which picks float16 there)",
            )
        )
    if quantization and quantization.lower().startswith("fp8") and capability < FP8_WEIGHTS_MIN:
        out.append(
            (
                quantization_field,
                f"fp8 weights need compute capability {_version(FP8_WEIGHTS_MIN)} or more, so vLLM "
                f"refuses to start on {name}: remove it (the weights then load in 16 bits), use a GPU "
                "with 7.5 or more (T4, A100, L4, H100, ...), or a pre-quantized awq or gptq checkpoint",
            )
        )
    if kv_cache_dtype and kv_cache_dtype.lower().startswith("fp8") and capability < FP8_KV_CACHE_MIN:
        out.append(
            (
                "spec.vllm.extraArgs",
                f"--kv-cache-dtype={kv_cache_dtype} needs compute capability "
                f"{_version(FP8_KV_CACHE_MIN)} or more for vLLM's attention kernels, and {name} has "
                "less: vLLM fails at its first forward pass. Remove the flag (the KV cache then uses "
                "the model's dtype)",
            )
        )
    return out
