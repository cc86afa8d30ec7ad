"""spec.resources, spec.cache and spec.scheduling: what each replica gets (CPU, memory, GPUs, the
model cache) and where it runs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from llmstage.api.base import DNS_SUBDOMAIN, LABEL_VALUE, QUALIFIED_NAME, ApiModel, CelRule, Quantity
from llmstage.api.constants import MAX_GPUS, MAX_NODES, AccessMode, CacheMode
from pydantic import Field


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
    claim_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
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
    storage_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
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
    runtime_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="RuntimeClass for the pods, e.g. 'nvidia' where the GPU runtime is not the default.",
    )
    priority_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="PriorityClass for the pods.",
    )
