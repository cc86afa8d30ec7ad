"""The vLLM Deployment: context for templates/vllm-deployment.yaml.j2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmstage.render import pod as podlib
from llmstage.render.workload import PodContext, pod_context, render_template
from llmstage.resolved import Resolved, Runtime, SecretKeyRef, VLLMSettings

TEMPLATE = "vllm-deployment.yaml.j2"

# The startup probe covers download and load. bf16 weights are 2 GB per billion parameters;
# 20 s per billion allows ~100 MB/s from the Hugging Face Hub plus loading onto the GPUs, so a
# cold 70B start gets 10 + 23 = 33 minutes (the 20-40 minutes practice suggests) and 8B 13 minutes.
STARTUP_BASE_SECONDS = 600
STARTUP_SECONDS_PER_BILLION_PARAMETERS = 20
# A model missing from the catalog: allow a 70B-class start rather than kill a slow download.
UNKNOWN_MODEL_STARTUP_SECONDS = 2400
# /dev/shm per tensor-parallel rank: vLLM's docs use 2Gi for one GPU and 8Gi for the AMD example;
# the engine core process uses shared memory even without tensor parallelism.
SHM_GIB_PER_RANK = 2


@dataclass(frozen=True)
class VLLMContext:
    pod: PodContext
    hugging_face_id: str
    revision: str | None
    served_model_name: str
    tensor_parallel_size: int
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    dtype: str
    quantization: str | None
    extra_args: tuple[str, ...]
    hugging_face_token: SecretKeyRef | None
    api_key: SecretKeyRef | None
    shm_size_limit: str


def startup_budget(parameters_billion: float | None) -> podlib.ProbeBudget:
    if parameters_billion is None:
        return podlib.ProbeBudget(UNKNOWN_MODEL_STARTUP_SECONDS)
    return podlib.ProbeBudget(
        round(STARTUP_BASE_SECONDS + STARTUP_SECONDS_PER_BILLION_PARAMETERS * parameters_billion)
    )


def shm_size_limit(tensor_parallel_size: int) -> str:
    return f"{SHM_GIB_PER_RANK * max(1, tensor_parallel_size)}Gi"


def context(resolved: Resolved, settings: VLLMSettings) -> VLLMContext:
    startup = startup_budget(resolved.model.parameters_billion)
    return VLLMContext(
        pod=pod_context(
            resolved,
            Runtime.VLLM,
            image=settings.image,
            startup=startup,
            deadline_seconds=podlib.IMAGE_PULL_ALLOWANCE_SECONDS + startup.budget_seconds,
        ),
        hugging_face_id=resolved.model.hugging_face_id,
        revision=resolved.model.revision,
        served_model_name=resolved.served_model_name,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        max_model_len=settings.max_model_len,
        max_num_seqs=settings.max_num_seqs,
        dtype=settings.dtype,
        quantization=settings.quantization,
        extra_args=settings.extra_args,
        hugging_face_token=resolved.hugging_face_token_secret_ref,
        api_key=settings.api_key_secret_ref,
        shm_size_limit=shm_size_limit(settings.tensor_parallel_size),
    )


def render_deployment(resolved: Resolved, settings: VLLMSettings) -> dict[str, Any]:
    return render_template(TEMPLATE, context(resolved, settings))
