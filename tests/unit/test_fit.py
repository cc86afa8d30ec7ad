"""Memory fit with worked numbers (GiB = 2^30 bytes; GPU memory as nvidia-smi reports it).

Llama-3.1-8B: 8.03e9 params, 32 layers, 8 KV heads, head dim 128.
  bf16 weights = 8.03e9 x 2 B = 14.96 GiB; KV per token = 2 x 32 x 8 x 128 x 2 B = 128 KiB,
  so one 8192-token sequence = 1 GiB. One L4 = 23034 MiB = 22.49 GiB; x 0.9 = 20.24 GiB.
Llama-3.1-70B: 70.6e9 params, 80 layers, 8 KV heads, head dim 128.
  bf16 weights = 131.5 GiB; KV per token = 320 KiB, one 8192-token sequence = 2.5 GiB.
"""

from __future__ import annotations

import pytest
from llmstage.resolve.fit import (
    FitReason,
    ModelShape,
    bytes_per_parameter,
    gpu_memory_gib,
    ollama_fit,
    vllm_fit,
)

LLAMA_8B = ModelShape(parameters_billion=8.03, layers=32, kv_heads=8, head_dim=128)
LLAMA_70B = ModelShape(parameters_billion=70.6, layers=80, kv_heads=8, head_dim=128)
L4, H100 = "NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"


def on(product: str, count: int, shape: ModelShape, *, seqs: int, max_model_len: int = 8192, bpp: float = 2):
    memory = gpu_memory_gib(product)
    assert memory is not None
    return vllm_fit(
        shape,
        bytes_per_param=bpp,
        max_model_len=max_model_len,
        concurrent_sequences=seqs,
        gpu_product=product,
        gpu_memory_gib_each=memory,
        gpu_count=count,
        gpu_memory_utilization=0.9,
    )


def test_kv_cache_per_token() -> None:
    assert LLAMA_8B.kv_bytes_per_token() == 131072  # 128 KiB
    assert LLAMA_70B.kv_bytes_per_token() == 327680  # 320 KiB
    assert LLAMA_8B.kv_bytes_per_token(1) == 65536  # fp8 KV cache halves it


def test_llama_8b_bf16_on_one_l4_at_8k_fits_three_sequences() -> None:
    three = on(L4, 1, LLAMA_8B, seqs=3)
    assert three.fits is True and three.reason == FitReason.FITS
    assert three.weights_gib == pytest.approx(14.96, abs=0.01)
    assert three.kv_cache_gib == pytest.approx(3.0)
    assert three.overhead_gib == pytest.approx(1.5)
    assert three.required_gib == pytest.approx(19.46, abs=0.01)
    assert three.available_gib == pytest.approx(20.24, abs=0.01)
    assert three.full_length_sequences == 3
    assert "(1 x NVIDIA-L4 22.5 GiB x 0.9)" in three.message


def test_llama_8b_bf16_on_one_l4_with_four_users_limits_concurrency() -> None:
    four = on(L4, 1, LLAMA_8B, seqs=4)
    assert four.fits is False and four.reason == FitReason.KV_CACHE_LIMITS_CONCURRENCY
    assert four.required_gib == pytest.approx(20.46, abs=0.01)
    assert "KV cache holds only 3 of 4 full-length sequences" in four.message
    assert "20.5 GiB > 20.2 GiB available" in four.message
    # Suggestions: a second GPU, an fp8 KV cache, a shorter context, or fp8 weights. Never fewer
    # sequences: capping vLLM's batch would switch off the continuous batching it was chosen for.
    for tip in (
        "spec.resources.gpu.count 2",
        "--kv-cache-dtype=fp8 in spec.vllm.extraArgs",
        "spec.vllm.maxModelLen 7168",
        "spec.vllm.quantization fp8",
    ):
        assert tip in four.message
    assert "maxNumSeqs" not in four.message


def test_fp8_kv_cache_halves_the_kv_cache_and_fits_twice_the_sequences() -> None:
    memory = gpu_memory_gib(L4)
    assert memory is not None
    report = vllm_fit(
        LLAMA_8B,
        bytes_per_param=2,
        max_model_len=8192,
        concurrent_sequences=6,
        gpu_product=L4,
        gpu_memory_gib_each=memory,
        gpu_count=1,
        gpu_memory_utilization=0.9,
        kv_bytes_per_element=1,
        kv_cache_dtype="fp8",
    )
    assert report.fits is True and report.kv_cache_gib == pytest.approx(3.0)
    assert report.full_length_sequences == 7
    assert "--kv-cache-dtype=fp8" in report.message


def test_the_fit_names_the_batch_vllm_keeps() -> None:
    default = on(L4, 1, LLAMA_8B, seqs=2)
    assert "vLLM's default --max-num-seqs (256" in default.message
    capped = vllm_fit(
        LLAMA_8B,
        bytes_per_param=2,
        max_model_len=8192,
        concurrent_sequences=2,
        gpu_product=L4,
        gpu_memory_gib_each=22.49,
        gpu_count=1,
        gpu_memory_utilization=0.9,
        max_num_seqs=2,
    )
    assert "--max-num-seqs=2" in capped.message


def test_llama_8b_full_128k_context_on_l4_does_not_start() -> None:
    report = on(L4, 1, LLAMA_8B, seqs=1, max_model_len=131072)
    assert report.fits is False and report.reason == FitReason.DOES_NOT_FIT
    assert "not even one 131072-token sequence fits" in report.message
    assert "16.0 GiB KV cache" in report.message


def test_llama_70b_on_four_l4_does_not_fit() -> None:
    report = on(L4, 4, LLAMA_70B, seqs=4)
    assert report.fits is False and report.reason == FitReason.DOES_NOT_FIT
    assert report.weights_gib == pytest.approx(131.5, abs=0.1)
    assert report.available_gib == pytest.approx(80.98, abs=0.01)
    assert "the weights do not fit, vLLM will not start" in report.message
    assert "spec.resources.gpu.count 8 (tensorParallelSize 8)" in report.message
    assert "4-bit AWQ/GPTQ" in report.message  # fp8 (65.8 GiB + KV + 6 GiB) would not fit either


def test_llama_70b_on_two_h100() -> None:
    one = on(H100, 2, LLAMA_70B, seqs=1)
    assert one.fits is True
    assert one.available_gib == pytest.approx(143.37, abs=0.01)
    assert one.required_gib == pytest.approx(137.0, abs=0.1)  # 131.5 + 2.5 + 2 x 1.5
    many = on(H100, 2, LLAMA_70B, seqs=16)
    assert many.fits is False and many.reason == FitReason.KV_CACHE_LIMITS_CONCURRENCY
    assert many.full_length_sequences == 3
    assert "spec.resources.gpu.count 4 (tensorParallelSize 4)" in many.message


def test_llama_70b_fp8_on_one_h100() -> None:
    report = on(H100, 1, LLAMA_70B, seqs=1, bpp=1)
    assert report.fits is True
    assert report.weights_gib == pytest.approx(65.75, abs=0.01)


@pytest.mark.parametrize(
    ("label", "gib"),
    [
        ("NVIDIA-L4", 22.49),
        ("NVIDIA-A10G", 22.49),
        ("NVIDIA-L40S", 44.99),
        ("NVIDIA-A100-SXM4-40GB", 40.0),
        ("NVIDIA-A100-PCIE-40GB", 40.0),
        ("NVIDIA-A100-SXM4-80GB", 80.0),
        ("NVIDIA-A100-80GB-PCIe", 80.0),
        ("NVIDIA-H100-80GB-HBM3", 79.65),
        ("NVIDIA-H100-PCIe", 79.65),
        ("NVIDIA-H100-NVL", 93.58),
        ("NVIDIA-H200", 140.40),
        ("NVIDIA-H200-141GB-HBM3e", 140.40),
        ("NVIDIA-L4-SHARED", 22.49),
        ("NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", 40.0),
    ],
)
def test_gpu_product_labels(label: str, gib: float) -> None:
    assert gpu_memory_gib(label) == pytest.approx(gib, abs=0.01)


@pytest.mark.parametrize("label", ["AMD-Instinct-MI300X", "NVIDIA-B200", "something"])
def test_unknown_gpu_products(label: str) -> None:
    assert gpu_memory_gib(label) is None


@pytest.mark.parametrize(
    ("quantization", "dtype", "expected"),
    [
        (None, "auto", 2.0),
        (None, "float32", 4.0),
        (None, "half", 2.0),
        ("fp8", "auto", 1.0),
        ("awq", "auto", 4.25 / 8),
        ("q4_K_M", None, 4.85 / 8),
        ("Q8_0", None, 8.5 / 8),
        ("fp16", None, 2.0),
        ("compressed-tensors", "auto", None),
    ],
)
def test_bytes_per_parameter(quantization: str | None, dtype: str | None, expected: float | None) -> None:
    assert bytes_per_parameter(quantization, dtype) == expected


def test_ollama_8b_q4_on_cpu() -> None:
    q4 = 4.85 / 8
    fits = ollama_fit(LLAMA_8B, bytes_per_param=q4, context_length=8192, num_parallel=1, memory_gib=8)
    assert fits.fits is True
    assert fits.weights_gib == pytest.approx(4.53, abs=0.01)
    assert fits.required_gib == pytest.approx(6.53, abs=0.01)  # 4.53 + 1 GiB KV + 1 GiB overhead
    small = ollama_fit(LLAMA_8B, bytes_per_param=q4, context_length=8192, num_parallel=4, memory_gib=4)
    assert small.fits is False and small.reason == FitReason.DOES_NOT_FIT
    assert "OOM-killed" in small.message and "spec.resources.memory 12Gi" in small.message


def test_ollama_70b_q4_on_one_l4_offloads_to_cpu() -> None:
    report = ollama_fit(
        LLAMA_70B,
        bytes_per_param=4.85 / 8,
        context_length=8192,
        num_parallel=1,
        memory_gib=64,
        gpu_product=L4,
        gpu_memory_gib_each=gpu_memory_gib(L4),
        gpu_count=1,
    )
    assert report.fits is False and report.reason == FitReason.PARTIAL_GPU_OFFLOAD
    assert "remaining layers on the CPU" in report.message


def test_memory_fit_contract() -> None:
    fit = on(L4, 1, LLAMA_8B, seqs=1).to_memory_fit()
    assert fit.fits is True and fit.reason == "Fits" and fit.message.startswith("fits: ")
