"""GPU compute capability: the table, and bf16 / fp8 refused where vLLM 0.12.0 cannot run them."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.api.models import LLMService
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.fit import GPU_MEMORY_MIB
from llmstage.resolve.gpu_capability import COMPUTE_CAPABILITY, compute_capability

from testkit.api_cases import API_KEY, service


@pytest.mark.parametrize(
    ("product", "capability"),
    [
        ("Tesla-T4", (7, 5)),
        ("Tesla-T4-SHARED", (7, 5)),
        ("Tesla-V100-SXM2-16GB", (7, 0)),
        ("NVIDIA-L4", (8, 9)),
        ("NVIDIA-A10G", (8, 6)),
        ("NVIDIA-L40S", (8, 9)),
        ("NVIDIA-A100-SXM4-40GB", (8, 0)),
        ("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", (8, 0)),
        ("NVIDIA-H100-80GB-HBM3", (9, 0)),
        ("NVIDIA-GH200-480GB", (9, 0)),
        ("NVIDIA-B200", (10, 0)),
        ("NVIDIA-RTX-9999", None),
    ],
)
def test_compute_capability_of_gpu_feature_discovery_labels(
    product: str, capability: tuple[int, int] | None
) -> None:
    assert compute_capability(product) == capability


def test_every_product_of_the_memory_table_has_a_capability() -> None:
    assert set(GPU_MEMORY_MIB) - {"H100-NVL", "A100-40GB", "A100-80GB"} <= set(COMPUTE_CAPABILITY)
    for key in GPU_MEMORY_MIB:
        assert compute_capability(f"NVIDIA-{key}") is not None, key


def resolve_on(product: str, **vllm: Any) -> Any:
    body = service(
        "chat",
        stage="production",
        resources={"gpu": {"count": 1, "product": product}},
        vllm={**API_KEY, **vllm},
    )
    return resolve(LLMService.model_validate(body))


@pytest.mark.parametrize(
    ("product", "vllm", "field", "words"),
    [
        ("Tesla-T4", {"dtype": "bfloat16"}, "spec.vllm.dtype", "bfloat16 needs compute capability 8.0"),
        (
            "Tesla-V100-SXM2-32GB",
            {"quantization": "fp8"},
            "spec.vllm.quantization",
            "fp8 weights need compute capability 7.5",
        ),
    ],
)
def test_bf16_below_8_0_and_fp8_weights_below_7_5_are_refused(
    product: str, vllm: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as err:
        resolve_on(product, **vllm)
    assert err.value.field == field
    assert words in err.value.message and f"{product} (compute capability" in err.value.message


def test_fp8_weights_named_in_the_model_spec_are_refused_under_that_field() -> None:
    body = service(
        "chat",
        stage="production",
        model={"name": "llama3.1:8b", "quantization": "fp8"},
        resources={"gpu": {"count": 1, "product": "Tesla-V100-SXM2-32GB"}},
        vllm=API_KEY,
    )
    with pytest.raises(SpecError) as err:
        resolve(LLMService.model_validate(body))
    assert err.value.field == "spec.model.quantization"


def test_an_fp8_kv_cache_is_refused_below_8_0_and_fp8_weights_allowed_on_a_t4() -> None:
    with pytest.raises(SpecError) as err:
        resolve_on("Tesla-T4", extraArgs=["--kv-cache-dtype", "fp8_e5m2"])
    assert err.value.field == "spec.vllm.extraArgs" and "fp8_e5m2" in err.value.message
    # vLLM 0.32.0 raised FlashInfer's floor to 8.0 (broken on SM75) and lowered fp8 weights' to 7.5.
    assert resolve_on("NVIDIA-A10G", extraArgs=["--kv-cache-dtype=fp8"]).vllm.kv_cache_dtype == "fp8"
    assert resolve_on("Tesla-T4", quantization="fp8").vllm.quantization == "fp8_per_tensor"


@pytest.mark.parametrize("product", ["Tesla-T4", "NVIDIA-L4", "NVIDIA-H100-80GB-HBM3", "NVIDIA-RTX-9999"])
def test_auto_and_float16_run_everywhere(product: str) -> None:
    assert resolve_on(product).vllm.dtype == "auto"
    assert resolve_on(product, dtype="float16").vllm.dtype == "float16"


@pytest.mark.parametrize("product", ["NVIDIA-L4", "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"])
def test_bf16_and_fp8_run_from_8_0(product: str) -> None:
    r = resolve_on(product, dtype="bfloat16", quantization="fp8", extraArgs=["--kv-cache-dtype=fp8"])
    assert (r.vllm.dtype, r.vllm.quantization, r.vllm.kv_cache_dtype) == ("bfloat16", "fp8_per_tensor", "fp8")


def test_an_unknown_product_is_not_refused() -> None:
    assert resolve_on("NVIDIA-RTX-9999", dtype="bfloat16").vllm.dtype == "bfloat16"


def test_the_fit_does_not_suggest_fp8_where_the_gpu_cannot_run_it() -> None:
    t4 = resolve_on("Tesla-T4").memory_fit
    # fp8 weights run there (7.5), an fp8 KV cache does not (8.0).
    assert t4.fits is False and "--kv-cache-dtype=fp8" not in t4.message
    assert "spec.vllm.quantization fp8" in t4.message
    body = service(
        "chat",
        stage="production",
        expectedConcurrency=8,
        resources={"gpu": {"count": 1, "product": "NVIDIA-L4"}},
        vllm=API_KEY,
    )
    l4 = resolve(LLMService.model_validate(body)).memory_fit
    assert "spec.vllm.quantization fp8" in l4.message and "--kv-cache-dtype=fp8" in l4.message
