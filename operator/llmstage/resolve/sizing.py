"""Sizing searches over the resolver: for each GPU product, the fewest GPUs on which vLLM fits.

    gpu_options(obj, products) -> [GPUOption]      pure; resolves trial LLMServices

`llmstage recommend` lists the options; `llmstage pipeline init` picks production's GPU from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmstage.api.manifest import ManifestError, parse_llmservice
from llmstage.resolve.errors import SpecError
from llmstage.resolve.resolved import Resolved
from llmstage.resolve.resolver import resolve

# GPU products `recommend` sizes vLLM for, smallest first (nvidia.com/gpu.product label values).
GPU_PRODUCTS = (
    "NVIDIA-L4",
    "NVIDIA-L40S",
    "NVIDIA-A100-SXM4-40GB",
    "NVIDIA-A100-SXM4-80GB",
    "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-H200",
)
GPU_COUNTS = (1, 2, 4, 8)


def resolve_object(obj: dict[str, Any], source: str = "recommendation") -> Resolved:
    return resolve(parse_llmservice(obj, source))


@dataclass(frozen=True)
class GPUOption:
    product: str
    count: int | None  # smallest GPUs per replica (per node) that fit; None: not even 8
    message: str
    nodes: int = 1  # nodes per replica: above 1 when the model needs more GPUs than one node holds


def gpu_options(obj: dict[str, Any], products: tuple[str, ...] = GPU_PRODUCTS) -> list[GPUOption]:
    """For each product, the fewest GPUs per replica on which vLLM fits this service."""
    out = []
    for product in products:
        found: GPUOption | None = None
        last = ""
        for count in GPU_COUNTS:
            trial = {
                **obj,
                "spec": {**obj["spec"], "resources": {"gpu": {"count": count, "product": product}}},
            }
            try:
                resolved = resolve_object(trial)
            except (SpecError, ManifestError):  # e.g. a count that does not divide the attention heads
                continue
            last = resolved.memory_fit.message
            if resolved.memory_fit.fits is None:
                return []  # unknown model shape: nothing to compare
            if resolved.memory_fit.fits:
                gpu = resolved.resources.gpu
                found = GPUOption(product, count, resolved.memory_fit.message, gpu.nodes if gpu else 1)
                break
        out.append(found or GPUOption(product, None, last))
    return out
