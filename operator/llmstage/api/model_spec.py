"""spec.model and spec.lora: the model served, its shape, where its weights come from, and the
LoRA adapters served beside it."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from llmstage.api.base import (
    DNS_SUBDOMAIN,
    HUGGING_FACE_ID,
    IMAGE,
    MODEL_NAME,
    QUANTIZATION,
    SERVED_MODEL_NAME,
    ApiModel,
    CelRule,
)
from llmstage.api.constants import MAX_LORA_ADAPTERS, SOURCE_KINDS, ModelFormat
from pydantic import Field


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

    claim_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
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

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")


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
