"""The LLMService API's enums and constants: its name, its limits, what llmstage manages itself.

Plain Python (no pydantic), so that resolve/ and render/ can use the API's values without the
models: the pydantic models (models.py and its parts) import them from here too.
"""

from __future__ import annotations

from enum import StrEnum


def flag_pattern(flags: tuple[str, ...]) -> str:
    """A regular expression for any of `flags` as an argument, `--flag` or `--flag=value`, with
    either '-' or '_' between the words."""
    return "^--(" + "|".join(flag.replace("-", "[-_]") for flag in flags) + ")(=.*)?$"


GROUP = "llmstage.io"
VERSION = "v1alpha1"
KIND = "LLMService"
PLURAL = "llmservices"
API_VERSION = f"{GROUP}/{VERSION}"

# The LLMService name becomes the Service name (a DNS-1035 label, at most 63 characters) and the
# prefix of NAME-ollama, NAME-vllm, NAME-cache...; 52 leaves room for an 11-character suffix.
MAX_NAME_LENGTH = 52
CONCURRENCY_LIMIT = 100_000
MAX_REPLICAS = 1000
MAX_GPUS = 8  # one pod, one node: GPU nodes carry at most 8 devices
MAX_NODES = 16  # nodes of one multi-node replica (a LeaderWorkerSet group)
DEFAULT_QUEUE_METRIC = "vllm:num_requests_waiting"

# Flags and variables llmstage sets from spec fields; setting them again would fight the operator.
MANAGED_VLLM_FLAGS = (
    "model", "served-model-name", "host", "port", "tensor-parallel-size", "api-key",
    "gpu-memory-utilization", "max-model-len", "max-num-seqs", "dtype", "quantization", "revision",
    "enable-lora", "lora-modules", "max-loras", "max-lora-rank", "enforce-eager", "shutdown-timeout",
)  # fmt: skip
# vLLM 0.32.0's MaxLoRARanks (vllm/config/lora.py): --max-lora-rank accepts these only.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_LORA_ADAPTERS = 16
MANAGED_VLLM_FLAG_PATTERN = flag_pattern(MANAGED_VLLM_FLAGS)
MANAGED_OLLAMA_ENV = (
    "OLLAMA_HOST", "OLLAMA_MODELS", "OLLAMA_NUM_PARALLEL", "OLLAMA_KEEP_ALIVE", "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_NOPRUNE", "HOME",
)  # fmt: skip
MANAGED_VLLM_ENV = (
    "HOME", "USER", "LOGNAME", "HF_HOME", "VLLM_CACHE_ROOT", "VLLM_NO_USAGE_STATS", "HF_TOKEN",
    "VLLM_API_KEY", "VLLM_CPU_KVCACHE_SPACE", "VLLM_ENGINE_READY_TIMEOUT_S",
)  # fmt: skip
# The model download and probe scripts read LLMSTAGE_* variables.
MANAGED_ENV_PREFIX = "LLMSTAGE_"
# Volumes and mount paths the runtime templates use themselves (the cache claim, HOME, /tmp, shared
# memory, the registry key and CA); a user volume or mount may not take them.
MANAGED_VOLUMES = (
    "model-cache", "home", "pull-home", "tmp", "dshm", "registry-key", "registry-ca", "model-source",
)  # fmt: skip
MANAGED_MOUNT_PATHS = (
    "/models", "/tmp", "/dev/shm", "/home/ollama", "/home/vllm", "/etc/llmstage", "/model-source",
    "/lora-source",
)  # fmt: skip
# spec.lora.adapters[].source pvc and oci: one volume per adapter, lora-source-INDEX.
MANAGED_VOLUME_PREFIX = "lora-source-"
# Label and annotation prefixes llmstage owns on its pods: selectors and the status depend on them.
MANAGED_LABEL_PREFIXES = ("app.kubernetes.io/", "llmstage.io/")
MANAGED_ANNOTATIONS = ("kubectl.kubernetes.io/default-container",)

# camelCase (the API's) -> the model's attribute.
SOURCE_KINDS = {"huggingFace": "hugging_face", "pvc": "pvc", "s3": "s3", "gcs": "gcs", "oci": "oci"}
# The kinds whose weights only vLLM can read (Ollama pulls spec.model.name from a registry).
VLLM_ONLY_SOURCE_KINDS = ("pvc", "s3", "gcs", "oci")

# Where spec.model.source.pvc and .oci are mounted, read-only (MANAGED_MOUNT_PATHS holds it).
MODEL_SOURCE_MOUNT_PATH = "/model-source"

# Flags llmstage sets on a multi-node replica (tensor parallel within a node, pipeline parallel and
# vLLM's multiprocessing executor across nodes): from extraArgs they would fight the group's layout.
MULTI_NODE_VLLM_FLAGS = (
    "pipeline-parallel-size", "nnodes", "node-rank", "master-addr", "master-port", "headless",
    "distributed-executor-backend",
)  # fmt: skip
MULTI_NODE_VLLM_FLAG_PATTERN = flag_pattern(MULTI_NODE_VLLM_FLAGS)

# ---------------------------------------------------------------- enums


class Stage(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"


class Runtime(StrEnum):
    OLLAMA = "ollama"
    VLLM = "vllm"


class RuntimeChoice(StrEnum):
    AUTO = "auto"
    OLLAMA = "ollama"
    VLLM = "vllm"


class OptimizeFor(StrEnum):
    """The article's two remaining questions, as an explicit hint for runtime: auto."""

    SETUP_TIME = "setupTime"  # "Need sub-hour setup? Ollama"
    GPU_COST = "gpuCost"  # "Optimizing GPU costs? vLLM"


class ModelFormat(StrEnum):
    GGUF = "gguf"
    SAFETENSORS = "safetensors"


class ScaleMetricChoice(StrEnum):
    AUTO = "auto"
    QUEUE = "queue"
    CPU = "cpu"


class AutoscalerChoice(StrEnum):
    HPA = "hpa"
    KEDA = "keda"


class VLLMDtype(StrEnum):
    AUTO = "auto"
    HALF = "half"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT = "float"
    FLOAT32 = "float32"


class AccessMode(StrEnum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


class CacheMode(StrEnum):
    PER_POD = "PerPod"  # a ReadWriteOnce claim per pod (generic ephemeral volume), deleted with it
    SHARED = "Shared"  # one claim for every pod: NAME-RUNTIME-cache, or spec.cache.claimName


class CutoverPhase(StrEnum):
    STARTING = "Starting"  # the new runtime's pods are starting next to the old ones
    SWITCHING = "Switching"  # the new runtime is ready; the Service selector moves to it
    DRAINING = "Draining"  # clients are on the new runtime; the old runtime's objects are deleted
    # Never set by the plan (status.cutover is null once a cutover is over; a stuck one is Stalled).
    # They stay because the CRD's enum for status.cutover.phase lists them: dropping them changes
    # the published v1alpha1 schema, which waits for the next API version.
    COMPLETE = "Complete"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class FailureMode(StrEnum):
    FAIL_OPEN = "FailOpen"
    FAIL_CLOSE = "FailClose"
