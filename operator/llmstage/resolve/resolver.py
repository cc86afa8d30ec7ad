"""LLMService -> Resolved: stage defaults, the runtime decision, the catalog, sizing and the checks.

    resolve(service, catalog) -> Resolved      pure; raises SpecError

An explicit user value always wins over a stage default. Stage defaults:

| stage      | runtime (auto) | replicas                | GPUs | extras                                    |
|------------|----------------|-------------------------|------|-------------------------------------------|
| dev        | Ollama         | 1, no autoscaler        | 0    | small CPU/memory                          |
| staging    | Ollama         | autoscaled 1-2 on CPU   | 0    |                                           |
| production | vLLM (on GPU)  | autoscaled 2-8 on queue | 1    | PDB, topology spread, API key from Secret |

vLLM without a GPU (spec.resources.gpu.count 0, or no GPU in dev and staging with runtime vllm)
runs vLLM's CPU image: float32 unless the spec asks for bf16/fp16 (then only on nodes whose CPU
has it), its KV cache sized by the memory fit (VLLM_CPU_KVCACHE_SPACE), OpenMP threads from the
CPU request.

Sizing follows spec.expectedConcurrency: per replica it is expectedConcurrency / baseline replicas
(replicas, or autoscaling.minReplicas), which becomes OLLAMA_NUM_PARALLEL on Ollama and, on vLLM,
the sequences the KV cache must hold at full context (vLLM keeps its own batch size, continuous
batching, unless spec.vllm.maxNumSeqs caps it).
Context defaults to the model's, capped at 8192 tokens, identically for both runtimes so a prompt
that works in dev works in production.

Problems are reported in one of two ways, on purpose:

- `SpecError(field, message)` when the spec cannot be turned into a working workload (the operator
  sets Stalled=True and renders nothing): a model unknown to the catalog without
  spec.model.huggingFaceId or spec.model.source on vLLM; vLLM in production without
  spec.vllm.apiKeySecretRef (the CRD rejects this too; kept for specs that never went through
  the API server); autoscaling on queue depth with Ollama; a tensor-parallel size that does
  not divide the attention heads, the key/value heads or the intermediate size; maxModelLen
  above the model's context; a vLLM quantization the served weights cannot have (a method vLLM
  0.12.0 lacks, or a method of pre-quantized checkpoints on the catalog's unquantized
  repository); bfloat16 or fp8 (weights, KV cache) on a GPU product whose compute capability
  cannot run them (resolve/gpu_capability.py); on Ollama, a model or served name that cannot be
  an Ollama name, or
  spec.ollama.registry next to a model name with a host.
  These make vLLM, Ollama or the autoscaler fail, so rendering them would only move the error
  somewhere harder to find.
- `Finding`s in `Resolved.warnings` (the article's common mistakes) and `Resolved.memory_fit` for
  everything that still runs, just badly: Ollama in production or above 4 users, GGUF on vLLM,
  full-precision weights on Ollama, vLLM for single-user work, an unknown GPU product (the fit
  is then unknown, fits=None, not an error: new products and MIG slices appear all the time),
  spec.vllm.extraArgs or spec.ollama.env names the pinned release does not know (a custom image
  may know them), a spec.model.source (vLLM's) in a stage where Ollama runs (it pulls the tag).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from llmstage import upstream
from llmstage.api.constants import (
    DEFAULT_QUEUE_METRIC,
    AccessMode,
    AutoscalerChoice,
    CacheMode,
    ModelFormat,
    Runtime,
    ScaleMetricChoice,
    Stage,
)
from llmstage.api.defaults import ServingDefaults
from llmstage.api.models import LLMService
from llmstage.api.quantity import gib, parse_quantity
from llmstage.api.spec import LLMServiceSpec
from llmstage.api.spec_parts import AutoscalingSpec, CacheSpec, KedaSpec, LabelSelector
from llmstage.resolve import fit, platform
from llmstage.resolve.catalog import Catalog, CatalogEntry, builtin_catalog, parse_ollama_tag
from llmstage.resolve.decision import DecisionInput, choose_runtime
from llmstage.resolve.errors import SpecError as SpecError  # re-exported: resolve()'s error
from llmstage.resolve.gateway import DEFAULT_GATEWAY_IMAGE
from llmstage.resolve.gpu_capability import unsupported_precision
from llmstage.resolve.hardening import hardening_findings
from llmstage.resolve.mistakes import common_mistakes
from llmstage.resolve.multinode import asked_nodes, check_layout, fewest_nodes, may_choose_nodes
from llmstage.resolve.ollama import DEFAULT_OLLAMA_IMAGE, ollama_settings
from llmstage.resolve.resolved import (
    GPU,
    Autoscaler,
    Autoscaling,
    Finding,
    KedaSettings,
    MemoryFit,
    ModelCache,
    ModelInfo,
    NetworkAccess,
    OllamaSettings,
    Resolved,
    Resources,
    ScaleMetric,
    SecretKeyRef,
    VLLMOnCPU,
    VLLMSettings,
)
from llmstage.resolve.routing import routing_settings
from llmstage.resolve.source import Weights, source_findings, weights
from llmstage.resolve.vllm import (
    CPU_DTYPE_FEATURES,
    DEFAULT_VLLM_CPU_IMAGE,
    DEFAULT_VLLM_IMAGE,
    TensorSplit,
    vllm_settings,
    weight_quantization,
)

# Pinned, so a rollout never changes the server version behind the user's back.
DEFAULT_CONTEXT_CAP = 8192  # same on both runtimes; vLLM's own default (the full 128k) rarely fits
QUEUE_TARGET = 3  # waiting requests per pod before the autoscaler adds one
CPU_TARGET = 70  # percent of the CPU request
CACHE_FALLBACK_GIB = {Runtime.OLLAMA: 20, Runtime.VLLM: 50}  # when the model's size is unknown
# The ephemeral-storage request when spec.resources.ephemeralStorage is unset: the node's disk the
# HOME and /tmp emptyDirs (render/pod.py SCRATCH_SIZE_LIMIT), logs and the container's writable
# layer use, so the scheduler counts it and a full disk evicts pods that exceed their request first.
DEFAULT_EPHEMERAL_STORAGE = {Runtime.OLLAMA: "2Gi", Runtime.VLLM: "10Gi"}


@dataclass(frozen=True)
class StageDefaults:
    replicas: int  # used when neither replicas nor autoscaling is set and `autoscale` is None
    autoscale: tuple[int, int] | None  # (min, max) of the default autoscaler
    gpus: int
    ollama_cpu: str
    ollama_min_memory_gib: int
    pod_disruption_budget: bool
    topology_spread: bool


STAGE_DEFAULTS: dict[Stage, StageDefaults] = {
    Stage.DEV: StageDefaults(1, None, 0, "2", 4, False, False),
    Stage.STAGING: StageDefaults(1, (1, 2), 0, "4", 8, False, False),
    Stage.PRODUCTION: StageDefaults(2, (2, 8), 1, "4", 8, True, True),
}
# Bounds used when a user turns autoscaling on in a stage whose default is a fixed count.
FALLBACK_AUTOSCALE = (1, 2)


# The quantity grammar admits "1E400": no memory, GPU or disk is larger than this (1 EiB).
MAX_SIZE_BYTES = 2**60


def _check_sizes(spec: LLMServiceSpec) -> None:
    """Sizes no machine has: the quantity grammar admits 1E400, which would overflow the memory fit."""
    resources, cache = spec.resources, spec.cache
    sizes = {
        "spec.resources.memory": resources.memory if resources else None,
        "spec.resources.ephemeralStorage": resources.ephemeral_storage if resources else None,
        "spec.resources.gpu.memory": resources.gpu.memory if resources and resources.gpu else None,
        "spec.cache.size": cache.size if cache else None,
    }
    for field, value in sizes.items():
        if value is not None and not parse_quantity(value) <= MAX_SIZE_BYTES:
            raise SpecError(
                field, f"{value} is more than 1 EiB, larger than any machine: give it in Gi, e.g. 80Gi"
            )


def resolve(  # noqa: PLR0915 - the resolve step in order, each part a function of its own
    service: LLMService, catalog: Catalog | None = None, *, serving_defaults: ServingDefaults | None = None
) -> Resolved:
    """Apply stage defaults, the runtime decision, the catalog and the checks. Pure; raises SpecError.

    `serving_defaults`: the installation's defaults of the serving pods (api/defaults.py), merged
    with the spec by platform.py."""
    catalog = catalog if catalog is not None else builtin_catalog()
    spec = service.spec
    stage = spec.stage
    defaults = STAGE_DEFAULTS[stage]
    _check_sizes(spec)

    gpu_spec = spec.resources.gpu if spec.resources else None
    gpu_count = gpu_spec.count if gpu_spec else defaults.gpus
    decision = choose_runtime(
        spec.runtime, DecisionInput(stage, spec.expected_concurrency, gpu_count, spec.optimize_for)
    )
    runtime = decision.runtime
    if runtime == Runtime.OLLAMA and spec.lora is not None:
        raise SpecError(
            "spec.lora",
            f"LoRA adapters need vLLM and the runtime is Ollama ({decision.reason}): Ollama applies an "
            "adapter only to a model built from a Modelfile ADAPTER line, which llmstage does not do; set "
            "runtime vllm, or remove spec.lora in this stage",
        )
    nodes = asked_nodes(spec)
    gpu = (
        GPU(
            gpu_count,
            gpu_spec.product if gpu_spec else None,
            gpu_spec.resource_name if gpu_spec else "nvidia.com/gpu",
            nodes=nodes or 1,
        )
        if gpu_count >= 1
        else None
    )

    replicas, autoscaling = _scaling(spec, defaults, runtime)
    baseline = max(1, replicas if replicas is not None else autoscaling.min_replicas if autoscaling else 1)
    per_replica = math.ceil(spec.expected_concurrency / baseline)

    source = weights(spec)
    entry = catalog.lookup(spec.model.name) or (
        catalog.lookup(source.hugging_face_id) if source.hugging_face_id else None
    )
    shape, context, split = _shape(spec, entry)
    model = _model_info(spec, entry, runtime, context, source)
    served_model_name = spec.served_model_name or spec.model.name
    findings: list[Finding] = []
    ollama = vllm = None
    registry = serving_defaults.image_registry if serving_defaults else None
    if runtime == Runtime.OLLAMA:
        ollama = ollama_settings(spec, per_replica, _default_context(context), model, served_model_name)
        if registry and not (spec.ollama and spec.ollama.image):
            ollama = replace(ollama, image=platform.mirrored(ollama.image, registry))
    else:
        vllm = vllm_settings(spec, stage, context, _default_context(context), gpu_count, split, entry, model)
        if gpu is not None and gpu.product:
            _check_gpu_precision(spec, vllm, gpu.product)
        if registry and not (spec.vllm and spec.vllm.image):
            vllm = replace(vllm, image=platform.mirrored(vllm.image, registry))
    vllm = check_layout(spec, runtime, decision.reason, gpu, vllm)

    cpu, memory, memory_fit, weights_gib, vllm = _resources_and_fit(
        spec, defaults, runtime, shape, model, gpu, ollama, vllm, entry, per_replica
    )
    if vllm is not None and may_choose_nodes(gpu, nodes) and memory_fit.reason == fit.FitReason.DOES_NOT_FIT:
        # The model does not start on the GPUs of one node: one replica spans the fewest nodes it fits.
        assert gpu is not None
        one_node, on_nodes = gpu, vllm

        def fit_on(n: int) -> fit.FitReport:
            trial = check_layout(spec, runtime, decision.reason, replace(one_node, nodes=n), on_nodes)
            report = _resources_and_fit(
                spec,
                defaults,
                runtime,
                shape,
                model,
                replace(one_node, nodes=n),
                ollama,
                trial,
                entry,
                per_replica,
            )[2]
            return fit.FitReport(report.fits, fit.FitReason(report.reason), report.message)

        chosen = fewest_nodes(fit_on)
        if chosen is not None:
            gpu = replace(gpu, nodes=chosen)
            vllm = check_layout(spec, runtime, decision.reason, gpu, vllm)
            cpu, memory, memory_fit, weights_gib, vllm = _resources_and_fit(
                spec,
                defaults,
                runtime,
                shape,
                model,
                gpu,
                ollama,
                vllm,
                entry,
                per_replica,
                chosen_nodes=True,
            )
    max_pods = replicas if replicas is not None else autoscaling.max_replicas if autoscaling else 1
    # Every pod of a multi-node group loads the weights: it needs a cache of its own, or a shared one.
    max_pods *= gpu.nodes if gpu else 1
    cache = _cache(spec, runtime, weights_gib, max_pods)
    findings.extend(
        common_mistakes(spec, stage, runtime, decision, model, entry, vllm, gpu_count, cache, max_pods)
    )
    findings.extend(_unknown_to_pinned_release(spec, runtime, ollama, vllm))
    findings.extend(source_findings(spec, runtime))
    findings.extend(hardening_findings(spec, runtime, model))

    return Resolved(
        name=service.metadata.name,
        namespace=service.metadata.namespace,
        uid=service.metadata.uid,
        generation=service.metadata.generation,
        stage=stage,
        runtime=runtime,
        runtime_reason=decision.reason,
        served_model_name=served_model_name,
        expected_concurrency=spec.expected_concurrency,
        model=model,
        resources=Resources(
            cpu=cpu,
            memory=memory,
            gpu=gpu,
            ephemeral_storage=(spec.resources.ephemeral_storage if spec.resources else None)
            or DEFAULT_EPHEMERAL_STORAGE[runtime],
        ),
        replicas=replicas,
        autoscaling=autoscaling,
        cache=cache,
        hugging_face_token_secret_ref=(
            SecretKeyRef(spec.hugging_face_token_secret_ref.name, spec.hugging_face_token_secret_ref.key)
            if spec.hugging_face_token_secret_ref
            else None
        ),
        scheduling=platform.scheduling(spec, serving_defaults, gpus=gpu is not None),
        ollama=ollama,
        vllm=vllm,
        pod_disruption_budget=defaults.pod_disruption_budget,
        topology_spread=defaults.topology_spread,
        memory_fit=memory_fit,
        warnings=tuple(findings),
        pod=platform.pod_options(spec, serving_defaults),
        pod_security=platform.pod_security(serving_defaults),
        pod_monitor_labels=dict(serving_defaults.pod_monitor.labels) if serving_defaults else {},
        gateway_image=platform.mirrored(DEFAULT_GATEWAY_IMAGE, registry)
        if registry
        else DEFAULT_GATEWAY_IMAGE,
        routing=routing_settings(spec, service.metadata.namespace),
        network=_network_access(spec),
    )


def _check_gpu_precision(spec: LLMServiceSpec, vllm: VLLMSettings, product: str) -> None:
    """bf16 and fp8 where the GPU product cannot run them (resolve/gpu_capability.py): vLLM would
    stop at start, over and over, instead of the spec being refused here."""
    problems = unsupported_precision(
        product,
        dtype=vllm.dtype,
        dtype_field="spec.vllm.dtype",
        quantization=vllm.quantization,
        quantization_field=(
            "spec.vllm.quantization" if spec.vllm and spec.vllm.quantization else "spec.model.quantization"
        ),
        kv_cache_dtype=vllm.kv_cache_dtype,
    )
    if problems:
        raise SpecError(*problems[0])


def _selector(selector: LabelSelector) -> dict[str, Any]:
    """A metav1.LabelSelector without empty members ({} selects everything)."""
    out: dict[str, Any] = {}
    if selector.match_labels:
        out["matchLabels"] = dict(selector.match_labels)
    if selector.match_expressions:
        out["matchExpressions"] = [
            e.model_dump(by_alias=True, exclude_defaults=True, mode="json")
            for e in selector.match_expressions
        ]
    return out


def _network_access(spec: LLMServiceSpec) -> NetworkAccess:
    asked = spec.network_policy
    if asked is None:
        return NetworkAccess()
    clients = tuple(
        {
            key: _selector(selector)
            for key, selector in (
                ("namespaceSelector", c.namespace_selector),
                ("podSelector", c.pod_selector),
            )
            if selector is not None
        }
        for c in asked.allowed_clients
    )
    return NetworkAccess(enabled=asked.enabled, clients=clients)


# ---------------------------------------------------------------- replicas and autoscaling


def _scaling(
    spec: LLMServiceSpec, defaults: StageDefaults, runtime: Runtime
) -> tuple[int | None, Autoscaling | None]:
    if spec.replicas is not None:
        return spec.replicas, None
    asked = spec.autoscaling
    if asked is None and defaults.autoscale is None:
        return defaults.replicas, None
    low, high = defaults.autoscale or FALLBACK_AUTOSCALE
    max_replicas = asked.max_replicas if asked and asked.max_replicas is not None else None
    min_replicas = asked.min_replicas if asked and asked.min_replicas is not None else None
    if min_replicas is None:
        min_replicas = min(low, max_replicas) if max_replicas is not None else low
    if max_replicas is None:
        max_replicas = max(high, min_replicas)
    choice = asked.metric if asked else ScaleMetricChoice.AUTO
    if choice == ScaleMetricChoice.AUTO:
        metric = ScaleMetric.QUEUE if runtime == Runtime.VLLM else ScaleMetric.CPU
    else:
        metric = ScaleMetric(choice.value)
    if metric == ScaleMetric.QUEUE and runtime == Runtime.OLLAMA:
        raise SpecError(
            "spec.autoscaling.metric",
            "queue reads vLLM's queue depth, but the runtime is Ollama, which exposes no metrics: "
            "use metric cpu or auto",
        )
    target = (
        asked.target
        if asked and asked.target is not None
        else (QUEUE_TARGET if metric == ScaleMetric.QUEUE else CPU_TARGET)
    )
    return None, Autoscaling(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metric=metric,
        target=target,
        queue_metric_name=asked.queue_metric_name if asked else DEFAULT_QUEUE_METRIC,
        **keda_options(asked, metric),
    )


def keda_options(asked: AutoscalingSpec | None, metric: ScaleMetric) -> dict[str, Any]:
    """spec.autoscaling.autoscaler and .keda for Autoscaling. The API rejects a missing serverAddress
    wherever the runtime is known from the spec; this catches the rest (runtime auto chose vLLM)."""
    if asked is None or asked.autoscaler != AutoscalerChoice.KEDA:
        return {}
    keda = asked.keda or KedaSpec()
    if metric == ScaleMetric.QUEUE and keda.server_address is None:
        raise SpecError(
            "spec.autoscaling.keda.serverAddress",
            "autoscaler keda reads vLLM's queue (vllm:num_requests_waiting) from Prometheus: set it to "
            "the Prometheus URL, e.g. http://prometheus-operated.monitoring.svc:9090, or use metric cpu",
        )
    return {
        "autoscaler": Autoscaler.KEDA,
        "keda": KedaSettings(keda.server_address, keda.query, keda.wake_query, keda.cooldown_period),
    }


# ---------------------------------------------------------------- model


def _shape(
    spec: LLMServiceSpec, entry: CatalogEntry | None
) -> tuple[fit.ModelShape | None, int | None, TensorSplit]:
    """The model's shape for the fit check: catalog values, overridden field by field by the spec."""
    arch = spec.model.architecture

    def pick(name: str) -> float | None:
        value = getattr(arch, name) if arch else None
        return value if value is not None else getattr(entry, name) if entry else None

    def integer(name: str) -> int | None:
        value = pick(name)
        return None if value is None else int(value)

    params, layers, kv_heads, head_dim = (
        pick(n) for n in ("parameters_billion", "layers", "kv_heads", "head_dim")
    )
    context = pick("context_length")
    shape = None
    if params is not None and layers is not None and kv_heads is not None and head_dim is not None:
        shape = fit.ModelShape(float(params), int(layers), int(kv_heads), int(head_dim))
    split = TensorSplit(integer("attention_heads"), integer("kv_heads"), integer("intermediate_size"))
    return shape, None if context is None else int(context), split


def _model_info(
    spec: LLMServiceSpec, entry: CatalogEntry | None, runtime: Runtime, context: int | None, source: Weights
) -> ModelInfo:
    asked = spec.model
    is_hf_name = "/" in asked.name and not asked.name.startswith(("hf.co/", "huggingface.co/"))
    if source.source is not None:
        hf_id = ""  # vLLM serves a local directory (pvc, oci, or what s3/gcs downloaded)
    else:
        hf_id = source.hugging_face_id or (
            entry.hugging_face_id if entry else asked.name if is_hf_name else ""
        )
    if runtime == Runtime.VLLM and not hf_id and source.source is None:
        raise SpecError(
            "spec.model.huggingFaceId",
            f"model {asked.name!r} is not in the catalog, so vLLM does not know which Hugging Face "
            "repository to serve: set spec.model.huggingFaceId (e.g. org/model), spec.model.source (a "
            "repository, a claim, a bucket or an image), or add the model to the catalog",
        )
    if entry and asked.name.lower() == entry.hugging_face_id.lower():
        ollama_tag = entry.pull_tag
    else:
        ollama_tag = asked.name
    tag = parse_ollama_tag(ollama_tag)
    if runtime == Runtime.OLLAMA:
        fmt = asked.format or ModelFormat.GGUF
        plain_tag = entry is not None and tag.quantization is None
        quantization = tag.quantization or (
            entry.ollama_quantization if plain_tag and entry else asked.quantization
        )
    else:
        fmt = asked.format or (entry.native_format if entry else ModelFormat.SAFETENSORS)
        quantization = weight_quantization(spec, entry, hf_id)
    return ModelInfo(
        name=asked.name,
        ollama_tag=ollama_tag,
        hugging_face_id=hf_id,
        revision=source.revision,
        format=fmt.value,
        quantization=quantization,
        parameters_billion=(
            asked.architecture.parameters_billion
            if asked.architecture and asked.architecture.parameters_billion is not None
            else entry.parameters_billion
            if entry
            else None
        ),
        context_length=context,
        source=source.source,
        hugging_face_endpoint=source.hugging_face_endpoint,
    )


def _default_context(context: int | None) -> int:
    return min(context, DEFAULT_CONTEXT_CAP) if context else DEFAULT_CONTEXT_CAP


# ---------------------------------------------------------------- resources and memory fit


def _gpu_memory(spec: LLMServiceSpec, gpu: GPU) -> tuple[float | None, str]:
    """Memory of one GPU and how to name it, from spec.resources.gpu.memory or the product table."""
    gpu_spec = spec.resources.gpu if spec.resources else None
    if gpu_spec and gpu_spec.memory is not None:
        return gib(gpu_spec.memory), gpu.product or "GPU"
    if gpu.product:
        return fit.gpu_memory_gib(gpu.product), gpu.product
    return None, "GPU"


def _unknown_gpu(gpu: GPU) -> fit.FitReport:
    if gpu.product:
        known = ", ".join(sorted(fit.GPU_MEMORY_MIB))
        text = (
            f"GPU product {gpu.product!r} is not in the built-in table ({known}): "
            "set spec.resources.gpu.memory to check the fit"
        )
    else:
        text = (
            "no GPU product given: set spec.resources.gpu.product (e.g. NVIDIA-L4) "
            "or spec.resources.gpu.memory to check the fit"
        )
    return fit.unknown(fit.FitReason.UNKNOWN_GPU, text)


def _fit_or_unknown(
    model: ModelInfo,
    shape: fit.ModelShape | None,
    bpp: float | None,
    gpu: GPU | None,
    gpu_mem: float | None,
    compute: Callable[[fit.ModelShape, float], fit.FitReport],
) -> fit.FitReport:
    """The memory fit, or why it cannot be computed: unknown model shape, quantization or GPU."""
    if shape is None:
        return fit.unknown(
            fit.FitReason.UNKNOWN_MODEL,
            f"model {model.name!r} is not in the catalog: set spec.model.architecture "
            "(parametersBillion, layers, kvHeads, headDim) to check the fit",
        )
    if bpp is None:
        return fit.unknown(
            fit.FitReason.UNKNOWN_QUANTIZATION,
            f"quantization {model.quantization!r} is unknown: the fit cannot be computed",
        )
    if gpu is not None and gpu_mem is None:
        return _unknown_gpu(gpu)
    return compute(shape, bpp)


def _resources_and_fit(  # noqa: PLR0913 - what the sizing reads from the resolved spec
    spec: LLMServiceSpec,
    defaults: StageDefaults,
    runtime: Runtime,
    shape: fit.ModelShape | None,
    model: ModelInfo,
    gpu: GPU | None,
    ollama: OllamaSettings | None,
    vllm: VLLMSettings | None,
    entry: CatalogEntry | None,
    per_replica: int,
    *,
    chosen_nodes: bool = False,
) -> tuple[str, str, MemoryFit, float | None, VLLMSettings | None]:
    """CPU and memory (explicit or defaulted), the memory fit, the weights' size for the cache, and
    the vLLM settings with what the CPU backend needs (its KV cache and threads) filled in.
    chosen_nodes: the fit itself chose gpu.nodes (the message says so)."""
    asked_cpu = spec.resources.cpu if spec.resources else None
    asked_memory = spec.resources.memory if spec.resources else None
    native = entry.native_dtype if entry else "bfloat16"
    gpu_mem, gpu_name = _gpu_memory(spec, gpu) if gpu else (None, "")

    if runtime == Runtime.OLLAMA:
        assert ollama is not None
        bpp = fit.bytes_per_parameter(model.quantization, None, native) if model.quantization else None
        if bpp is None and shape is not None and model.quantization is None:
            bpp = fit.bytes_per_parameter("q4_k_m", None)  # what a plain, uncatalogued Ollama tag usually is
        need = (
            fit.ollama_need(
                shape,
                bytes_per_param=bpp,
                context_length=ollama.context_length,
                num_parallel=ollama.num_parallel,
            )
            if shape and bpp
            else None
        )
        cpu = asked_cpu or defaults.ollama_cpu
        memory_gib = max(defaults.ollama_min_memory_gib, math.ceil(need.total_gib * 1.25) if need else 0)
        memory = asked_memory or f"{memory_gib}Gi"
        settings = ollama
        report = _fit_or_unknown(
            model,
            shape,
            bpp,
            gpu,
            gpu_mem,
            lambda shape, bpp: fit.ollama_fit(
                shape,
                bytes_per_param=bpp,
                context_length=settings.context_length,
                num_parallel=settings.num_parallel,
                memory_gib=gib(memory),
                gpu_product=gpu_name,
                gpu_memory_gib_each=gpu_mem,
                gpu_count=gpu.count if gpu else 0,
            ),
        )
        weights = shape.weights_gib(bpp) if shape and bpp else None
        return cpu, memory, report.to_memory_fit(), weights, None

    assert vllm is not None
    if gpu is None:
        return _vllm_on_cpu(asked_cpu, asked_memory, shape, model, vllm, native, per_replica)
    cpu = asked_cpu or str(2 + 2 * gpu.count)
    memory = asked_memory or f"{16 + 8 * gpu.count}Gi"  # loading, tokenizer workers, /dev/shm for TP
    bpp = fit.bytes_per_parameter(model.quantization, vllm.dtype, native)
    kv_bytes = _kv_bytes(vllm.kv_cache_dtype, native if vllm.dtype == "auto" else vllm.dtype)
    # The sequences that must fit at full length: the expected users of one replica, or fewer when
    # spec.vllm.maxNumSeqs caps the batch below them.
    needed = min(per_replica, vllm.max_num_seqs) if vllm.max_num_seqs else per_replica

    def vllm_fit(shape: fit.ModelShape, bpp: float) -> fit.FitReport:
        assert gpu_mem is not None  # _fit_or_unknown reports an unknown GPU before calling this
        return fit.vllm_fit(
            shape,
            bytes_per_param=bpp,
            max_model_len=vllm.max_model_len,
            concurrent_sequences=needed,
            gpu_product=gpu_name,
            gpu_memory_gib_each=gpu_mem,
            gpu_count=vllm.tensor_parallel_size,
            gpu_memory_utilization=vllm.gpu_memory_utilization,
            kv_bytes_per_element=kv_bytes,
            kv_cache_dtype=vllm.kv_cache_dtype,
            max_num_seqs=vllm.max_num_seqs,
            nodes=vllm.pipeline_parallel_size,
            layout_note=(
                f" (spec.resources.gpu.nodes unset: the model does not fit on one node's {gpu.count} GPUs)"
                if chosen_nodes
                else ""
            ),
        )

    report = _fit_or_unknown(model, shape, bpp, gpu, gpu_mem, vllm_fit)
    weights = shape.weights_gib(bpp) if shape and bpp else None
    return cpu, memory, report.to_memory_fit(), weights, vllm


# vLLM without GPUs: cores for the OpenMP kernels plus one for the API server and the scheduler.
VLLM_CPU_DEFAULT_CPU = "4"
VLLM_CPU_RESERVED_CORES = 1


def _vllm_on_cpu(
    asked_cpu: str | None,
    asked_memory: str | None,
    shape: fit.ModelShape | None,
    model: ModelInfo,
    vllm: VLLMSettings,
    native: str,
    per_replica: int,
) -> tuple[str, str, MemoryFit, float | None, VLLMSettings]:
    """vLLM's CPU backend: the weights, a KV cache of VLLM_CPU_KVCACHE_SPACE GiB and the processes'
    own memory in the container's memory; OpenMP threads from the CPU request."""
    cpu = asked_cpu or VLLM_CPU_DEFAULT_CPU
    bpp = fit.bytes_per_parameter(model.quantization, vllm.dtype, native)
    kv_bytes = _kv_bytes(vllm.kv_cache_dtype, vllm.dtype)
    needed = min(per_replica, vllm.max_num_seqs) if vllm.max_num_seqs else per_replica
    weights = shape.weights_gib(bpp) if shape and bpp else None
    want_kv = (
        fit.vllm_cpu_kv_gib(shape, kv_bytes, vllm.max_model_len, needed) if shape else fit.VLLM_CPU_MIN_KV_GIB
    )
    if asked_memory:
        memory = asked_memory
    elif weights is not None:
        memory = f"{math.ceil((weights + want_kv + fit.VLLM_CPU_OVERHEAD_GIB) * 1.1)}Gi"
    else:
        memory = f"{fit.VLLM_CPU_FALLBACK_MEMORY_GIB}Gi"

    def cpu_fit(shape: fit.ModelShape, bpp: float) -> fit.FitReport:
        return fit.vllm_cpu_fit(
            shape,
            bytes_per_param=bpp,
            max_model_len=vllm.max_model_len,
            concurrent_sequences=needed,
            memory_gib=gib(memory),
            kv_bytes_per_element=kv_bytes,
        )

    report = _fit_or_unknown(model, shape, bpp, None, None, cpu_fit)
    kv_gib = (
        want_kv if report.kv_cache_gib is None else max(fit.VLLM_CPU_MIN_KV_GIB, int(report.kv_cache_gib))
    )
    threads = max(1, math.floor(parse_quantity(cpu)) - VLLM_CPU_RESERVED_CORES)
    on_cpu = VLLMOnCPU(
        kv_cache_gib=kv_gib,
        omp_threads=threads,
        cpu_features=CPU_DTYPE_FEATURES.get(vllm.dtype, ()),
    )
    return cpu, memory, report.to_memory_fit(), weights, replace(vllm, cpu=on_cpu)


def _kv_bytes(kv_cache_dtype: str | None, model_dtype: str) -> float:
    """Bytes per KV-cache element: 1 for vLLM's fp8 variants (fp8, fp8_e4m3, fp8_e5m2, ...), else
    the model's dtype ('auto' is vLLM's default: the model dtype)."""
    if kv_cache_dtype and kv_cache_dtype.lower().startswith("fp8"):
        return 1.0
    if kv_cache_dtype and kv_cache_dtype.lower() != "auto":
        return fit.DTYPE_BYTES.get(kv_cache_dtype.lower(), 2.0)
    return fit.DTYPE_BYTES.get(model_dtype, 2.0)


def _cache(spec: LLMServiceSpec, runtime: Runtime, weights_gib: float | None, max_pods: int) -> ModelCache:
    """A claim per pod unless at most one pod runs or the user asks to share one (docs/storage.md):
    sharing between several pods needs ReadWriteMany, which the default classes of EKS, GKE and
    AKS do not offer, so a shared default would stay Pending there."""
    asked = spec.cache or CacheSpec()
    if asked.size is not None:
        size = asked.size
    elif weights_gib is not None:
        size = (
            f"{max(10, math.ceil((weights_gib * 1.2 + 5) / 10) * 10)}Gi"  # room for tokenizer files, updates
        )
    else:
        size = f"{CACHE_FALLBACK_GIB[runtime]}Gi"
    if asked.mode is not None:
        shared = asked.mode == CacheMode.SHARED
    else:
        shared = (
            max_pods <= 1 or asked.claim_name is not None or asked.access_mode == AccessMode.READ_WRITE_MANY
        )
    mode = asked.access_mode or (
        AccessMode.READ_WRITE_MANY if shared and max_pods > 1 else AccessMode.READ_WRITE_ONCE
    )
    return ModelCache(
        size=size,
        storage_class_name=asked.storage_class_name,
        access_mode=mode.value,
        per_pod=not shared,
        claim_name=asked.claim_name,
    )


def _unknown_to_pinned_release(
    spec: LLMServiceSpec, runtime: Runtime, ollama: OllamaSettings | None, vllm: VLLMSettings | None
) -> list[Finding]:
    """User-supplied flags and variables the pinned release does not know: reported, not rejected,
    because a custom spec.vllm.image or spec.ollama.image may know them."""
    out: list[Finding] = []
    if vllm is not None and (vllm.extra_args or vllm.env):
        facts = upstream.vllm_facts_for_image(vllm.image)
        pinned = DEFAULT_VLLM_CPU_IMAGE if vllm.cpu else DEFAULT_VLLM_IMAGE
        image = f" (spec.vllm.image {vllm.image} may differ)" if vllm.image != pinned else ""
        problems = upstream.check_vllm_args(vllm.extra_args, facts)
        if problems:
            out.append(
                Finding(
                    "UnknownVLLMArgument",
                    f"spec.vllm.extraArgs, checked against {facts.release} (the release llmstage pins, "
                    f"{pinned}){image}: {'; '.join(problems)}. vLLM exits at start on an argument it does "
                    "not know",
                )
            )
        # VLLM_* only: other names are read by libraries in the image (NCCL_*, CUDA_*, HF_*, proxies).
        unknown = sorted(n for n in vllm.env if n.startswith("VLLM_") and n not in facts.env)
        if unknown:
            out.append(
                Finding(
                    "UnknownVLLMVariable",
                    f"spec.vllm.env sets {', '.join(unknown)}, which {facts.release} (the release llmstage "
                    f"pins, {pinned}){image} never reads (vllm/envs.py): check the spelling",
                )
            )
    if ollama is not None and ollama.env:
        o_facts = upstream.ollama_facts()
        unknown = upstream.unknown_env(ollama.env, o_facts.env, o_facts.image["env"])
        if unknown:
            image = (
                f" (spec.ollama.image {ollama.image} may differ)"
                if ollama.image != DEFAULT_OLLAMA_IMAGE
                else ""
            )
            out.append(
                Finding(
                    "UnknownOllamaVariable",
                    f"spec.ollama.env sets {', '.join(unknown)}, which {o_facts.release} (the release "
                    f"llmstage pins, {DEFAULT_OLLAMA_IMAGE}){image} never reads: check the spelling",
                )
            )
    return out
