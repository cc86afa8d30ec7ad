"""The vLLM Deployment: context for templates/vllm-deployment.yaml.j2."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmstage.api.models import MANAGED_VLLM_ENV, Runtime
from llmstage.render import pod as podlib
from llmstage.render.source import (
    FETCH_COMMAND,
    AdapterPlacement,
    SourceContext,
    adapter_placements,
    source_context,
)
from llmstage.render.workload import PodContext, pod_context, render_template
from llmstage.resolve.download import default_download
from llmstage.resolve.resolved import DownloadSettings, LoRA, Resolved, SecretKeyRef, VLLMOnCPU, VLLMSettings

TEMPLATE = "vllm-deployment.yaml.j2"

# The download has its own step, the init container download-model, which no probe watches; the
# startup probe covers what follows: loading the weights from the cache volume onto the GPUs,
# torch.compile and CUDA graph capture. 10 minutes plus 10 s per billion parameters: 8B 11 minutes,
# 70B 22 minutes.
STARTUP_BASE_SECONDS = 600
STARTUP_SECONDS_PER_BILLION_PARAMETERS = 10
# A model missing from the catalog: allow a 70B-class load rather than kill a slow one.
UNKNOWN_MODEL_STARTUP_SECONDS = 1800
# vLLM's CPU backend: loading (and converting to float32) a billion parameters from the cache
# volume takes about a minute, and its default compiled mode adds torch inductor's C++ build:
# SmolLM2-135M started in 51 s eager and in 221-325 s compiled on 2 busy cores here.
CPU_STARTUP_BASE_SECONDS = 300
CPU_STARTUP_SECONDS_PER_BILLION_PARAMETERS = 60
CPU_COMPILE_SECONDS = 900
# For the progress deadline only: bf16 weights are 2 GB per billion parameters; 80 s per billion is
# 25 MB/s, a slow link (70B: 1 h 34 min). A model missing from the catalog gets 3 hours (KubeAI's
# allowance for a download).
DOWNLOAD_SECONDS_PER_BILLION_PARAMETERS = 80
UNKNOWN_MODEL_DOWNLOAD_SECONDS = 3 * 3600
# Neither image (no USER: root) nor its passwd has a user for our UID, and torch asks for the user
# name at import (getpass.getuser() in _inductor/codecache.py), which raises KeyError without a
# passwd entry unless LOGNAME or USER is set. Any name works; it names torch's cache directory
# /tmp/torchinductor_USER.
USER = "vllm"
HOME = "/home/vllm"
UID = 2000  # and GID and fsGroup: no user of the image's (see the template's top)
# Variables the template always sets (and LLMSTAGE_*): the CRD rejects them in spec.vllm.env.
RESERVED_ENV = frozenset(MANAGED_VLLM_ENV)
# The download step sets this too: spec.vllm.env may set it for the server only.
DOWNLOAD_OWN_ENV = {"NVIDIA_VISIBLE_DEVICES"}
VLLM_DEFAULT_MAX_LORA_RANK = 16  # vllm/config/lora.py LoRAConfig.max_lora_rank, 0.32.0
# /dev/shm per tensor-parallel rank: vLLM's docs use 2Gi for one GPU and 8Gi for the AMD example;
# the engine core process uses shared memory even without tensor parallelism.
SHM_GIB_PER_RANK = 2


@dataclass(frozen=True)
class VLLMContext:
    pod: PodContext
    source: SourceContext  # spec.model.source: the model argument, its volume, the download
    hub_step_name: str  # download-model, or download-lora when the weights come from elsewhere
    download: DownloadSettings  # the download steps' image (s3, gcs) and memory
    fetch_command: list[str]  # the s3 and gcs step, in llmstage's image
    hub_download_env: list[dict[str, str]]  # the Hugging Face step's Xet settings
    revision: str | None
    served_model_name: str
    tensor_parallel_size: int
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int | None
    dtype: str
    quantization: str | None
    extra_args: tuple[str, ...]
    hugging_face_token: SecretKeyRef | None
    api_key: SecretKeyRef | None
    shm_size_limit: str
    user: str
    home: str
    hf_home: str
    # spec.vllm.env: the server and the download step (proxies, HF_ENDPOINT).
    extra_env: list[dict[str, str]]
    download_extra_env: list[dict[str, str]]
    lora: LoRA | None
    # For the download step: [{"repo", "revision", "dir"}] of the adapters from the Hub, as JSON;
    # for vLLM: --lora-modules items.
    hub_lora: bool  # some adapters come from the Hub
    lora_placements: list[AdapterPlacement]  # volumes, mounts and bucket steps of the others
    lora_downloads: str
    lora_modules: list[str]
    lora_default_max_rank: int
    enforce_eager: bool
    cpu: VLLMOnCPU | None  # no GPU: vLLM's CPU backend (no GPU flags; KV cache and threads by env)
    shutdown_timeout_seconds: int  # --shutdown-timeout: how long in-flight requests may drain


def hub_download_env(download: DownloadSettings, user_env: frozenset[str]) -> list[dict[str, str]]:
    """HF_HUB_DISABLE_XET=1 (huggingface_hub 2.4.0 constants.py), or Xet's buffers sized from the
    step's memory limit (resolve/download.py); what spec.vllm.env sets itself is left to it."""
    pairs = download.xet_env if download.xet else (("HF_HUB_DISABLE_XET", "1"),)
    return [{"name": name, "value": value} for name, value in pairs if name not in user_env]


def startup_budget(
    parameters_billion: float | None, on_cpu: bool = False, eager: bool = False
) -> podlib.ProbeBudget:
    if on_cpu:
        billions = 8.0 if parameters_billion is None else parameters_billion
        seconds = CPU_STARTUP_BASE_SECONDS + CPU_STARTUP_SECONDS_PER_BILLION_PARAMETERS * billions
        return podlib.ProbeBudget(round(seconds + (0 if eager else CPU_COMPILE_SECONDS)))
    if parameters_billion is None:
        return podlib.ProbeBudget(UNKNOWN_MODEL_STARTUP_SECONDS)
    return podlib.ProbeBudget(
        round(STARTUP_BASE_SECONDS + STARTUP_SECONDS_PER_BILLION_PARAMETERS * parameters_billion)
    )


def progress_deadline_seconds(parameters_billion: float | None, startup: podlib.ProbeBudget) -> int:
    download = (
        UNKNOWN_MODEL_DOWNLOAD_SECONDS
        if parameters_billion is None
        else round(DOWNLOAD_SECONDS_PER_BILLION_PARAMETERS * parameters_billion)
    )
    return podlib.IMAGE_PULL_ALLOWANCE_SECONDS + download + startup.budget_seconds


# Seconds the processes need to exit after the drain (vLLM's workers get 5 s:
# VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS), within the pod's grace period.
EXIT_MARGIN_SECONDS = 15


def drain_seconds() -> int:
    """--shutdown-timeout: the grace period left after the preStop sleep, less the exit margin."""
    return podlib.TERMINATION_GRACE_PERIOD_SECONDS - podlib.PRE_STOP_SLEEP_SECONDS - EXIT_MARGIN_SECONDS


def shm_size_limit(tensor_parallel_size: int) -> str:
    return f"{SHM_GIB_PER_RANK * max(1, tensor_parallel_size)}Gi"


def context(resolved: Resolved, settings: VLLMSettings, surge_blocked: bool = False) -> VLLMContext:
    startup = startup_budget(
        resolved.model.parameters_billion, settings.cpu is not None, settings.enforce_eager
    )
    adapters = settings.lora.adapters if settings.lora else ()
    placements = adapter_placements(adapters)
    from_hub = [(a, p) for a, p in zip(adapters, placements, strict=True) if p.hub]
    source = source_context(resolved.model)
    # What the typed fields set wins over spec.vllm.env (no duplicate names in a container).
    typed = {"HF_HUB_OFFLINE"} if source.offline else set()
    typed |= {"HF_ENDPOINT"} if source.hugging_face_endpoint else set()
    extra_env = podlib.without(podlib.extra_env(settings.env, RESERVED_ENV), typed)
    download = settings.download or default_download()
    return VLLMContext(
        pod=pod_context(
            resolved,
            Runtime.VLLM,
            settings,
            startup=startup,
            deadline_seconds=progress_deadline_seconds(resolved.model.parameters_billion, startup),
            user_id=UID,
            surge_blocked=surge_blocked,
        ),
        source=source,
        hub_step_name="download-model" if source.hub else "download-lora",
        download=download,
        fetch_command=list(FETCH_COMMAND),
        hub_download_env=hub_download_env(download, frozenset(settings.env)),
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
        user=USER,
        home=HOME,
        hf_home=f"{podlib.CACHE_MOUNT_PATH}/huggingface",
        extra_env=extra_env,
        download_extra_env=podlib.without(extra_env, DOWNLOAD_OWN_ENV),
        lora=settings.lora,
        hub_lora=bool(from_hub),
        lora_placements=placements,
        lora_downloads=json.dumps(
            [{"repo": a.hugging_face_id, "revision": a.revision, "dir": p.dir} for a, p in from_hub]
        ),
        lora_modules=[
            # The JSON form of --lora-modules: a name may hold characters the name=path form splits on.
            json.dumps({"name": a.name, "path": p.dir, "base_model_name": resolved.served_model_name})
            for a, p in zip(adapters, placements, strict=True)
        ],
        lora_default_max_rank=VLLM_DEFAULT_MAX_LORA_RANK,
        enforce_eager=settings.enforce_eager,
        cpu=settings.cpu,
        shutdown_timeout_seconds=drain_seconds(),
    )


def render_deployment(
    resolved: Resolved, settings: VLLMSettings, surge_blocked: bool = False
) -> dict[str, Any]:
    return render_template(TEMPLATE, context(resolved, settings, surge_blocked))
