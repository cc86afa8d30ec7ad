"""The resolved desired state: an LLMService with every default, decision and check applied.

`llmstage.resolve.resolve(service, catalog)` produces it; `llmstage.render.render(resolved, facts)`
turns it into Kubernetes objects. Both are pure. Keeping this contract small and explicit lets
the renderers be tested without the API models and the API without the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llmstage.api.constants import Runtime, Stage


class ScaleMetric(StrEnum):
    QUEUE = "queue"  # vLLM queue depth (vllm:num_requests_waiting through a metrics adapter)
    CPU = "cpu"


class Autoscaler(StrEnum):
    HPA = "hpa"  # a HorizontalPodAutoscaler (queue through a metrics adapter)
    KEDA = "keda"  # a KEDA ScaledObject (queue from Prometheus; may scale to zero)


@dataclass(frozen=True)
class KedaSettings:
    """spec.autoscaling.keda: where KEDA's Prometheus trigger reads the metrics."""

    server_address: str | None = None
    query: str | None = None  # replaces the default queue query
    wake_query: str | None = None  # demand seen outside the pods: wakes a service scaled to zero
    cooldown_period: int | None = None  # seconds before scaling to zero (None: KEDA's default)


@dataclass(frozen=True)
class SecretKeyRef:
    """A Secret key the rendered pods read. Not api.base.SecretKeyRef on purpose: Resolved is
    plain frozen data with every default applied (e.g. the key), free of pydantic."""

    name: str
    key: str


@dataclass(frozen=True)
class GPU:
    count: int  # per pod, which is per node
    product: str | None = None  # nvidia.com/gpu.product label value, e.g. NVIDIA-H100-80GB-HBM3
    resource_name: str = "nvidia.com/gpu"
    # Nodes of one replica: above 1, a LeaderWorkerSet group of that many pods (vLLM only).
    nodes: int = 1


@dataclass(frozen=True)
class Resources:
    cpu: str  # Kubernetes quantity, e.g. "2" or "500m"
    memory: str  # Kubernetes quantity, e.g. "8Gi"
    gpu: GPU | None = None
    ephemeral_storage: str | None = None  # Kubernetes quantity; a request only


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    metric: ScaleMetric
    # Per-pod target: waiting requests for QUEUE, average utilisation percent for CPU.
    target: int
    # Name of the per-pod metric an adapter exposes for QUEUE (configurable; adapters rename).
    queue_metric_name: str = "vllm:num_requests_waiting"
    autoscaler: Autoscaler = Autoscaler.HPA
    keda: KedaSettings = field(default_factory=KedaSettings)


@dataclass(frozen=True)
class PVCSource:
    """spec.model.source.pvc: a claim with the model's files, mounted read-only."""

    claim_name: str
    path: str  # the model's directory inside the claim, absolute ("/" is its root)


@dataclass(frozen=True)
class BucketSource:
    """spec.model.source.s3 or .gcs, with the defaults applied: what the download step fetches."""

    kind: str  # "s3" | "gcs"
    bucket: str
    prefix: str  # the objects' common key prefix, without a leading '/' ("" for the whole bucket)
    endpoint: str  # scheme://host[:port], e.g. https://s3.us-east-1.amazonaws.com
    region: str  # what requests are signed for (SigV4)
    virtual_host: bool  # BUCKET.host (AWS) rather than host/BUCKET (path style: MinIO, GCS)
    credentials_secret: str | None  # Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY


@dataclass(frozen=True)
class OCISource:
    """spec.model.source.oci: an image volume with the model's files."""

    image: str
    path: str  # the model's directory inside the image, absolute
    pull_policy: str | None = None  # None: Kubernetes' default


# Where vLLM's weights come from when not from Hugging Face; None in ModelInfo.source means the Hub
# (or a mirror of it), repository ModelInfo.hugging_face_id.
WeightsSource = PVCSource | BucketSource | OCISource


@dataclass(frozen=True)
class LoRAAdapter:
    name: str  # the model name clients send for it
    hugging_face_id: str  # "" when the adapter comes from `source`
    revision: str | None = None
    source: WeightsSource | None = None  # spec.lora.adapters[].source pvc, oci, s3, gcs; None: the Hub


@dataclass(frozen=True)
class ModelInfo:
    """What the catalog knows about the model, resolved for the chosen runtime."""

    name: str  # the user's spec.model.name, e.g. "llama3.1:8b"
    ollama_tag: str  # what `ollama pull` takes
    hugging_face_id: str  # what `vllm serve` takes
    revision: str | None
    format: str  # "gguf" | "safetensors"
    quantization: str | None  # e.g. "q4_K_M", "awq", "fp8"; None for full precision
    parameters_billion: float | None  # None when the model is not in the catalog
    context_length: int | None  # default context of the model
    # Not from Hugging Face (spec.model.source pvc, s3, gcs, oci): vLLM serves a local directory and
    # hugging_face_id is "". Only vLLM reads it; Ollama pulls ollama_tag.
    source: WeightsSource | None = None
    hugging_face_endpoint: str | None = None  # a mirror of huggingface.co (HF_ENDPOINT)


@dataclass(frozen=True)
class ConfigMapKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class OllamaRegistry:
    """A private registry the init container pulls from (spec.ollama.registry)."""

    host: str  # e.g. registry.internal:5000
    insecure: bool = False  # plain HTTP: `ollama pull --insecure`
    ca_config_map: ConfigMapKeyRef | None = None  # PEM bundle, read through SSL_CERT_FILE
    key_secret: SecretKeyRef | None = None  # Ollama's ed25519 private key (~/.ollama/id_ed25519)


@dataclass(frozen=True)
class OllamaSettings:
    image: str
    num_parallel: int
    keep_alive: str
    context_length: int
    env: dict[str, str] = field(default_factory=dict)
    # What `ollama pull` takes when it differs from model.ollama_tag: the tag on spec.ollama.registry,
    # e.g. registry.internal:5000/library/smollm2:135m. The pulled model is then copied to the
    # served model name when the two differ.
    pull_ref: str | None = None
    registry: OllamaRegistry | None = None
    env_from: tuple[dict[str, Any], ...] = ()  # core/v1 EnvFromSources
    api_key_secret_ref: SecretKeyRef | None = None  # checked by the gateway (render/gateway.py)


@dataclass(frozen=True)
class LoRA:
    adapters: tuple[LoRAAdapter, ...]
    max_loras: int
    max_rank: int | None = None  # None: vLLM's default (16)


@dataclass(frozen=True)
class VLLMOnCPU:
    """What vLLM's CPU backend is told, since it cannot measure a pod's share of the node."""

    kv_cache_gib: int  # VLLM_CPU_KVCACHE_SPACE: the KV cache, sized by the memory fit
    omp_threads: int  # OMP_NUM_THREADS: the CPU request less one core for the API server and scheduler
    # Node labels of which the node must have one (node-feature-discovery), for bf16/fp16 kernels;
    # empty: any x86-64 node (float32).
    cpu_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class VLLMSettings:
    image: str
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int | None  # None: vLLM's own default (continuous batching up to 256 or 1024)
    tensor_parallel_size: int
    dtype: str
    quantization: str | None  # passed as --quantization: online methods only (the rest is detected)
    extra_args: tuple[str, ...] = ()
    api_key_secret_ref: SecretKeyRef | None = None
    kv_cache_dtype: str | None = None  # from --kv-cache-dtype in extra_args, for the memory fit
    env: dict[str, str] = field(default_factory=dict)
    env_from: tuple[dict[str, Any], ...] = ()  # core/v1 EnvFromSources
    lora: LoRA | None = None
    enforce_eager: bool = False
    cpu: VLLMOnCPU | None = None  # set when the pods have no GPU: vLLM's CPU image and backend
    # Pipeline stages, one per node of a multi-node replica (1: the whole model in one pod).
    pipeline_parallel_size: int = 1


@dataclass(frozen=True)
class Scheduling:
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] | None = None
    runtime_class_name: str | None = None
    priority_class_name: str | None = None


@dataclass(frozen=True)
class PodOptions:
    """spec.pod: what the user adds to the serving pods (llmstage's own settings always win)."""

    service_account_name: str | None = None
    automount_service_account_token: bool = False
    image_pull_secrets: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    volumes: tuple[dict[str, Any], ...] = ()  # core/v1 Volumes, as the user wrote them
    volume_mounts: tuple[dict[str, Any], ...] = ()  # core/v1 VolumeMounts


@dataclass(frozen=True)
class NetworkAccess:
    """spec.networkPolicy: who may call the model (render/network.py)."""

    enabled: bool = True
    # NetworkPolicyPeers (namespaceSelector, podSelector); empty: the LLMService's namespace.
    clients: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PodSecurity:
    """The serving pods' user and group IDs (the install's serving defaults). None: the runtime's
    own (render/pod.py); platform_assigns_ids: none at all, the platform assigns them."""

    platform_assigns_ids: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    fs_group: int | None = None


@dataclass(frozen=True)
class ModelCache:
    size: str  # Kubernetes quantity, of each claim
    storage_class_name: str | None = None
    # ReadWriteOnce for a single replica or a claim per pod; ReadWriteMany when several pods share
    # the cache. With claim_name: what the user's claim must allow (its real mode is its own).
    access_mode: str = "ReadWriteOnce"
    # A claim per pod (generic ephemeral volume) instead of one shared claim.
    per_pod: bool = False
    # An existing claim to mount as the shared cache: not rendered, never pruned.
    claim_name: str | None = None

    @property
    def shared_single_attach(self) -> bool:
        """One claim for every pod, in a mode only one node (ReadWriteOnce) or one pod
        (ReadWriteOncePod) can mount: a second pod cannot start while the first holds it."""
        return not self.per_pod and self.access_mode in ("ReadWriteOnce", "ReadWriteOncePod")


@dataclass(frozen=True)
class Finding:
    """A check result for status conditions and warnings: machine reason plus readable message."""

    reason: str  # CamelCase, e.g. "OllamaInProduction", "DoesNotFit"
    message: str


@dataclass(frozen=True)
class MemoryFit:
    fits: bool | None  # None when it cannot be computed (unknown model or GPU product)
    reason: str
    message: str  # with the numbers: weights, KV cache, overhead, available


@dataclass(frozen=True)
class Routing:
    """spec.routing: an InferencePool of the serving pods, attached to a Gateway by an HTTPRoute."""

    gateway_name: str
    gateway_namespace: str  # the LLMService's namespace unless spec.routing.gatewayRef says otherwise
    section_name: str | None = None
    endpoint_picker: str | None = None  # the endpoint picker's Service, in the LLMService's namespace
    endpoint_picker_port: int = 9002
    failure_mode: str = "FailClose"
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    """Everything the renderers need. No field here is optional by accident: None means 'off'."""

    name: str
    namespace: str
    uid: str  # of the LLMService, for ownerReferences ("" when rendering offline)
    generation: int
    stage: Stage
    runtime: Runtime
    runtime_reason: str  # e.g. "stage production and 50 expected users > 4: vLLM"
    served_model_name: str
    expected_concurrency: int
    model: ModelInfo
    resources: Resources
    replicas: int | None  # None when autoscaling owns the replica count
    autoscaling: Autoscaling | None
    cache: ModelCache
    hugging_face_token_secret_ref: SecretKeyRef | None
    scheduling: Scheduling
    ollama: OllamaSettings | None  # set when runtime is OLLAMA
    vllm: VLLMSettings | None  # set when runtime is VLLM
    pod_disruption_budget: bool  # production: keep serving through node drains
    topology_spread: bool  # production: spread replicas across nodes
    memory_fit: MemoryFit
    warnings: tuple[Finding, ...] = ()  # the article's common mistakes that apply
    pod: PodOptions = field(default_factory=PodOptions)
    network: NetworkAccess = field(default_factory=NetworkAccess)
    routing: Routing | None = None  # None: the Service alone

    pod_security: PodSecurity = field(default_factory=PodSecurity)
    # The install's extra labels of PodMonitors: what the cluster's Prometheus selects them by.
    pod_monitor_labels: dict[str, str] = field(default_factory=dict)
    # The gateway's image (render/gateway.py), through the serving defaults' registry mirror.
    gateway_image: str | None = None

    @property
    def multi_node(self) -> bool:
        """One replica spans several nodes: a LeaderWorkerSet group instead of a Deployment's pod."""
        return self.resources.gpu is not None and self.resources.gpu.nodes > 1


@dataclass(frozen=True)
class ClusterFacts:
    """What the renderers may know about the target cluster (offline: defaults)."""

    pod_monitor_crd: bool = False  # monitoring.coreos.com/v1 PodMonitor exists
    keda_crd: bool = False  # keda.sh/v1alpha1 ScaledObject exists (KEDA is installed)
    lws_crd: bool = False  # leaderworkerset.x-k8s.io/v1 LeaderWorkerSet exists (LWS is installed)
    # inference.networking.k8s.io/v1 InferencePool and gateway.networking.k8s.io/v1 HTTPRoute exist.
    inference_pool_crd: bool = False
    http_route_crd: bool = False
    # Where Prometheus scrapes from (`llmstage run --monitoring-namespace`): the NetworkPolicy
    # admits it to vLLM's /metrics. None: nobody but the allowed clients.
    monitoring_namespace: str | None = None
