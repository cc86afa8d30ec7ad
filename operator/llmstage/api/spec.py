"""LLMServiceSpec: the desired state, its parts, and the rules that span several of them."""

from __future__ import annotations

import re
from typing import ClassVar

from llmstage import ollama_name
from llmstage.api.base import SERVED_MODEL_NAME, ApiModel, CelRule
from llmstage.api.constants import (
    CONCURRENCY_LIMIT,
    MAX_REPLICAS,
    MULTI_NODE_VLLM_FLAG_PATTERN,
    MULTI_NODE_VLLM_FLAGS,
    VLLM_ONLY_SOURCE_KINDS,
    AutoscalerChoice,
    OptimizeFor,
    RuntimeChoice,
    ScaleMetricChoice,
    Stage,
)
from llmstage.api.spec_parts import (
    AutoscalingSpec,
    CacheSpec,
    HuggingFaceTokenSecretRef,
    LoRASpec,
    ModelSpec,
    NetworkPolicySpec,
    OllamaSpec,
    PodSettings,
    ResourcesSpec,
    RoutingSpec,
    SchedulingSpec,
    VLLMSpec,
)
from pydantic import Field


def _gpu_count(spec: LLMServiceSpec) -> int | None:
    """GPUs the user asked for explicitly, None when spec.resources.gpu is absent."""
    return spec.resources.gpu.count if spec.resources and spec.resources.gpu else None


def _gpu_nodes(spec: LLMServiceSpec) -> int:
    """Nodes per replica the user asked for explicitly (1 when unset)."""
    gpu = spec.resources.gpu if spec.resources else None
    return gpu.nodes if gpu and gpu.nodes else 1


def _keda_has_server(s: LLMServiceSpec) -> bool:
    """The Python twin of the serverAddress rule: needed when KEDA will read vLLM's queue."""
    a = s.autoscaling
    if a is None or a.autoscaler != AutoscalerChoice.KEDA or a.metric == ScaleMetricChoice.CPU:
        return True
    if s.runtime == RuntimeChoice.OLLAMA:
        return True
    if (
        a.metric == ScaleMetricChoice.AUTO
        and s.runtime == RuntimeChoice.AUTO
        and (s.stage != Stage.PRODUCTION or _gpu_count(s) == 0)
    ):
        return True  # the runtime decision is left to resolve(), which checks it again
    return a.keda is not None and a.keda.server_address is not None


_MULTI_NODE = (
    "has(self.resources) && has(self.resources.gpu) && has(self.resources.gpu.nodes) && "
    "self.resources.gpu.nodes > 1"
)


class LLMServiceSpec(ApiModel):
    """Desired state of an LLMService: one model behind one OpenAI-compatible endpoint."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!(has(self.replicas) && has(self.autoscaling))",
            message=(
                "spec.replicas and spec.autoscaling are mutually exclusive: keep spec.replicas for a fixed "
                "count or spec.autoscaling to let the autoscaler own it, and remove the other"
            ),
            check=lambda s: s.replicas is None or s.autoscaling is None,
            field_path=".replicas",
        ),
        CelRule(
            rule=(
                "!has(self.vllm) || !has(self.vllm.tensorParallelSize) || "
                "self.vllm.tensorParallelSize == 1 || "
                "(has(self.resources) && has(self.resources.gpu) && "
                "self.vllm.tensorParallelSize <= self.resources.gpu.count)"
            ),
            message=(
                "spec.vllm.tensorParallelSize must not exceed spec.resources.gpu.count: every "
                "tensor-parallel rank needs its own GPU; lower tensorParallelSize or raise "
                "spec.resources.gpu.count"
            ),
            check=lambda s: (
                s.vllm is None
                or s.vllm.tensor_parallel_size is None
                or s.vllm.tensor_parallel_size == 1
                or s.vllm.tensor_parallel_size <= (_gpu_count(s) or 0)
            ),
            field_path=".vllm.tensorParallelSize",
        ),
        CelRule(
            rule=(
                "self.stage != 'production' || self.runtime == 'ollama' || "
                "(self.runtime == 'auto' && "
                "has(self.resources) && has(self.resources.gpu) && self.resources.gpu.count == 0) || "
                "(has(self.vllm) && has(self.vllm.apiKeySecretRef))"
            ),
            message=(
                "spec.vllm.apiKeySecretRef is required in stage production (vLLM would serve an open "
                "endpoint): create a Secret with the key and set spec.vllm.apiKeySecretRef.name "
                "(and .key, default 'api-key')"
            ),
            check=lambda s: (
                s.stage != Stage.PRODUCTION
                or s.runtime == RuntimeChoice.OLLAMA
                or (s.runtime == RuntimeChoice.AUTO and _gpu_count(s) == 0)
                or (s.vllm is not None and s.vllm.api_key_secret_ref is not None)
            ),
            field_path=".vllm",
        ),
        CelRule(
            rule=(
                "self.runtime != 'ollama' || !has(self.servedModelName) || "
                f"self.servedModelName.matches('{ollama_name.NAME_PATTERN}')"
            ),
            message=(
                "spec.servedModelName must be a valid Ollama model name with runtime ollama, "
                "[host/][namespace/]model[:tag] (letters, digits, '_', '-', '.'; no '@', at most one '/' "
                "before the model), because Ollama serves it under that name: e.g. 'chat' or "
                "'meta-llama/Llama-3.1-8B-Instruct'"
            ),
            check=lambda s: (
                s.runtime != RuntimeChoice.OLLAMA
                or s.served_model_name is None
                or ollama_name.is_valid(s.served_model_name)
            ),
            field_path=".servedModelName",
        ),
        CelRule(
            rule="!has(self.autoscaling) || self.autoscaling.metric != 'queue' || self.runtime != 'ollama'",
            message=(
                "spec.autoscaling.metric queue reads vLLM's queue depth, which Ollama does not expose: "
                "use metric cpu (or auto) with runtime ollama"
            ),
            check=lambda s: (
                s.autoscaling is None
                or s.autoscaling.metric != ScaleMetricChoice.QUEUE
                or s.runtime != RuntimeChoice.OLLAMA
            ),
            field_path=".autoscaling.metric",
        ),
        CelRule(
            rule=(
                "self.stage != 'production' || !has(self.autoscaling) || "
                "!has(self.autoscaling.minReplicas) || self.autoscaling.minReplicas >= 1"
            ),
            message=(
                "spec.autoscaling.minReplicas 0 (scale to zero) is for stages dev and staging: in "
                "production the first request after a quiet period would wait minutes for the model to "
                "load; set minReplicas >= 1"
            ),
            check=lambda s: (
                s.stage != Stage.PRODUCTION
                or s.autoscaling is None
                or s.autoscaling.min_replicas is None
                or s.autoscaling.min_replicas >= 1
            ),
            field_path=".autoscaling.minReplicas",
        ),
        CelRule(
            rule=(
                "!has(self.autoscaling) || self.autoscaling.autoscaler != 'keda' || "
                "self.autoscaling.metric == 'cpu' || self.runtime == 'ollama' || "
                "(self.autoscaling.metric == 'auto' && self.runtime == 'auto' && "
                "(self.stage != 'production' || "
                "(has(self.resources) && has(self.resources.gpu) && self.resources.gpu.count == 0))) || "
                "(has(self.autoscaling.keda) && has(self.autoscaling.keda.serverAddress))"
            ),
            message=(
                "spec.autoscaling.keda.serverAddress is required with autoscaler keda on vLLM: KEDA reads "
                "the queue (vllm:num_requests_waiting) from Prometheus; set it to the Prometheus URL, "
                "e.g. http://prometheus-operated.monitoring.svc:9090, or use metric cpu"
            ),
            check=lambda s: _keda_has_server(s),
            field_path=".autoscaling.keda",
        ),
        CelRule(
            rule="self.runtime != 'ollama' || !has(self.lora)",
            message=(
                "spec.lora needs vLLM: Ollama applies a LoRA adapter only by building a new model from a "
                "Modelfile ADAPTER line, one adapter per model, which llmstage does not do; remove spec.lora "
                "or set runtime vllm (or auto) with spec.resources.gpu"
            ),
            check=lambda s: s.runtime != RuntimeChoice.OLLAMA or s.lora is None,
            field_path=".lora",
        ),
        CelRule(
            rule=(
                "!has(self.lora) || self.lora.adapters.all(a, a.name != "
                "(has(self.servedModelName) ? self.servedModelName : self.model.name))"
            ),
            message=(
                "spec.lora.adapters[].name must differ from the served model name (spec.servedModelName, "
                "default spec.model.name): clients pick the base model or an adapter by this name"
            ),
            check=lambda s: (
                s.lora is None
                or all(a.name != (s.served_model_name or s.model.name) for a in s.lora.adapters)
            ),
            field_path=".lora.adapters",
        ),
        CelRule(
            rule=(
                "self.runtime != 'ollama' || !has(self.model.source) || "
                "(" + " && ".join(f"!has(self.model.source.{k})" for k in VLLM_ONLY_SOURCE_KINDS) + ")"
            ),
            message=(
                "spec.model.source pvc, s3, gcs and oci hold Hugging Face-format weights for vLLM, and "
                "Ollama pulls spec.model.name from a registry instead: with runtime ollama remove the "
                "source (use spec.ollama.registry for a private or air-gapped registry), or set runtime "
                "vllm (or auto)"
            ),
            check=lambda s: (
                s.runtime != RuntimeChoice.OLLAMA
                or s.model.source is None
                or not any(k in VLLM_ONLY_SOURCE_KINDS for k in s.model.source.kinds())
            ),
            field_path=".model.source",
        ),
        CelRule(
            rule=(
                "!has(self.model.source) || !has(self.model.source.huggingFace) || "
                "!has(self.model.source.huggingFace.endpoint) || !has(self.vllm) || !has(self.vllm.env) || "
                "!('HF_ENDPOINT' in self.vllm.env)"
            ),
            message=(
                "spec.vllm.env.HF_ENDPOINT and spec.model.source.huggingFace.endpoint both set the Hugging "
                "Face mirror: keep spec.model.source.huggingFace.endpoint and remove HF_ENDPOINT from "
                "spec.vllm.env"
            ),
            check=lambda s: (
                not (
                    s.model.source is not None
                    and s.model.source.hugging_face is not None
                    and s.model.source.hugging_face.endpoint is not None
                    and s.vllm is not None
                    and "HF_ENDPOINT" in s.vllm.env
                )
            ),
            field_path=".vllm.env",
        ),
        CelRule(
            rule=f"self.runtime != 'ollama' || !({_MULTI_NODE})",
            message=(
                "spec.resources.gpu.nodes above 1 needs vLLM, which runs one model over several nodes; "
                "Ollama serves a model from one pod: remove nodes (or set it to 1), or set runtime vllm"
            ),
            check=lambda s: s.runtime != RuntimeChoice.OLLAMA or _gpu_nodes(s) == 1,
            field_path=".resources.gpu.nodes",
        ),
        CelRule(
            rule=(
                f"!({_MULTI_NODE}) || !has(self.vllm) || !has(self.vllm.tensorParallelSize) || "
                "self.vllm.tensorParallelSize == self.resources.gpu.count"
            ),
            message=(
                "spec.vllm.tensorParallelSize must equal spec.resources.gpu.count when spec.resources.gpu."
                "nodes is above 1: tensor parallelism stays within a node (its fast GPU links) and the "
                "nodes are pipeline stages; remove tensorParallelSize or set it to count"
            ),
            check=lambda s: (
                _gpu_nodes(s) == 1
                or s.vllm is None
                or s.vllm.tensor_parallel_size is None
                or s.vllm.tensor_parallel_size == _gpu_count(s)
            ),
            field_path=".vllm.tensorParallelSize",
        ),
        CelRule(
            rule=(
                f"!({_MULTI_NODE}) || !has(self.vllm) || !has(self.vllm.extraArgs) || "
                f"self.vllm.extraArgs.all(a, !a.matches('{MULTI_NODE_VLLM_FLAG_PATTERN}'))"
            ),
            message=(
                "spec.vllm.extraArgs must not set "
                + ", ".join("--" + f for f in MULTI_NODE_VLLM_FLAGS)
                + " when spec.resources.gpu.nodes is above 1: llmstage lays the group out itself (tensor "
                "parallel within a node, pipeline parallel across nodes, vLLM's multiprocessing executor)"
            ),
            check=lambda s: (
                _gpu_nodes(s) == 1
                or s.vllm is None
                or not any(re.match(MULTI_NODE_VLLM_FLAG_PATTERN, a) for a in s.vllm.extra_args)
            ),
            field_path=".vllm.extraArgs",
        ),
    )

    model: ModelSpec = Field(description="The model to serve.")
    served_model_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=SERVED_MODEL_NAME,
        description=(
            "The `model` string clients send. Default: spec.model.name. Identical in every stage and "
            "runtime, so clients never change code between dev, staging and production."
        ),
    )
    stage: Stage = Field(
        default=Stage.DEV,
        description="Lifecycle stage; picks the defaults: dev (Ollama, 1 replica), staging (Ollama, "
        "autoscaled 1-2 on CPU), production (vLLM on GPU, autoscaled 2-8 on queue depth, PDB, API key).",
    )
    runtime: RuntimeChoice = Field(
        default=RuntimeChoice.AUTO,
        description=(
            "Serving runtime: auto applies the decision framework (production or more than 4 expected users "
            "-> vLLM; no GPU, dev or fast setup -> Ollama); ollama or vllm force one. "
            "The choice and its reason appear in the RuntimeSelected condition."
        ),
    )
    optimize_for: OptimizeFor | None = Field(
        default=None,
        description=(
            "Tie-breaker for runtime auto when stage and users leave the choice open: setupTime (Ollama, "
            "running in minutes) or gpuCost (vLLM, throughput per GPU hour)."
        ),
    )
    expected_concurrency: int = Field(
        default=1,
        ge=1,
        le=CONCURRENCY_LIMIT,
        description=(
            "Expected concurrent users (requests in flight) across all replicas. Drives the runtime decision "
            "(more than 4 -> vLLM) and the sizing (OLLAMA_NUM_PARALLEL; on vLLM, the sequences the KV cache "
            "must hold)."
        ),
    )
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description=(
            "Fixed replica count (the scale subresource writes it). Mutually exclusive with autoscaling. "
            "Default: 1 in dev; staging and production autoscale unless this is set."
        ),
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Autoscaling bounds and metric. Mutually exclusive with replicas."
    )
    resources: ResourcesSpec | None = Field(default=None, description="CPU, memory and GPUs per replica.")
    ollama: OllamaSpec | None = Field(
        default=None, description="Ollama settings (used when the runtime is Ollama)."
    )
    vllm: VLLMSpec | None = Field(default=None, description="vLLM settings (used when the runtime is vLLM).")
    cache: CacheSpec | None = Field(
        default=None,
        description="Where downloaded weights are kept: a claim per pod or one shared (docs/storage.md).",
    )
    hugging_face_token_secret_ref: HuggingFaceTokenSecretRef | None = Field(
        default=None,
        description="Secret key with a Hugging Face token, for gated models such as Llama and Gemma.",
    )
    scheduling: SchedulingSpec | None = Field(
        default=None, description="Node selection, tolerations, affinity and classes for the pods."
    )
    pod: PodSettings | None = Field(
        default=None,
        description="Pod-level settings: ServiceAccount, image pull secrets, labels, annotations, volumes.",
    )
    lora: LoRASpec | None = Field(
        default=None,
        description=(
            "LoRA adapters vLLM serves on the same URL, each under its own model name (listed in "
            "status.loraAdapters). vLLM only: rejected with runtime ollama."
        ),
    )
    routing: RoutingSpec | None = Field(
        default=None,
        description=(
            "Inference-aware routing through the Gateway API Inference Extension: an InferencePool of the "
            "serving pods and an HTTPRoute from spec.routing.gatewayRef to it, beside the Service "
            "(docs/routing.md). Needs the extension's CRDs and a Gateway implementation that supports it."
        ),
    )
    network_policy: NetworkPolicySpec | None = Field(
        default=None,
        description=(
            "Who may call the model. Default: a NetworkPolicy admitting pods of the same namespace only "
            "(and Prometheus from the monitoring namespace to vLLM's /metrics)."
        ),
    )
