"""The parts of LLMServiceSpec, one section per subject: references, spec.model and spec.lora
(the model, its shape, where its weights come from, the adapters), spec.autoscaling,
spec.resources with spec.cache and spec.scheduling, spec.ollama and spec.vllm, spec.pod, and
spec.networkPolicy with spec.routing. spec.py puts them together."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from llmstage import ollama_name
from llmstage.api.base import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    DURATION,
    ENV_NAME,
    HOSTNAME,
    HUGGING_FACE_ID,
    IMAGE,
    LABEL_VALUE,
    MODEL_NAME,
    PRINTABLE,
    QUALIFIED_NAME,
    QUANTIZATION,
    SECRET_KEY,
    SERVED_MODEL_NAME,
    ApiModel,
    CelRule,
    ObjectName,
    Quantity,
    cel_list,
)
from llmstage.api.constants import (
    DEFAULT_QUEUE_METRIC,
    MANAGED_ANNOTATIONS,
    MANAGED_ENV_PREFIX,
    MANAGED_LABEL_PREFIXES,
    MANAGED_MOUNT_PATHS,
    MANAGED_OLLAMA_ENV,
    MANAGED_VLLM_ENV,
    MANAGED_VLLM_FLAG_PATTERN,
    MANAGED_VLLM_FLAGS,
    MANAGED_VOLUME_PREFIX,
    MANAGED_VOLUMES,
    MAX_GPUS,
    MAX_LATENCY_MS,
    MAX_LORA_ADAPTERS,
    MAX_NODES,
    MAX_REPLICAS,
    SOURCE_KINDS,
    AccessMode,
    AutoscalerChoice,
    CacheMode,
    FailureMode,
    ModelFormat,
    ScaleMetricChoice,
    VLLMDtype,
)
from llmstage.api.quantity import QUANTITY_PATTERN
from pydantic import AfterValidator, Field

# -------------------- references to objects of the LLMService's namespace


def _key_field(default: str, description: str) -> Any:
    """The `key` of a reference whose key has a default."""
    return Field(default=default, min_length=1, max_length=253, pattern=SECRET_KEY, description=description)


class SecretKeyRef(ApiModel):
    """A key of a Secret in the LLMService's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY, description="Key within the Secret.")


class HuggingFaceTokenSecretRef(SecretKeyRef):
    """Secret key holding a Hugging Face token, passed to vLLM as HF_TOKEN (gated models need it)."""

    key: str = _key_field(
        "token", "Key within the Secret holding the token (default 'token', as in the vLLM docs)."
    )


class APIKeySecretRef(SecretKeyRef):
    """Secret key holding the API key clients must send as 'Authorization: Bearer <key>'."""

    key: str = _key_field("api-key", "Key within the Secret holding the API key (default 'api-key').")


class LocalObjectReference(ApiModel):
    name: ObjectName = Field(description="The object's name.")


# -------------------- spec.model, spec.lora: the model, its shape, where its weights come from, adapters


class ModelArchitecture(ApiModel):
    """Model shape for models outside the catalog, or to override catalog values.

    With these set, the memory-fit check (condition ModelFits) works for any model.
    """

    parameters_billion: float | None = Field(
        default=None, gt=0, le=10_000, description="Parameter count in billions, e.g. 8.03."
    )
    layers: int | None = Field(default=None, ge=1, le=1000, description="Number of transformer layers.")
    attention_heads: int | None = Field(
        default=None, ge=1, le=1024, description="Number of attention (query) heads."
    )
    kv_heads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Number of key/value heads (fewer than attention heads with GQA).",
    )
    head_dim: int | None = Field(default=None, ge=1, le=1024, description="Dimension of one attention head.")
    intermediate_size: int | None = Field(
        default=None,
        ge=1,
        le=1_048_576,
        description=(
            "Size of the MLP's hidden layer (config.json intermediate_size); vLLM's tensor-parallel "
            "size must divide it."
        ),
    )
    context_length: int | None = Field(
        default=None, ge=128, le=10_485_760, description="Longest context the model supports, in tokens."
    )


# Where vLLM's weights come from (spec.model.source). S3 bucket names: 3-63 characters of lower-case
# letters, digits, '.' and '-'; GCS allows '_' too. Object keys: a safe subset (no spaces, no '?',
# '#' or '%', which would need URL escaping the download script does not guess at).
_OBJECT_KEY = r"(/[A-Za-z0-9._=+,@/-]*)?"
S3_URL = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]" + _OBJECT_KEY + "$"
GCS_URL = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]" + _OBJECT_KEY + "$"
# An S3-compatible endpoint: scheme, host and optional port, no path.
ENDPOINT_URL = r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$"
# A Hugging Face mirror may live under a path (https://mirror.internal/hf).
MIRROR_URL = r"^https?://[^\s]+$"
REGION = r"^[a-z0-9][a-z0-9-]*$"
# A directory inside a volume or an image, written absolute: '/' is the volume's root.
VOLUME_PATH = r"^/[A-Za-z0-9._@+=,/-]*$"
# '..' as a whole path segment: it would leave the volume, the image or the bucket prefix.
_DOT_DOT_SEGMENT = "(^|/)[.][.](/|$)"


def _no_dot_dot_rule(field: str, attr: str, camel: str) -> CelRule:
    return CelRule(
        rule=f"!self.{camel}.matches('{_DOT_DOT_SEGMENT}')",
        message=(
            f"spec.model.source.{field} (and spec.lora.adapters[].source.{field}) must not contain a "
            "'..' segment: it would leave the volume, image or bucket prefix; write the directory's own path"
        ),
        check=lambda s: not re.search(_DOT_DOT_SEGMENT, getattr(s, attr)),
        field_path=f".{camel}",
    )


class HuggingFaceSource(ApiModel):
    """A Hugging Face repository, from huggingface.co or a mirror (what spec.model.huggingFaceId names)."""

    id: str = Field(
        max_length=200,
        pattern=HUGGING_FACE_ID,
        description="The repository vLLM serves, e.g. 'meta-llama/Llama-3.1-8B-Instruct'.",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Revision (branch, tag or commit) to pin.",
    )
    endpoint: str | None = Field(
        default=None,
        max_length=1024,
        pattern=MIRROR_URL,
        description=(
            "A Hugging Face mirror, e.g. https://hf-mirror.internal: HF_ENDPOINT of the download step and "
            "of vLLM. Default: huggingface.co."
        ),
    )


class PVCSource(ApiModel):
    """Weights already on a PersistentVolumeClaim: mounted read-only, nothing is downloaded."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (_no_dot_dot_rule("pvc.path", "path", "path"),)

    claim_name: ObjectName = Field(
        description=(
            "PersistentVolumeClaim in the LLMService's namespace holding the model's Hugging Face files "
            "(config.json, tokenizer, *.safetensors). ReadOnlyMany or ReadWriteMany for more than one "
            "replica on several nodes."
        ),
    )
    path: str = Field(
        default="/",
        min_length=1,
        max_length=1024,
        pattern=VOLUME_PATH,
        description=(
            "Directory of the model inside the claim, e.g. /llama-3.1-8b-instruct. Default: its root."
        ),
    )


class BucketCredentialsRef(ApiModel):
    """A Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN optional).

    Passed to the download step as secretKeyRef variables; llmstage never reads the Secret.
    """

    name: ObjectName = Field(description="Name of the Secret.")


class S3Source(ApiModel):
    """An S3 or S3-compatible (MinIO, Ceph RGW, ...) prefix, downloaded into the model cache."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (_no_dot_dot_rule("s3.url", "url", "url"),)

    url: str = Field(
        min_length=8,
        max_length=1024,
        pattern=S3_URL,
        description=(
            "s3://BUCKET/PREFIX of the model's Hugging Face files (config.json, tokenizer, *.safetensors), "
            "e.g. s3://models/llama-3.1-8b-instruct."
        ),
    )
    endpoint: str | None = Field(
        default=None,
        max_length=1024,
        pattern=ENDPOINT_URL,
        description=(
            "Endpoint of an S3-compatible store, e.g. http://minio.storage.svc:9000 (path-style requests). "
            "Default: AWS, https://BUCKET.s3.REGION.amazonaws.com."
        ),
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=REGION,
        description="Region the requests are signed for, e.g. eu-west-1. Default: us-east-1.",
    )
    credentials_secret_ref: BucketCredentialsRef | None = Field(
        default=None,
        description=(
            "Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN). "
            "Default: unsigned requests (a public bucket)."
        ),
    )


class GCSSource(ApiModel):
    """A Google Cloud Storage prefix, downloaded into the model cache (through GCS's XML API)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (_no_dot_dot_rule("gcs.url", "url", "url"),)

    url: str = Field(
        min_length=8,
        max_length=1024,
        pattern=GCS_URL,
        description="gs://BUCKET/PREFIX of the model's Hugging Face files, e.g. gs://models/llama-3.1-8b.",
    )
    credentials_secret_ref: BucketCredentialsRef | None = Field(
        default=None,
        description=(
            "Secret with an HMAC key of a service account under the keys AWS_ACCESS_KEY_ID (the access "
            "id) and AWS_SECRET_ACCESS_KEY (the secret). Default: the pod's Workload Identity (an access "
            "token from the GKE metadata server; set spec.pod.serviceAccountName)."
        ),
    )


class OCISource(ApiModel):
    """An OCI image or artifact with the model's files, mounted read-only as an image volume.

    Needs Kubernetes 1.35 or later (the ImageVolume feature: beta and on by default in 1.35, GA in
    1.36) and a container runtime that supports image volumes. Pulled like the server's image:
    spec.pod.imagePullSecrets and the node's credentials apply.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (_no_dot_dot_rule("oci.path", "path", "path"),)

    image: str = Field(
        min_length=1,
        max_length=512,
        pattern=IMAGE,
        description=(
            "Image or artifact reference, e.g. registry.internal/models/llama-3.1-8b:v1 (or @sha256:...)."
        ),
    )
    path: str = Field(
        default="/",
        min_length=1,
        max_length=1024,
        pattern=VOLUME_PATH,
        description="Directory of the model inside the image, e.g. /model. Default: its root.",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description=(
            "Pull policy of the image volume. Default: Kubernetes' (Always for :latest, else IfNotPresent)."
        ),
    )


class ModelSource(ApiModel):
    """Where vLLM's weights come from: exactly one kind. Ollama always pulls spec.model.name from its
    registry (spec.ollama.registry for a private one). LoRA adapters take the same kinds."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="[" + ", ".join(f"has(self.{k})" for k in SOURCE_KINDS) + "].filter(x, x).size() == 1",
            message=(
                "spec.model.source (and spec.lora.adapters[].source) must set exactly one of huggingFace, "
                "pvc, s3, gcs and oci: keep the one the weights come from and remove the others"
            ),
            check=lambda s: len(s.kinds()) == 1,
        ),
    )

    hugging_face: HuggingFaceSource | None = Field(
        default=None, description="A Hugging Face repository (or a mirror of huggingface.co)."
    )
    pvc: PVCSource | None = Field(
        default=None, description="A PersistentVolumeClaim with the files: mounted read-only, no download."
    )
    s3: S3Source | None = Field(default=None, description="An S3 or S3-compatible prefix, downloaded first.")
    gcs: GCSSource | None = Field(
        default=None, description="A Google Cloud Storage prefix, downloaded first."
    )
    oci: OCISource | None = Field(
        default=None,
        description="An OCI image with the files, mounted as an image volume (Kubernetes 1.35+).",
    )

    def kinds(self) -> list[str]:
        return [k for k, attr in SOURCE_KINDS.items() if getattr(self, attr) is not None]


class ModelSpec(ApiModel):
    """Which model to serve. The same model runs on Ollama (GGUF) and vLLM (Hugging Face weights)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.huggingFaceId) || !has(self.source)",
            message=(
                "spec.model.huggingFaceId and spec.model.source both say where vLLM's weights come from: "
                "keep one (spec.model.source.huggingFace.id is the same as huggingFaceId)"
            ),
            check=lambda s: s.hugging_face_id is None or s.source is None,
            field_path=".source",
        ),
        CelRule(
            rule="!has(self.revision) || !has(self.source)",
            message=(
                "spec.model.revision pins a Hugging Face revision of spec.model.huggingFaceId: with "
                "spec.model.source, use spec.model.source.huggingFace.revision (pvc, s3, gcs and oci "
                "sources have no revisions) and remove spec.model.revision"
            ),
            check=lambda s: s.revision is None or s.source is None,
            field_path=".revision",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=MODEL_NAME,
        description=(
            "Ollama tag or catalog name, e.g. 'llama3.1:8b', 'qwen2.5:7b' or 'llama3.1:8b-instruct-q8_0'. "
            "Catalog models also resolve their Hugging Face id for vLLM. Run `llmstage catalog` to list them."
        ),
    )
    hugging_face_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=HUGGING_FACE_ID,
        description=(
            "Hugging Face repository vLLM serves, e.g. 'meta-llama/Llama-3.1-8B-Instruct'. "
            "Overrides the catalog; required for vLLM when the model is not in the catalog."
        ),
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Hugging Face revision (branch, tag or commit) to pin for vLLM.",
    )
    format: ModelFormat | None = Field(
        default=None,
        description=(
            "Weight format: gguf (Ollama's format) or safetensors (what vLLM prefers). "
            "Default: gguf on Ollama, safetensors on vLLM."
        ),
    )
    quantization: str | None = Field(
        default=None,
        max_length=32,
        pattern=QUANTIZATION,
        description=(
            "Weight quantization, e.g. 'q4_K_M' or 'q8_0' (GGUF, Ollama) or 'awq', 'gptq', 'fp8' (vLLM). "
            "Default: the Ollama tag's quantization on Ollama, the model's native bf16 on vLLM."
        ),
    )
    architecture: ModelArchitecture | None = Field(
        default=None,
        description=(
            "Model shape for the memory-fit check; overrides the catalog field by field. Needed for the "
            "fit (and the default cache size) when spec.model.name is not in the catalog, e.g. with a "
            "pvc, s3, gcs or oci source."
        ),
    )
    source: ModelSource | None = Field(
        default=None,
        description=(
            "Where vLLM's weights come from: huggingFace (a repository or a mirror), pvc (a claim with the "
            "files, no download), s3 or gcs (a prefix, downloaded into the model cache), oci (an image "
            "volume). With pvc, s3, gcs or oci vLLM runs with HF_HUB_OFFLINE=1 and nothing calls "
            "huggingface.co. Default: Hugging Face, spec.model.huggingFaceId or the catalog's repository. "
            "Ollama ignores it: it pulls spec.model.name (see spec.ollama.registry)."
        ),
    )


class LoRAAdapter(ApiModel):
    """A LoRA adapter vLLM serves beside the base model, under a model name of its own."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.huggingFaceId) != has(self.source)",
            message=(
                "spec.lora.adapters[] need exactly one of huggingFaceId and source: set huggingFaceId for "
                "a Hugging Face repository, or source (huggingFace, pvc, s3, gcs, oci) for anything else"
            ),
            check=lambda s: (s.hugging_face_id is None) != (s.source is None),
        ),
        CelRule(
            rule="!has(self.revision) || !has(self.source)",
            message=(
                "spec.lora.adapters[].revision pins a revision of huggingFaceId: with source, use "
                "source.huggingFace.revision and remove revision"
            ),
            check=lambda s: s.revision is None or s.source is None,
            field_path=".revision",
        ),
        CelRule(
            rule=(
                "!has(self.source) || !has(self.source.huggingFace) || !has(self.source.huggingFace.endpoint)"
            ),
            message=(
                "spec.lora.adapters[].source.huggingFace.endpoint is not read: adapters download through the "
                "base model's mirror (spec.model.source.huggingFace.endpoint) or spec.vllm.env HF_ENDPOINT; "
                "remove it"
            ),
            check=lambda s: (
                s.source is None or s.source.hugging_face is None or s.source.hugging_face.endpoint is None
            ),
            field_path=".source",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SERVED_MODEL_NAME,
        description="The `model` string clients send to use this adapter, e.g. 'sql-assistant'.",
    )
    hugging_face_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=HUGGING_FACE_ID,
        description=(
            "Hugging Face repository of the adapter (PEFT format: adapter_config.json and the weights), "
            "downloaded into the model cache before vLLM starts. Exactly one of huggingFaceId and source."
        ),
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Revision (branch, tag or commit) of the adapter to pin.",
    )
    source: ModelSource | None = Field(
        default=None,
        description=(
            "Where the adapter's files (adapter_config.json and the weights) come from, the same kinds as "
            "spec.model.source: huggingFace, pvc and oci (mounted read-only), s3 and gcs (downloaded into "
            "the model cache). Exactly one of huggingFaceId and source."
        ),
    )


class LoRASpec(ApiModel):
    """LoRA adapters on the same endpoint as the base model (vLLM only)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.adapters.all(a, self.adapters.exists_one(b, b.name == a.name))",
            message="spec.lora.adapters[].name must be unique: each adapter is a model name of its own",
            check=lambda s: len({a.name for a in s.adapters}) == len(s.adapters),
            field_path=".adapters",
        ),
        CelRule(
            rule="!has(self.maxLoras) || self.maxLoras <= size(self.adapters)",
            message=(
                "spec.lora.maxLoras must not exceed the number of adapters: each slot reserves GPU memory; "
                "lower maxLoras or remove it"
            ),
            check=lambda s: s.max_loras is None or s.max_loras <= len(s.adapters),
            field_path=".maxLoras",
        ),
    )

    adapters: list[LoRAAdapter] = Field(
        min_length=1, max_length=MAX_LORA_ADAPTERS, description="The adapters, each under its own name."
    )
    max_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] | None = Field(
        default=None,
        description=(
            "--max-lora-rank: at least the largest rank (r in adapter_config.json) of the adapters; vLLM "
            "refuses an adapter of a larger rank. Default: vLLM's 16."
        ),
    )
    max_loras: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LORA_ADAPTERS,
        description=(
            "--max-loras: adapters one batch may mix; each slot reserves GPU memory for a max-rank "
            "adapter. Default: the number of adapters, at most 4 (vLLM's own default, 1, would serialise "
            "requests for different adapters)."
        ),
    )


# -------------------- spec.autoscaling: who scales the replicas (an HPA or KEDA) and on what


# Where KEDA finds Prometheus: an http(s) URL without whitespace.
PROMETHEUS_URL = r"^https?://[^\s]+$"
MAX_COOLDOWN_SECONDS = 86_400


class KedaSpec(ApiModel):
    """How KEDA reads the metrics (spec.autoscaling.autoscaler keda)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="(!has(self.query) && !has(self.wakeQuery)) || has(self.serverAddress)",
            message=(
                "spec.autoscaling.keda.query and wakeQuery are PromQL that KEDA sends to Prometheus: "
                "set spec.autoscaling.keda.serverAddress to the Prometheus URL, "
                "e.g. http://prometheus-operated.monitoring.svc:9090"
            ),
            check=lambda s: (s.query is None and s.wake_query is None) or s.server_address is not None,
            field_path=".serverAddress",
        ),
    )

    server_address: str | None = Field(
        default=None,
        max_length=1024,
        pattern=PROMETHEUS_URL,
        description=(
            "Prometheus URL KEDA's Prometheus trigger queries, e.g. "
            "http://prometheus-operated.monitoring.svc:9090. Required on vLLM (the queue metric)."
        ),
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description=(
            "PromQL for the queue, replacing the default sum of vllm:num_requests_waiting over this "
            "service's pods; KEDA divides its value by the replica count and compares it with "
            "spec.autoscaling.target."
        ),
    )
    wake_query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description=(
            "PromQL that is above 0 while clients send requests, measured outside the serving pods "
            "(ingress, gateway or load-balancer metrics), e.g. "
            'sum(rate(nginx_ingress_controller_requests{service="chat"}[2m])). While it is above 0 KEDA '
            "keeps at least one pod; it is what wakes a service scaled to zero. Required with minReplicas 0."
        ),
    )
    cooldown_period: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COOLDOWN_SECONDS,
        description=(
            "Seconds without activity (queue and wakeQuery both 0) before KEDA scales to zero; "
            "only used with minReplicas 0. Default: KEDA's, 300."
        ),
    )


class AutoscalingSpec(ApiModel):
    """Let an autoscaler own the replica count. Mutually exclusive with spec.replicas."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            message=(
                "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas: "
                "raise maxReplicas or lower minReplicas"
            ),
            check=lambda s: (
                s.min_replicas is None or s.max_replicas is None or s.min_replicas <= s.max_replicas
            ),
            field_path=".minReplicas",
        ),
        CelRule(
            rule="self.autoscaler == 'keda' || !has(self.minReplicas) || self.minReplicas >= 1",
            message=(
                "spec.autoscaling.minReplicas 0 (scale to zero) needs autoscaler keda: a "
                "HorizontalPodAutoscaler cannot scale to zero; set spec.autoscaling.autoscaler keda "
                "(KEDA must be installed) or minReplicas >= 1"
            ),
            check=lambda s: (
                s.autoscaler == AutoscalerChoice.KEDA or s.min_replicas is None or s.min_replicas >= 1
            ),
            field_path=".minReplicas",
        ),
        CelRule(
            rule="self.autoscaler == 'keda' || !has(self.keda)",
            message=(
                "spec.autoscaling.keda is only read with autoscaler keda: set "
                "spec.autoscaling.autoscaler keda, or remove spec.autoscaling.keda"
            ),
            check=lambda s: s.autoscaler == AutoscalerChoice.KEDA or s.keda is None,
            field_path=".keda",
        ),
        CelRule(
            rule=(
                "!has(self.minReplicas) || self.minReplicas != 0 || "
                "(has(self.keda) && has(self.keda.wakeQuery))"
            ),
            message=(
                "spec.autoscaling.minReplicas 0 needs spec.autoscaling.keda.wakeQuery: with no pod "
                "running there is no queue or CPU to measure, so nothing would scale the service up "
                "again; set wakeQuery (and serverAddress) to a PromQL query that counts requests before "
                "they reach the pods, e.g. at the ingress or gateway"
            ),
            check=lambda s: s.min_replicas != 0 or (s.keda is not None and s.keda.wake_query is not None),
            field_path=".keda",
        ),
    )

    autoscaler: AutoscalerChoice = Field(
        default=AutoscalerChoice.HPA,
        description=(
            "Who scales: hpa (a HorizontalPodAutoscaler; the queue metric needs a metrics adapter such "
            "as prometheus-adapter, see manifests/prometheus-adapter-rules.yaml) or keda (a KEDA "
            "ScaledObject that reads Prometheus itself; KEDA must be installed; allows minReplicas 0 "
            "in dev and staging)."
        ),
    )
    min_replicas: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description=(
            "Fewest replicas. Default: 1 in dev and staging, 2 in production. 0 (scale to zero) only "
            "with autoscaler keda, a keda.wakeQuery, and in stages dev and staging."
        ),
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description="Most replicas. Default: 2 in dev and staging, 8 in production (at least minReplicas).",
    )
    metric: ScaleMetricChoice = Field(
        default=ScaleMetricChoice.AUTO,
        description=(
            "What to scale on: queue (vLLM's waiting requests per pod, through a metrics adapter or "
            "KEDA's Prometheus trigger), cpu (utilisation; Ollama has no metrics endpoint), or auto "
            "(queue on vLLM, cpu on Ollama)."
        ),
    )
    target: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Per-pod target: waiting requests for queue (default 3), "
            "utilisation percent for cpu (default 70)."
        ),
    )
    queue_metric_name: str = Field(
        default=DEFAULT_QUEUE_METRIC,
        min_length=1,
        max_length=253,
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description=(
            "Pods metric the adapter exposes for queue depth (adapters may rename vLLM's metric); "
            "autoscaler hpa only (KEDA queries Prometheus, see keda.query)."
        ),
    )
    keda: KedaSpec | None = Field(
        default=None, description="KEDA's Prometheus settings (autoscaler keda only)."
    )


# -------------------- spec.resources, spec.cache, spec.scheduling: what a replica gets, where it runs


class GPUSpec(ApiModel):
    """GPUs per replica. Both runtimes use them when present; without GPUs vLLM runs on its CPU backend."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.product) || self.count >= 1",
            message=(
                "spec.resources.gpu.product needs spec.resources.gpu.count >= 1: "
                "set count, or remove product for CPU-only inference"
            ),
            check=lambda s: s.product is None or s.count >= 1,
            field_path=".product",
        ),
        CelRule(
            rule="!has(self.memory) || self.count >= 1",
            message=(
                "spec.resources.gpu.memory needs spec.resources.gpu.count >= 1: "
                "set count, or remove memory for CPU-only inference"
            ),
            check=lambda s: s.memory is None or s.count >= 1,
            field_path=".memory",
        ),
        CelRule(
            rule="!has(self.nodes) || self.nodes == 1 || self.count >= 1",
            message=(
                "spec.resources.gpu.nodes above 1 spreads one vLLM replica over several GPU nodes and needs "
                "spec.resources.gpu.count >= 1 (the GPUs of each node): set count, or remove nodes"
            ),
            check=lambda s: s.nodes is None or s.nodes == 1 or s.count >= 1,
            field_path=".nodes",
        ),
    )

    count: int = Field(
        default=1,
        ge=0,
        le=MAX_GPUS,
        description=(
            "GPUs per replica; vLLM shards the model over them (tensor parallelism). 0 means CPU-only: "
            "Ollama, or vLLM's CPU image with runtime vllm."
        ),
    )
    product: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE,
        description=(
            "GPU model as the nvidia.com/gpu.product node label spells it, e.g. 'NVIDIA-L4' or "
            "'NVIDIA-H100-80GB-HBM3'. Pods are pinned to such nodes and the memory-fit check uses it."
        ),
    )
    resource_name: str = Field(
        default="nvidia.com/gpu",
        min_length=1,
        max_length=253,
        pattern=QUALIFIED_NAME,
        description=(
            "Extended resource to request, e.g. 'nvidia.com/gpu' "
            "or a MIG profile like 'nvidia.com/mig-3g.40gb'."
        ),
    )
    memory: Quantity | None = Field(
        default=None,
        description="Memory of one GPU, e.g. '24Gi', for products the built-in table does not know.",
    )
    nodes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NODES,
        description=(
            "Nodes per replica, each with `count` GPUs: above 1, vLLM runs one model over several nodes as "
            "a LeaderWorkerSet group (tensor parallel within a node, pipeline parallel across nodes; needs "
            "LeaderWorkerSet installed, docs/multi-node.md). Default: 1, or the fewest nodes the memory "
            "fit needs when the model does not fit on 8 GPUs of one node."
        ),
    )


class ResourcesSpec(ApiModel):
    """Compute per replica. Unset values get stage- and model-sized defaults."""

    cpu: Quantity | None = Field(
        default=None,
        description=(
            "CPU request, e.g. '4' or '500m' (no CPU limit: throttling a token generator only adds latency). "
            "Default: 2 (dev), 4 (staging, production Ollama), 2 + 2 per GPU (vLLM)."
        ),
    )
    memory: Quantity | None = Field(
        default=None,
        description=(
            "Memory request and limit, e.g. '16Gi'. "
            "Default: sized from the model (weights + KV cache + overhead) on Ollama, "
            "16Gi + 8Gi per GPU on vLLM."
        ),
    )
    gpu: GPUSpec | None = Field(
        default=None,
        description="GPUs per replica. Default: none in dev and staging, one GPU in production.",
    )
    ephemeral_storage: Quantity | None = Field(
        default=None,
        description=(
            "Ephemeral-storage request of the server container, e.g. '20Gi' (HOME, /tmp and the container's "
            "writable layer count against it), so the scheduler picks a node with that much local disk. "
            "Default: none."
        ),
    )


class CacheSpec(ApiModel):
    """Where downloaded weights are kept: a claim per pod, or one claim shared by every pod.

    The defaults bind on any StorageClass, including the ReadWriteOnce-only default classes of
    EKS, GKE and AKS; sharing one claim between several pods needs ReadWriteMany, which only
    some classes support, so it is used when asked for (docs/storage.md).
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.claimName) || "
                "(!has(self.size) && !has(self.storageClassName) && !has(self.accessMode))"
            ),
            message=(
                "spec.cache.claimName names an existing claim, whose size, StorageClass and access mode are "
                "its own: remove spec.cache.size, storageClassName and accessMode, or remove claimName to "
                "let llmstage create the claim"
            ),
            check=lambda s: (
                s.claim_name is None
                or (s.size is None and s.storage_class_name is None and s.access_mode is None)
            ),
            field_path=".claimName",
        ),
        CelRule(
            rule="!has(self.claimName) || !has(self.mode) || self.mode == 'Shared'",
            message=(
                "spec.cache.claimName is one claim that every pod mounts, and mode PerPod gives each pod "
                "a claim of its own: set mode Shared (or remove it), or remove claimName"
            ),
            check=lambda s: s.claim_name is None or s.mode in (None, CacheMode.SHARED),
            field_path=".mode",
        ),
        CelRule(
            rule=(
                "!has(self.mode) || self.mode != 'PerPod' || "
                "!has(self.accessMode) || self.accessMode != 'ReadWriteMany'"
            ),
            message=(
                "spec.cache.accessMode ReadWriteMany is for a cache that several pods share, and mode "
                "PerPod gives each pod a claim of its own: remove accessMode (ReadWriteOnce then), or set "
                "mode Shared"
            ),
            check=lambda s: s.mode != CacheMode.PER_POD or s.access_mode != AccessMode.READ_WRITE_MANY,
            field_path=".accessMode",
        ),
    )

    mode: CacheMode | None = Field(
        default=None,
        description=(
            "PerPod: each pod gets a ReadWriteOnce claim of its own (a generic ephemeral volume named "
            "POD-model-cache, created and deleted with the pod by Kubernetes), which any StorageClass "
            "can provide; each new pod downloads the model again. Shared: one claim for every pod "
            "(NAME-RUNTIME-cache, or spec.cache.claimName), filled once and kept across restarts; with "
            "more than one pod it must be ReadWriteMany, which needs a class that supports it (NFS, EFS, "
            "Filestore, Azure Files, CephFS). Default: Shared when at most one pod runs (replicas 1 and no "
            "autoscaling above 1), when accessMode is ReadWriteMany or claimName is set; PerPod otherwise."
        ),
    )
    claim_name: ObjectName | None = Field(
        default=None,
        description=(
            "An existing PersistentVolumeClaim of the service's namespace to use as the shared cache, "
            "e.g. one pre-filled with the weights: llmstage never creates, changes or deletes it. Its "
            "access mode must allow every pod (ReadWriteMany for more than one). Excludes size, "
            "storageClassName, accessMode and mode PerPod."
        ),
    )
    size: Quantity | None = Field(
        default=None,
        description="Storage request of each claim, e.g. '50Gi'. Default: sized from the model's weights.",
    )
    storage_class_name: ObjectName | None = Field(
        default=None,
        description="StorageClass of the claim(s). Default: the cluster's default class.",
    )
    access_mode: AccessMode | None = Field(
        default=None,
        description=(
            "Access mode of the claim(s). ReadWriteMany asks for one claim that every pod shares (mode "
            "Shared): name a StorageClass that supports it in storageClassName. Default: ReadWriteOnce, "
            "except ReadWriteMany for a Shared cache of more than one pod."
        ),
    )


class Toleration(ApiModel):
    """A core/v1 Toleration."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.operator != 'Exists' || !has(self.value) || self.value == ''",
            message="spec.scheduling.tolerations[].value must be empty when operator is Exists: remove value",
            check=lambda s: s.operator != "Exists" or not s.value,
            field_path=".value",
        ),
        CelRule(
            rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            message=(
                "spec.scheduling.tolerations[].tolerationSeconds applies only to effect NoExecute: "
                "set effect NoExecute or remove tolerationSeconds"
            ),
            check=lambda s: s.toleration_seconds is None or s.effect == "NoExecute",
            field_path=".tolerationSeconds",
        ),
    )

    key: str | None = Field(
        default=None, max_length=316, pattern=QUALIFIED_NAME, description="Taint key; empty matches all keys."
    )
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="How long a NoExecute taint is tolerated before eviction."
    )


class SchedulingSpec(ApiModel):
    """Where the pods run. GPU tolerations and node affinity on the GPU product are added automatically."""

    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels the pods require.",
        json_schema_extra={"propertyNames": {"maxLength": 316}},
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Extra tolerations for the pods."
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="A core/v1 Affinity, passed to the pods as is (merged with the GPU product affinity).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    runtime_class_name: ObjectName | None = Field(
        default=None,
        description="RuntimeClass for the pods, e.g. 'nvidia' where the GPU runtime is not the default.",
    )
    priority_class_name: ObjectName | None = Field(
        default=None,
        description="PriorityClass for the pods.",
    )


# -------------------- spec.ollama, spec.vllm: each runtime's settings, environment and registry


def _managed_env_rule(field: str, names: tuple[str, ...], instead: str) -> CelRule:
    """spec.<runtime>.env may not set what the template sets: it would be ignored or break serving."""
    return CelRule(
        rule=(
            f"!has(self.env) || !self.env.exists(k, k in {cel_list(names)} || "
            f"k.startsWith('{MANAGED_ENV_PREFIX}'))"
        ),
        message=(
            f"spec.{field}.env must not set " + ", ".join(names) + f" or {MANAGED_ENV_PREFIX}* variables: "
            f"llmstage sets them; {instead}"
        ),
        check=lambda s: not any(k in names or k.startswith(MANAGED_ENV_PREFIX) for k in s.env),
        field_path=".env",
    )


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the LLMService's namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap.")
    key: str = _key_field("ca.crt", "Key within the ConfigMap holding PEM certificates (default 'ca.crt').")


class OllamaKeySecretRef(SecretKeyRef):
    """Secret key holding an Ollama private key (the id_ed25519 file Ollama signs registry requests with)."""

    key: str = _key_field(
        "id_ed25519", "Key within the Secret holding the OpenSSH ed25519 private key (default 'id_ed25519')."
    )


class OllamaRegistrySpec(ApiModel):
    """Pull the model from a private or air-gapped registry instead of registry.ollama.ai.

    The init container pulls HOST/NAMESPACE/MODEL:TAG (e.g. registry.internal:5000/library/smollm2:135m
    for model smollm2:135m), then copies it to the name clients send (`ollama cp`).
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!self.insecure || !has(self.caConfigMapRef)",
            message=(
                "spec.ollama.registry.insecure pulls over plain HTTP, so spec.ollama.registry.caConfigMapRef "
                "(a CA for TLS) would never be used: remove one of them"
            ),
            check=lambda s: not s.insecure or s.ca_config_map_ref is None,
            field_path=".insecure",
        ),
    )

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=ollama_name.HOST_PATTERN,
        description=(
            "Registry host and optional port, without scheme, e.g. 'registry.internal:5000'. "
            "HTTPS unless insecure is set."
        ),
    )
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=ollama_name.NAMESPACE_PATTERN,
        description=(
            "Namespace for model names that have none, e.g. 'library' (the default) or 'team-a'. "
            "A model name with its own namespace (team/model:tag) keeps it."
        ),
    )
    insecure: bool = Field(
        default=False,
        description=(
            "Pull over plain HTTP (`ollama pull --insecure`). Only for registries inside the cluster network."
        ),
    )
    ca_config_map_ref: ConfigMapKeyRef | None = Field(
        default=None,
        description=(
            "ConfigMap key with the PEM CA bundle of a registry with a private certificate; the pull "
            "trusts it in addition to the image's system CAs (SSL_CERT_FILE)."
        ),
    )
    key_secret_ref: OllamaKeySecretRef | None = Field(
        default=None,
        description=(
            "Secret key with the Ollama private key (~/.ollama/id_ed25519) the registry knows, for "
            "registries that authenticate Ollama's signed requests (ollama.com private models). Mounted "
            "into the pull init container only. Ollama does not do basic auth (user/password)."
        ),
    )


class OptionalObjectRef(ApiModel):
    """A ConfigMap or Secret in the LLMService's namespace, by name."""

    name: ObjectName = Field(description="Its name.")
    optional: bool | None = Field(default=None, description="Start the pod even if it does not exist.")


class EnvFromSource(ApiModel):
    """A core/v1 EnvFromSource: every key of one ConfigMap or Secret as an environment variable."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.configMapRef) != has(self.secretRef)",
            message=(
                "spec.ollama.envFrom[] and spec.vllm.envFrom[] entries need exactly one of configMapRef "
                "and secretRef: use one entry per ConfigMap or Secret"
            ),
            check=lambda s: (s.config_map_ref is None) != (s.secret_ref is None),
        ),
    )

    prefix: str | None = Field(
        default=None, max_length=128, pattern=ENV_NAME, description="Prepended to every key's name."
    )
    config_map_ref: OptionalObjectRef | None = Field(default=None, description="The ConfigMap.")
    secret_ref: OptionalObjectRef | None = Field(default=None, description="The Secret.")


EnvValue = Annotated[str, Field(max_length=4096)]


def _env_field(description: str) -> Any:
    """spec.<runtime>.env: the same bounds for both runtimes."""
    return Field(
        default_factory=dict,
        max_length=32,
        description=description,
        json_schema_extra={"propertyNames": {"pattern": ENV_NAME, "maxLength": 128}},
    )


def _env_from_field() -> Any:
    return Field(
        default_factory=list,
        max_length=16,
        description=(
            "ConfigMaps and Secrets whose keys become environment variables of the model download step "
            "and the server (core/v1 EnvFromSource), e.g. proxy settings or a Hugging Face mirror. "
            "Variables llmstage sets win over them; llmstage never reads the Secrets."
        ),
    )


class OllamaSpec(ApiModel):
    """Settings used when the runtime is Ollama (dev and staging by default)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        _managed_env_rule(
            "ollama",
            MANAGED_OLLAMA_ENV,
            "use spec.ollama.numParallel, keepAlive and contextLength instead (OLLAMA_NOPRUNE is always 1: "
            "pods share the model cache)",
        ),
    )

    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE,
        description="Ollama image. Default: a pinned ollama/ollama release.",
    )
    num_parallel: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description=(
            "OLLAMA_NUM_PARALLEL: requests served at once per replica. "
            "Default: expectedConcurrency per replica (Ollama's own default is 1)."
        ),
    )
    keep_alive: str | None = Field(
        default=None,
        max_length=32,
        pattern=DURATION,
        description=(
            "OLLAMA_KEEP_ALIVE: how long the model stays loaded after a request. Default: '-1' (always)."
        ),
    )
    context_length: int | None = Field(
        default=None,
        ge=256,
        le=1_048_576,
        description=(
            "OLLAMA_CONTEXT_LENGTH in tokens. Default: the model's context, at most 8192 (same as vLLM)."
        ),
    )
    env: dict[str, EnvValue] = _env_field(
        "Extra environment variables for the model pull step and the Ollama server, e.g. "
        "OLLAMA_FLASH_ATTENTION: '1' or HTTPS_PROXY. Variables llmstage sets are rejected."
    )
    env_from: list[EnvFromSource] = _env_from_field()
    registry: OllamaRegistrySpec | None = Field(
        default=None,
        description=(
            "Private or air-gapped model registry to pull from. Default: registry.ollama.ai (Ollama's own)."
        ),
    )
    api_key_secret_ref: APIKeySecretRef | None = Field(
        default=None,
        description=(
            "Secret key with an API key clients must send as 'Authorization: Bearer <key>' (letters, digits "
            "and ._~+/=- only), checked by the pod's gateway on every route but the probes'. Optional: "
            "with the same key as spec.vllm.apiKeySecretRef, clients send the same header in every stage."
        ),
    )


class DownloadSpec(ApiModel):
    """The model download steps of a vLLM pod: the init containers that fill the model cache before
    the server starts (download-model, download-lora, download-lora-N)."""

    memory: Quantity | None = Field(
        default=None,
        description=(
            "Memory limit of each download step, e.g. '8Gi' (the request stays 512Mi or the limit, if "
            "lower). Default: 4Gi. Hugging Face's Xet backend sizes its download buffers from it (a "
            "sixteenth, a sixty-fourth per file, at most a quarter)."
        ),
    )
    xet: bool | None = Field(
        default=None,
        description=(
            "Hugging Face's Xet transfer backend (the hf_xet package huggingface_hub uses for Xet-backed "
            "repositories). false sets HF_HUB_DISABLE_XET=1: those files come over plain HTTP, with "
            "less memory and less speed. Default: true."
        ),
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE,
        description=(
            "Image of the s3 and gcs download steps: llmstage's own image, which holds the download code "
            "(python -m llmstage.fetch). Default: the operator's image (the chart's image.repository and "
            "tag), or the install's servingDefaults.downloadImage."
        ),
    )


class VLLMSpec(ApiModel):
    """Settings used when the runtime is vLLM (production by default)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"!has(self.extraArgs) || self.extraArgs.all(a, !a.matches('{MANAGED_VLLM_FLAG_PATTERN}'))",
            message=(
                "spec.vllm.extraArgs must not repeat flags llmstage sets ("
                + ", ".join("--" + f for f in MANAGED_VLLM_FLAGS)
                + "): use spec.model, spec.servedModelName, spec.resources.gpu and the spec.vllm fields"
            ),
            check=lambda s: not any(re.match(MANAGED_VLLM_FLAG_PATTERN, a) for a in s.extra_args),
            field_path=".extraArgs",
        ),
        _managed_env_rule(
            "vllm",
            MANAGED_VLLM_ENV,
            "use spec.huggingFaceTokenSecretRef for HF_TOKEN and spec.vllm.apiKeySecretRef for VLLM_API_KEY",
        ),
    )

    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE,
        description=(
            "vLLM image. Default: a pinned release of vllm/vllm-openai on GPUs, of "
            "vllm/vllm-openai-cpu without GPUs."
        ),
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description=(
            "--gpu-memory-utilization: fraction of each GPU's memory vLLM may use, in (0, 1]. GPUs only: "
            "on CPUs the KV cache is sized from spec.resources.memory (VLLM_CPU_KVCACHE_SPACE)."
        ),
    )
    max_model_len: int | None = Field(
        default=None,
        ge=128,
        le=10_485_760,
        description="--max-model-len in tokens. Default: the model's context, at most 8192 (same as Ollama).",
    )
    max_num_seqs: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description=(
            "--max-num-seqs: sequences batched at once per replica. Default: vLLM's own, which "
            "continuous batching needs; set it only to cap the batch."
        ),
    )
    tensor_parallel_size: int | None = Field(
        default=None,
        ge=1,
        le=MAX_GPUS,
        description=(
            "--tensor-parallel-size. Default: spec.resources.gpu.count. Must not exceed it (1 without GPUs)."
        ),
    )
    dtype: VLLMDtype = Field(
        default=VLLMDtype.AUTO,
        description=(
            "--dtype of weights and activations; auto uses the model's on GPUs (float16 where the GPU has "
            "no bfloat16) and float32 on CPUs. bfloat16 is refused on a spec.resources.gpu.product below "
            "compute capability 8.0 (a T4). On CPUs, bfloat16 and float16 schedule the pods only on nodes "
            "whose CPU has them (AVX-512 BF16 or AMX; AVX-512 FP16 or AMX-FP16), by node-feature-discovery's "
            "labels."
        ),
    )
    enforce_eager: bool | None = Field(
        default=None,
        description=(
            "--enforce-eager: run the model without torch.compile (and CUDA graphs on GPUs). Starts in a "
            "fraction of the time (on CPUs about a minute instead of several) at some cost in speed. "
            "Default: vLLM's compiled mode; the startup probe allows for the compilation."
        ),
    )
    quantization: str | None = Field(
        default=None,
        max_length=32,
        pattern=QUANTIZATION,
        description=(
            "Quantization of the weights vLLM serves. Online methods quantize the Hugging Face weights at "
            "load and are passed as --quantization: fp8, bitsandbytes, rtn, experts_int8. Methods of "
            "pre-quantized checkpoints (awq, gptq, compressed-tensors, ...) need spec.model.huggingFaceId "
            "to name such a checkpoint; vLLM then reads the method from its config. Default: "
            "spec.model.quantization when it is a vLLM method. fp8 is refused on a "
            "spec.resources.gpu.product below compute capability 8.0 (a T4)."
        ),
    )
    extra_args: list[Annotated[str, Field(max_length=256, pattern=PRINTABLE)]] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Additional vLLM arguments, e.g. ['--enable-prefix-caching']. Flags llmstage sets are rejected."
        ),
    )
    api_key_secret_ref: APIKeySecretRef | None = Field(
        default=None,
        description="Secret key with the API key clients must send. Required in production.",
    )
    download: DownloadSpec | None = Field(
        default=None,
        description=(
            "The model download steps (init containers): memory, the Hub's Xet backend, the bucket "
            "step's image."
        ),
    )
    env: dict[str, EnvValue] = _env_field(
        "Extra environment variables for the model download step and the vLLM server, e.g. "
        "HF_ENDPOINT for a Hugging Face mirror, HTTPS_PROXY or VLLM_LOGGING_LEVEL. Variables llmstage "
        "sets are rejected."
    )
    env_from: list[EnvFromSource] = _env_from_field()


# -------------------- spec.pod: the serving pods' identity, pull secrets, metadata and volumes


class VolumeMount(ApiModel):
    """Where one of spec.pod.volumes appears in the server and the model download step."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="A volume of spec.pod.volumes."
    )
    mount_path: str = Field(
        min_length=2,
        max_length=1024,
        pattern=r"^(/[^/:]+)+$",
        description="Absolute path in the containers, e.g. /etc/ssl/mirror (no trailing '/', no ':').",
    )
    read_only: bool | None = Field(default=None, description="Mount read-only.")
    sub_path: str | None = Field(
        default=None, max_length=1024, pattern=r"^[^/].*$", description="A path inside the volume (relative)."
    )


EMPTY_DIR_SIZE_MESSAGE = (
    "spec.pod.volumes[].emptyDir needs a sizeLimit (e.g. 1Gi): without one the pod may fill the node's "
    "disk (or, with medium Memory, its memory)"
)


def _check_volume(volume: dict[str, Any]) -> dict[str, Any]:
    name = volume.get("name")
    if not isinstance(name, str) or not re.match(DNS_LABEL, name) or len(name) > 63:
        raise ValueError("a volume needs a name: a DNS label of at most 63 characters (e.g. 'ca-bundle')")
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("sizeLimit") is None:
        raise ValueError(EMPTY_DIR_SIZE_MESSAGE)
    return volume


Volume = Annotated[dict[str, Any], AfterValidator(_check_volume)]


def _mount_path_taken(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in MANAGED_MOUNT_PATHS)


class PodSettings(ApiModel):
    """Pod-level settings of the serving pods (both runtimes): identity, pull secrets, metadata, volumes."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.labels) || !self.labels.exists(k, "
                + " || ".join(f"k.startsWith('{p}')" for p in MANAGED_LABEL_PREFIXES)
                + ")"
            ),
            message=(
                "spec.pod.labels must not use the prefixes "
                + ", ".join(MANAGED_LABEL_PREFIXES)
                + ": llmstage's selectors use them; choose another key"
            ),
            check=lambda s: not any(k.startswith(MANAGED_LABEL_PREFIXES) for k in s.labels),
            field_path=".labels",
        ),
        CelRule(
            rule=(
                f"!has(self.annotations) || !self.annotations.exists(k, k in {cel_list(MANAGED_ANNOTATIONS)}"
                " || k.startsWith('llmstage.io/'))"
            ),
            message=(
                "spec.pod.annotations must not set "
                + ", ".join(MANAGED_ANNOTATIONS)
                + " or llmstage.io/* annotations: llmstage sets them"
            ),
            check=lambda s: (
                not any(k in MANAGED_ANNOTATIONS or k.startswith("llmstage.io/") for k in s.annotations)
            ),
            field_path=".annotations",
        ),
        CelRule(
            rule=(
                f"!has(self.volumes) || self.volumes.all(v, !(v.name in {cel_list(MANAGED_VOLUMES)}) && "
                f"!v.name.startsWith('{MANAGED_VOLUME_PREFIX}'))"
            ),
            message=(
                "spec.pod.volumes[].name must not be "
                + ", ".join(MANAGED_VOLUMES)
                + f" or start with {MANAGED_VOLUME_PREFIX}: llmstage's own volumes have these names; "
                "rename the volume"
            ),
            check=lambda s: (
                not any(
                    v.get("name") in MANAGED_VOLUMES or str(v.get("name")).startswith(MANAGED_VOLUME_PREFIX)
                    for v in s.volumes
                )
            ),
            field_path=".volumes",
        ),
        CelRule(
            rule="!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
            message="spec.pod.volumes[].name must be unique: rename or remove the duplicate",
            check=lambda s: len({v.get("name") for v in s.volumes}) == len(s.volumes),
            field_path=".volumes",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || self.volumeMounts.all(m, "
                "has(self.volumes) && self.volumes.exists(v, v.name == m.name))"
            ),
            message="spec.pod.volumeMounts[].name must name a volume of spec.pod.volumes: add the volume",
            check=lambda s: all(any(v.get("name") == m.name for v in s.volumes) for m in s.volume_mounts),
            field_path=".volumeMounts",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || self.volumeMounts.all(m, "
                "!"
                + cel_list(MANAGED_MOUNT_PATHS)
                + ".exists(p, m.mountPath == p || m.mountPath.startsWith(p + '/')))"
            ),
            message=(
                "spec.pod.volumeMounts[].mountPath must not be at or under "
                + ", ".join(MANAGED_MOUNT_PATHS)
                + ": llmstage mounts the model cache, HOME, /tmp and shared memory there; choose another path"
            ),
            check=lambda s: not any(_mount_path_taken(m.mount_path) for m in s.volume_mounts),
            field_path=".volumeMounts",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || "
                "self.volumeMounts.all(m, self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))"
            ),
            message="spec.pod.volumeMounts[].mountPath must be unique: remove the duplicate",
            check=lambda s: len({m.mount_path for m in s.volume_mounts}) == len(s.volume_mounts),
            field_path=".volumeMounts",
        ),
    )

    service_account_name: ObjectName | None = Field(
        default=None,
        description=(
            "ServiceAccount of the serving pods, e.g. one annotated for IRSA (EKS) or Workload Identity "
            "(GKE, AKS) to read models from a bucket. Default: the namespace's default ServiceAccount."
        ),
    )
    automount_service_account_token: bool = Field(
        default=False,
        description=(
            "Mount the ServiceAccount's API token. The servers never call the Kubernetes API, so the "
            "default is false; IRSA and Azure Workload Identity inject their own projected token."
        ),
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Secrets (type kubernetes.io/dockerconfigjson) for pulling the runtime image from a private "
            "registry."
        ),
    )
    labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description=(
            "Extra labels of the serving pods, e.g. sidecar.istio.io/inject: 'false'. The app.kubernetes.io/ "
            "and llmstage.io/ prefixes are llmstage's."
        ),
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra annotations of the serving pods, e.g. for a service mesh or a log shipper.",
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    volumes: list[Volume] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Extra core/v1 Volumes of the serving pods (e.g. a ConfigMap with a CA bundle, a CSI secret "
            "store). Checked by the API server when llmstage applies the Deployment: a wrong one shows as "
            "Stalled with reason ApplyRejected and the API server's message."
        ),
        json_schema_extra={
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "description": "Name of the volume, for spec.pod.volumeMounts[].name.",
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 63,
                        "pattern": DNS_LABEL,
                    },
                    # Declared so that the rule below can see sizeLimit (CEL reads declared fields only).
                    "emptyDir": {
                        "description": "A core/v1 EmptyDirVolumeSource; needs a sizeLimit.",
                        "type": "object",
                        "properties": {
                            "medium": {
                                "description": "'' (the node's disk) or Memory.",
                                "type": "string",
                                "maxLength": 64,
                            },
                            "sizeLimit": {
                                "description": "Most the volume may hold, e.g. 1Gi.",
                                "x-kubernetes-int-or-string": True,
                                "anyOf": [{"type": "integer"}, {"type": "string"}],
                                "pattern": QUANTITY_PATTERN,
                            },
                        },
                        "x-kubernetes-validations": [
                            {"rule": "has(self.sizeLimit)", "message": EMPTY_DIR_SIZE_MESSAGE}
                        ],
                    },
                },
                "x-kubernetes-preserve-unknown-fields": True,
            }
        },
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list,
        max_length=16,
        description="Where spec.pod.volumes appear in the server container and the model download step.",
    )


# -------------------- spec.networkPolicy, spec.routing: who may call the model, routing through a Gateway


class LabelSelectorRequirement(ApiModel):
    """A metav1.LabelSelectorRequirement: key, operator and values."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
            message=(
                "spec.networkPolicy.allowedClients[].*Selector.matchExpressions[].values must fit the "
                "operator: list values with In or NotIn, none with Exists or DoesNotExist"
            ),
            check=lambda s: (s.operator in ("In", "NotIn")) == bool(s.values),
        ),
    )

    key: str = Field(min_length=1, max_length=316, pattern=QUALIFIED_NAME, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How key and values relate."
    )
    values: list[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=list, max_length=32, description="Label values (In, NotIn)."
    )


class LabelSelector(ApiModel):
    """A metav1.LabelSelector. Empty selects everything."""

    match_labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Labels that must all match.",
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Requirements that must all hold."
    )


class NetworkClient(ApiModel):
    """Pods allowed to call the service: a NetworkPolicyPeer without ipBlock."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.namespaceSelector) || has(self.podSelector)",
            message=(
                "spec.networkPolicy.allowedClients[] needs namespaceSelector, podSelector or both: "
                "podSelector alone selects pods of the LLMService's namespace, {} in namespaceSelector "
                "every namespace"
            ),
            check=lambda s: s.namespace_selector is not None or s.pod_selector is not None,
        ),
    )

    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Namespaces whose pods may call (by namespace labels, e.g. kubernetes.io/metadata.name: "
            "team-a); {} is every namespace. With podSelector: only those pods of those namespaces."
        ),
    )
    pod_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Pods that may call, by their labels; without namespaceSelector, pods of the LLMService's "
            "own namespace."
        ),
    )


class NetworkPolicySpec(ApiModel):
    """Who may reach the model: a NetworkPolicy selecting the serving pods (docs/security.md)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.enabled || !has(self.allowedClients) || size(self.allowedClients) == 0",
            message=(
                "spec.networkPolicy.allowedClients has no effect with enabled false: remove it, or "
                "remove enabled to restrict the clients"
            ),
            check=lambda s: s.enabled or not s.allowed_clients,
            field_path=".allowedClients",
        ),
    )

    enabled: bool = Field(
        default=True,
        description=(
            "Render a NetworkPolicy that admits the serving port from allowedClients only (and vLLM's "
            "/metrics from the monitoring namespace the operator is configured with). false: every pod "
            "that can reach the pods may call the model."
        ),
    )
    allowed_clients: list[NetworkClient] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Who may call the model on port 8000. Default: every pod of the LLMService's namespace. "
            "A list replaces that default: add {podSelector: {}} to keep the namespace."
        ),
    )


class GatewayRef(ApiModel):
    """The Gateway (Gateway API) whose listener routes to the InferencePool: one the platform runs."""

    name: ObjectName = Field(description="The Gateway's name.")
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description=(
            "The Gateway's namespace. Default: the LLMService's. A Gateway in another namespace must allow "
            "routes from this one (its listener's allowedRoutes)."
        ),
    )
    section_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="The Gateway listener to attach to. Default: every listener that allows the route.",
    )


class EndpointPickerRef(ApiModel):
    """An endpoint picker (EPP) Service the platform installed, e.g. llm-d's inference scheduler."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description="The endpoint picker's Service, in the LLMService's namespace.",
    )
    port: int = Field(default=9002, ge=1, le=65535, description="Its ext-proc gRPC port (Service port).")
    failure_mode: FailureMode = Field(
        default=FailureMode.FAIL_CLOSE,
        description=(
            "What the Gateway does when the endpoint picker does not answer: FailClose (reject the request, "
            "the extension's default) or FailOpen (pick an endpoint itself)."
        ),
    )


class RoutingSpec(ApiModel):
    """Inference-aware routing through the Gateway API Inference Extension, beside the Service."""

    gateway_ref: GatewayRef = Field(
        description=(
            "The Gateway an HTTPRoute attaches the InferencePool to. Clients of the Gateway get the "
            "extension's routing; the Service keeps serving clients that call it directly."
        )
    )
    endpoint_picker_ref: EndpointPickerRef | None = Field(
        default=None,
        description=(
            "The endpoint picker that chooses a pod per request (prefix cache, queue, LoRA aware). Default: "
            "none, and the Gateway implementation picks endpoints itself where it can (InferencePool's "
            "endpointPickerRef is optional since the extension's v1.5.0)."
        ),
    )
    hostnames: list[Annotated[str, Field(max_length=253, pattern=HOSTNAME)]] = Field(
        default_factory=list,
        max_length=16,
        description="Host names the HTTPRoute matches. Default: every host name of the Gateway listener.",
    )


class LatencyTarget(ApiModel):
    """Latency this stage must meet at its expected users, as `llmstage benchmark` measures it."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.timeToFirstTokenP99Ms) || has(self.interTokenLatencyP99Ms)",
            message=(
                "spec.latencyTarget needs timeToFirstTokenP99Ms, interTokenLatencyP99Ms or both: an empty "
                "target checks nothing"
            ),
            check=lambda t: (
                t.time_to_first_token_p99_ms is not None or t.inter_token_latency_p99_ms is not None
            ),
        ),
    )

    time_to_first_token_p99_ms: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LATENCY_MS,
        description="Highest acceptable p99 time to first token, in milliseconds.",
    )
    inter_token_latency_p99_ms: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LATENCY_MS,
        description=(
            "Highest acceptable p99 inter-token latency (time between streamed tokens), in milliseconds."
        ),
    )
