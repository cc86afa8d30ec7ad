"""Hand-written Resolved inputs for the renderer tests: one per stage x runtime we ship goldens for.

Written out in full (not produced by resolve()) so the renderer tests pin the renderer alone.
Values follow the stage defaults (resolve/resolver.py); images are pinned like the operator's settings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmstage.api.models import Runtime, Stage
from llmstage.render import render_deployment
from llmstage.resolve.resolved import (
    GPU,
    Autoscaler,
    Autoscaling,
    BucketSource,
    ClusterFacts,
    ConfigMapKeyRef,
    KedaSettings,
    LoRA,
    LoRAAdapter,
    MemoryFit,
    ModelCache,
    ModelInfo,
    NetworkAccess,
    OCISource,
    OllamaRegistry,
    OllamaSettings,
    PodOptions,
    PodSecurity,
    PVCSource,
    Resolved,
    Resources,
    Routing,
    ScaleMetric,
    Scheduling,
    SecretKeyRef,
    VLLMOnCPU,
    VLLMSettings,
)

OLLAMA_IMAGE = "ollama/ollama:0.17.4"
VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
HF_TOKEN = SecretKeyRef(name="hf-token", key="token")
API_KEY = SecretKeyRef(name="llm-api-key", key="api-key")

LLAMA_8B = ModelInfo(
    name="llama3.1:8b",
    ollama_tag="llama3.1:8b",
    hugging_face_id="meta-llama/Llama-3.1-8B-Instruct",
    revision=None,
    format="gguf",
    quantization="q4_K_M",
    parameters_billion=8.0,
    context_length=131072,
)
LLAMA_8B_VLLM = replace(LLAMA_8B, format="safetensors", quantization=None)
LLAMA_70B_VLLM = ModelInfo(
    name="llama3.1:70b",
    ollama_tag="llama3.1:70b",
    hugging_face_id="meta-llama/Llama-3.1-70B-Instruct",
    revision="1605565b47bb9346c5515c34102e054115b4f98b",
    format="safetensors",
    quantization=None,
    parameters_billion=70.0,
    context_length=131072,
)
QWEN_05B = ModelInfo(
    name="qwen2.5:0.5b",
    ollama_tag="qwen2.5:0.5b",
    hugging_face_id="Qwen/Qwen2.5-0.5B-Instruct",
    revision=None,
    format="gguf",
    quantization="q4_K_M",
    parameters_billion=0.5,
    context_length=32768,
)

SMOLLM2 = ModelInfo(
    name="smollm2:135m",
    ollama_tag="smollm2:135m",
    hugging_face_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    revision=None,
    format="gguf",
    quantization="q4_1",
    parameters_billion=0.1345,
    context_length=8192,
)

FITS = MemoryFit(fits=True, reason="Fits", message="fits")
UNKNOWN_FIT = MemoryFit(fits=None, reason="NoGPU", message="CPU only: not computed")


def ollama_settings(num_parallel: int = 1, context_length: int = 8192) -> OllamaSettings:
    return OllamaSettings(
        image=OLLAMA_IMAGE, num_parallel=num_parallel, keep_alive="-1", context_length=context_length
    )


DEV_OLLAMA = Resolved(
    name="chat",
    namespace="team-a",
    uid="",
    generation=1,
    stage=Stage.DEV,
    runtime=Runtime.OLLAMA,
    runtime_reason="stage dev and 1 expected user <= 4, no GPU: Ollama",
    served_model_name="llama3.1:8b",
    expected_concurrency=1,
    model=LLAMA_8B,
    resources=Resources(cpu="2", memory="8Gi", ephemeral_storage="2Gi"),
    replicas=1,
    autoscaling=None,
    cache=ModelCache(size="20Gi"),
    hugging_face_token_secret_ref=None,
    scheduling=Scheduling(),
    ollama=ollama_settings(),
    vllm=None,
    pod_disruption_budget=False,
    topology_spread=False,
    memory_fit=UNKNOWN_FIT,
)

STAGING_OLLAMA = replace(
    DEV_OLLAMA,
    generation=4,
    stage=Stage.STAGING,
    runtime_reason="stage staging and 3 expected users <= 4: Ollama",
    expected_concurrency=3,
    resources=Resources(cpu="4", memory="12Gi", ephemeral_storage="2Gi"),
    replicas=None,
    autoscaling=Autoscaling(min_replicas=1, max_replicas=2, metric=ScaleMetric.CPU, target=70),
    # Two replicas share one cache, so the claim must be ReadWriteMany.
    cache=ModelCache(size="20Gi", storage_class_name="shared-nfs", access_mode="ReadWriteMany"),
    ollama=replace(ollama_settings(num_parallel=3), env={"OLLAMA_FLASH_ATTENTION": "1"}),
)

# The user chose Ollama for production explicitly (resolve() warns); fixed replicas, no HPA.
PRODUCTION_OLLAMA = replace(
    STAGING_OLLAMA,
    stage=Stage.PRODUCTION,
    runtime_reason="spec.runtime ollama",
    expected_concurrency=4,
    replicas=2,
    autoscaling=None,
    ollama=ollama_settings(num_parallel=4),
    pod_disruption_budget=True,
    topology_spread=True,
    scheduling=Scheduling(
        node_selector={"kubernetes.io/os": "linux"},
        priority_class_name="llm-serving",
    ),
)

# Dev on Ollama pulling from a private registry with its own CA and Ollama key, served under a
# name that differs from the tag: the pull of registry.internal:5000/library/smollm2:135m is
# followed by `ollama cp` to "chat".
DEV_OLLAMA_REGISTRY = replace(
    DEV_OLLAMA,
    name="smol",
    served_model_name="chat",
    model=SMOLLM2,
    resources=Resources(cpu="1", memory="4Gi", ephemeral_storage="2Gi"),
    cache=ModelCache(size="10Gi"),
    ollama=replace(
        ollama_settings(),
        pull_ref="registry.internal:5000/library/smollm2:135m",
        registry=OllamaRegistry(
            host="registry.internal:5000",
            ca_config_map=ConfigMapKeyRef(name="registry-ca", key="ca.crt"),
            key_secret=SecretKeyRef(name="ollama-registry-key", key="id_ed25519"),
        ),
    ),
)

# Dev on Ollama with a GPU: limits, the GPU toleration, runtimeClassName; no product affinity.
DEV_OLLAMA_GPU = replace(
    DEV_OLLAMA,
    name="chat-gpu",
    resources=Resources(cpu="2", memory="8Gi", gpu=GPU(count=1), ephemeral_storage="2Gi"),
    scheduling=Scheduling(runtime_class_name="nvidia"),
)

PRODUCTION_VLLM = Resolved(
    name="chat",
    namespace="team-a",
    uid="5f0c2a4e-8d0b-4c55-9a53-2b1f3f0c9e11",
    generation=7,
    stage=Stage.PRODUCTION,
    runtime=Runtime.VLLM,
    runtime_reason="stage production and 50 expected users > 4: vLLM",
    served_model_name="llama3.1:8b",
    expected_concurrency=50,
    model=LLAMA_8B_VLLM,
    resources=Resources(
        cpu="8", memory="32Gi", gpu=GPU(count=1, product="NVIDIA-L4"), ephemeral_storage="10Gi"
    ),
    replicas=None,
    autoscaling=Autoscaling(min_replicas=2, max_replicas=8, metric=ScaleMetric.QUEUE, target=4),
    cache=ModelCache(size="50Gi", storage_class_name="shared-nfs", access_mode="ReadWriteMany"),
    hugging_face_token_secret_ref=HF_TOKEN,
    scheduling=Scheduling(
        tolerations=({"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},),
        runtime_class_name="nvidia",
        priority_class_name="llm-serving",
    ),
    ollama=None,
    vllm=VLLMSettings(
        image=VLLM_IMAGE,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        max_num_seqs=None,  # vLLM's default batch
        tensor_parallel_size=1,
        dtype="bfloat16",
        quantization=None,
        api_key_secret_ref=API_KEY,
    ),
    pod_disruption_budget=True,
    topology_spread=True,
    memory_fit=FITS,
)

# vLLM in dev: one GPU, no product constraint, one replica with its own ReadWriteOnce cache.
DEV_VLLM_GPU = replace(
    PRODUCTION_VLLM,
    name="coder",
    uid="",
    generation=1,
    stage=Stage.DEV,
    runtime_reason="spec.runtime vllm",
    expected_concurrency=2,
    resources=Resources(cpu="4", memory="24Gi", gpu=GPU(count=1), ephemeral_storage="10Gi"),
    replicas=1,
    autoscaling=None,
    cache=ModelCache(size="40Gi"),
    scheduling=Scheduling(),
    vllm=replace(  # type: ignore[type-var]
        PRODUCTION_VLLM.vllm,
        max_model_len=4096,
        max_num_seqs=8,
        api_key_secret_ref=None,
        extra_args=("--enable-prefix-caching",),
    ),
    pod_disruption_budget=False,
    topology_spread=False,
)

# 70B in bf16 over 4 x H100 80GB: tensor parallelism 4, a pinned revision, a user affinity that
# the GPU product requirement must be ANDed into, and fp8 KV cache through extra args.
PRODUCTION_VLLM_70B_TP = replace(
    PRODUCTION_VLLM,
    name="assistant-70b",
    namespace="ml-prod",
    uid="0b8e1f0a-3c7d-4e6a-9f2b-6d5c4b3a2910",
    generation=3,
    runtime_reason="stage production and 200 expected users > 4: vLLM",
    served_model_name="assistant",
    expected_concurrency=200,
    model=LLAMA_70B_VLLM,
    resources=Resources(
        cpu="32", memory="256Gi", gpu=GPU(count=4, product="NVIDIA-H100-80GB-HBM3"), ephemeral_storage="10Gi"
    ),
    autoscaling=Autoscaling(
        min_replicas=1,
        max_replicas=2,
        metric=ScaleMetric.QUEUE,
        target=8,
        queue_metric_name="vllm_num_requests_waiting",
    ),
    cache=ModelCache(size="300Gi", storage_class_name="shared-nfs", access_mode="ReadWriteMany"),
    scheduling=Scheduling(
        node_selector={"node.kubernetes.io/instance-type": "p5.48xlarge"},
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["llm-a"]}]},
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["llm-b"]}]},
                    ]
                }
            }
        },
        # Already tolerates the GPU taint: the renderer must not add it twice.
        tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
        runtime_class_name="nvidia",
    ),
    vllm=VLLMSettings(
        image=VLLM_IMAGE,
        gpu_memory_utilization=0.92,
        max_model_len=16384,
        max_num_seqs=None,
        tensor_parallel_size=4,
        dtype="bfloat16",
        quantization=None,
        extra_args=("--kv-cache-dtype=fp8", "--enable-chunked-prefill"),
        api_key_secret_ref=API_KEY,
        kv_cache_dtype="fp8",
    ),
)

# What a platform team adds on a managed GPU cluster (spec.pod, env, envFrom, ephemeral storage):
# a private registry's pull secret, an IRSA ServiceAccount, a mesh label, a CA bundle for the
# Hugging Face mirror (HF_ENDPOINT) mounted into the download step and the server, a proxy ConfigMap.
PLATFORM_POD = PodOptions(
    service_account_name="llm-models-reader",
    image_pull_secrets=("registry-mirror",),
    labels={"sidecar.istio.io/inject": "false", "team": "ml-platform"},
    annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
    volumes=({"name": "mirror-ca", "configMap": {"name": "hf-mirror-ca"}},),
    volume_mounts=({"name": "mirror-ca", "mountPath": "/etc/ssl/mirror", "readOnly": True},),
)
PROXY_CONFIG = ({"configMapRef": {"name": "egress-proxy"}},)
PRODUCTION_VLLM_PLATFORM = replace(
    PRODUCTION_VLLM,
    resources=replace(PRODUCTION_VLLM.resources, ephemeral_storage="20Gi"),
    vllm=replace(  # type: ignore[type-var]
        PRODUCTION_VLLM.vllm,
        env={"HF_ENDPOINT": "https://hf-mirror.internal", "VLLM_LOGGING_LEVEL": "DEBUG"},
        env_from=PROXY_CONFIG,
    ),
    pod=PLATFORM_POD,
)
DEV_OLLAMA_PLATFORM = replace(
    DEV_OLLAMA_REGISTRY,
    ollama=replace(  # type: ignore[type-var]
        DEV_OLLAMA_REGISTRY.ollama,
        env={"OLLAMA_DEBUG": "1"},
        env_from=PROXY_CONFIG,
    ),
    pod=replace(PLATFORM_POD, automount_service_account_token=True),
)

# The install's serving defaults on OpenShift: the platform assigns the IDs (restricted-v2), the
# images come from a mirror, a GPU pool's scheduling (merged by resolve, shown as resolved), and
# the label kube-prometheus-stack selects PodMonitors by.
PRODUCTION_VLLM_OPENSHIFT = replace(
    PRODUCTION_VLLM,
    vllm=replace(PRODUCTION_VLLM.vllm, image=f"registry.internal:5000/{VLLM_IMAGE}"),  # type: ignore[type-var]
    scheduling=Scheduling(
        node_selector={"node-role.kubernetes.io/gpu": ""},
        tolerations=({"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},),
        runtime_class_name="nvidia",
        priority_class_name="llm-serving",
    ),
    pod=PodOptions(image_pull_secrets=("mirror-pull",), labels={"mesh": "on"}),
    pod_security=PodSecurity(platform_assigns_ids=True),
    pod_monitor_labels={"release": "kube-prometheus-stack"},
)
# Platform-chosen IDs instead of llmstage's 1000.
DEV_OLLAMA_PLATFORM_IDS = replace(DEV_OLLAMA, pod_security=PodSecurity(run_as_user=1001, run_as_group=1002))

# Two LoRA adapters on the production base model, one pinned to a revision, rank up to 64.
PRODUCTION_VLLM_LORA = replace(
    PRODUCTION_VLLM,
    vllm=replace(  # type: ignore[type-var]
        PRODUCTION_VLLM.vllm,
        lora=LoRA(
            adapters=(
                LoRAAdapter("sql", "acme/llama31-8b-sql-lora"),
                LoRAAdapter("support-v2", "acme/llama31-8b-support-lora", revision="v2"),
            ),
            max_loras=2,
            max_rank=64,
        ),
    ),
)

# A cluster with the Prometheus Operator, in the namespace `llmstage run` assumes by default.
WITH_POD_MONITOR = ClusterFacts(pod_monitor_crd=True, monitoring_namespace="monitoring")
WITH_KEDA = ClusterFacts(pod_monitor_crd=True, keda_crd=True, monitoring_namespace="monitoring")

# spec.networkPolicy.allowedClients: the gateway's pods in their namespace, and one app of its own.
PRODUCTION_VLLM_CLIENTS = replace(
    PRODUCTION_VLLM,
    network=NetworkAccess(
        clients=(
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy"}},
            },
            {
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["chat", "rag"]}]
                }
            },
        )
    ),
)

# spec.autoscaling.autoscaler keda: vLLM on the queue from Prometheus, and Ollama in staging
# scaled to zero, woken by requests counted at the ingress.
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
WAKE_QUERY = 'sum(rate(nginx_ingress_controller_requests{exported_service="chat"}[2m]))'
PRODUCTION_VLLM_KEDA = replace(
    PRODUCTION_VLLM,
    autoscaling=replace(  # type: ignore[type-var]
        PRODUCTION_VLLM.autoscaling,
        autoscaler=Autoscaler.KEDA,
        keda=KedaSettings(server_address=PROMETHEUS),
    ),
)
STAGING_OLLAMA_SCALE_TO_ZERO = replace(
    STAGING_OLLAMA,
    autoscaling=replace(  # type: ignore[type-var]
        STAGING_OLLAMA.autoscaling,
        min_replicas=0,
        autoscaler=Autoscaler.KEDA,
        keda=KedaSettings(server_address=PROMETHEUS, wake_query=WAKE_QUERY, cooldown_period=900),
    ),
)

# Storage. What production gets without spec.cache: a ReadWriteOnce claim per
# pod on the default class (a generic ephemeral volume), so a rolling update instead of Recreate.
PRODUCTION_VLLM_PER_POD = replace(PRODUCTION_VLLM, cache=ModelCache(size="50Gi", per_pod=True))
# spec.cache.claimName: the user's claim, pre-filled, shared by up to 2 pods; no claim rendered.
STAGING_OLLAMA_EXISTING_CLAIM = replace(
    STAGING_OLLAMA, cache=ModelCache(size="20Gi", access_mode="ReadWriteMany", claim_name="llama-weights")
)


# spec.model.source: where vLLM's weights come from. The production service with
# its weights from a Hugging Face mirror, a claim (no download), an S3-compatible store with keys
# from a Secret, GCS through Workload Identity, and an OCI image volume with LoRA adapters (which
# still come from the Hub, in the download-lora step).
def _with_model(resolved: Resolved, **changes: object) -> Resolved:
    return replace(resolved, model=replace(resolved.model, **changes))  # type: ignore[arg-type]


PRODUCTION_VLLM_HF_MIRROR = _with_model(
    PRODUCTION_VLLM, revision="main", hugging_face_endpoint="https://hf-mirror.internal"
)
PRODUCTION_VLLM_SOURCE_PVC = _with_model(
    PRODUCTION_VLLM, hugging_face_id="", source=PVCSource(claim_name="models", path="/llama-3.1-8b-instruct")
)
PRODUCTION_VLLM_SOURCE_S3 = replace(
    _with_model(
        PRODUCTION_VLLM,
        hugging_face_id="",
        source=BucketSource(
            kind="s3",
            bucket="models",
            prefix="meta/llama-3.1-8b-instruct",
            endpoint="http://minio.storage.svc:9000",
            region="us-east-1",
            virtual_host=False,
            credentials_secret="models-s3",
        ),
    ),
    # The gated-model token is the Hub's: a bucket needs none.
    hugging_face_token_secret_ref=None,
    vllm=replace(PRODUCTION_VLLM.vllm, env={"HF_HUB_OFFLINE": "0"}),  # type: ignore[type-var]
)
PRODUCTION_VLLM_SOURCE_GCS = replace(
    _with_model(
        PRODUCTION_VLLM,
        hugging_face_id="",
        source=BucketSource(
            kind="gcs",
            bucket="acme_models",
            prefix="llama-3.1-8b-instruct",
            endpoint="https://storage.googleapis.com",
            region="auto",
            virtual_host=False,
            credentials_secret=None,
        ),
    ),
    hugging_face_token_secret_ref=None,
    pod=PodOptions(service_account_name="models-reader"),
)
PRODUCTION_VLLM_SOURCE_OCI_LORA = replace(
    _with_model(
        PRODUCTION_VLLM,
        hugging_face_id="",
        source=OCISource(image="registry.internal/models/llama-3.1-8b-instruct:v1", path="/model"),
    ),
    vllm=PRODUCTION_VLLM_LORA.vllm,
)
# Adapters from every kind of source on the Hub's base model: one from the Hub
# (download-model), one on a claim and one in an image (mounted, lora-source-1 and -3), one in a
# bucket with keys from a Secret (its own step, download-lora-2).
PRODUCTION_VLLM_LORA_SOURCES = replace(
    PRODUCTION_VLLM,
    vllm=replace(  # type: ignore[type-var]
        PRODUCTION_VLLM.vllm,
        lora=LoRA(
            adapters=(
                LoRAAdapter("sql", "acme/llama31-8b-sql-lora"),
                LoRAAdapter("support", "", source=PVCSource(claim_name="adapters", path="/support")),
                LoRAAdapter(
                    "legal",
                    "",
                    source=BucketSource(
                        kind="s3",
                        bucket="adapters",
                        prefix="legal-v3",
                        endpoint="http://minio.storage.svc:9000",
                        region="us-east-1",
                        virtual_host=False,
                        credentials_secret="adapters-s3",
                    ),
                ),
                LoRAAdapter("faq", "", source=OCISource(image="registry.internal/adapters/faq:v1", path="/")),
            ),
            max_loras=4,
        ),
    ),
)

# Llama 3.1 405B on two 8-GPU H100 nodes per replica: a LeaderWorkerSet of groups of 2 pods (a
# leader with the API server, a headless worker), each pod with its own cache claim, autoscaled
# groups, a budget over every pod of the groups.
assert PRODUCTION_VLLM.vllm is not None
PRODUCTION_VLLM_VLLM = PRODUCTION_VLLM.vllm
LLAMA_405B_VLLM = replace(
    LLAMA_70B_VLLM,
    name="llama3.1:405b",
    ollama_tag="llama3.1:405b",
    hugging_face_id="meta-llama/Llama-3.1-405B-Instruct",
    revision=None,
    parameters_billion=405.9,
)
PRODUCTION_VLLM_405B_MULTI_NODE = replace(
    PRODUCTION_VLLM,
    name="llama405",
    namespace="ml-prod",
    uid="7a1d3c5e-2b4f-4d6a-8c9e-0f1a2b3c4d5e",
    generation=2,
    served_model_name="llama3.1:405b",
    model=LLAMA_405B_VLLM,
    resources=Resources(cpu="18", memory="80Gi", gpu=GPU(count=8, product="NVIDIA-H100-80GB-HBM3", nodes=2)),
    autoscaling=Autoscaling(min_replicas=1, max_replicas=3, metric=ScaleMetric.QUEUE, target=3),
    cache=ModelCache(size="920Gi", per_pod=True),
    scheduling=Scheduling(),
    vllm=replace(
        PRODUCTION_VLLM_VLLM,
        tensor_parallel_size=8,
        pipeline_parallel_size=2,
        dtype="auto",
        env={"VLLM_HOST_IP": "10.0.0.1", "VLLM_LOGGING_LEVEL": "DEBUG"},  # the pod IP wins over the first
    ),
)

# spec.routing: an InferencePool of the serving pods behind a Gateway in another namespace, with
# an endpoint picker the platform runs; the Service stays.
PRODUCTION_VLLM_ROUTING = replace(
    PRODUCTION_VLLM,
    routing=Routing(
        gateway_name="inference-gateway",
        gateway_namespace="gateways",
        section_name="https",
        endpoint_picker="chat-epp",
        endpoint_picker_port=9002,
        failure_mode="FailOpen",
        hostnames=("chat.example.com",),
    ),
)
WITH_ADD_ONS = ClusterFacts(pod_monitor_crd=True, lws_crd=True, inference_pool_crd=True, http_route_crd=True)


# name -> (resolved, facts): one golden file per entry, tests/unit/golden/<name>.yaml
# vLLM without GPUs: the CPU image, float32, the KV cache and threads from the fit and the CPU
# request, eager mode; staging with a fixed replica on its own claim.
STAGING_VLLM_CPU = replace(
    DEV_VLLM_GPU,
    name="smol",
    namespace="team-b",
    stage=Stage.STAGING,
    runtime_reason="runtime vllm set in spec.runtime: vLLM",
    served_model_name="smollm2:135m",
    expected_concurrency=4,
    resources=Resources(cpu="4", memory="7Gi"),
    cache=ModelCache(size="10Gi"),
    vllm=VLLMSettings(
        image="vllm/vllm-openai-cpu:v0.32.0-x86_64",
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        max_num_seqs=None,
        tensor_parallel_size=1,
        dtype="float32",
        quantization=None,
        enforce_eager=True,
        cpu=VLLMOnCPU(kv_cache_gib=2, omp_threads=3),
    ),
)

# vLLM in production on CPU nodes with bf16: pods only on nodes whose CPU has AVX-512 BF16 or AMX
# (node-feature-discovery labels), ORed and ANDed into the user's own node affinity term.
PRODUCTION_VLLM_CPU_BF16 = replace(
    PRODUCTION_VLLM,
    name="chat-cpu",
    resources=Resources(cpu="32", memory="64Gi"),
    scheduling=Scheduling(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["cpu-large"]}]}
                    ]
                }
            }
        },
    ),
    vllm=replace(
        PRODUCTION_VLLM.vllm,
        image="vllm/vllm-openai-cpu:v0.32.0-x86_64",
        cpu=VLLMOnCPU(
            kv_cache_gib=16,
            omp_threads=31,
            cpu_features=(
                "feature.node.kubernetes.io/cpu-cpuid.AVX512BF16",
                "feature.node.kubernetes.io/cpu-cpuid.AMXBF16",
            ),
        ),
    ),
)

CASES: dict[str, tuple[Resolved, ClusterFacts]] = {
    "dev-ollama": (DEV_OLLAMA, ClusterFacts()),
    "dev-ollama-gpu": (DEV_OLLAMA_GPU, ClusterFacts()),
    "dev-ollama-registry": (DEV_OLLAMA_REGISTRY, ClusterFacts()),
    "staging-ollama": (STAGING_OLLAMA, ClusterFacts()),
    "production-ollama": (PRODUCTION_OLLAMA, WITH_POD_MONITOR),
    "dev-vllm-gpu": (DEV_VLLM_GPU, ClusterFacts()),
    "production-vllm": (PRODUCTION_VLLM, WITH_POD_MONITOR),
    "production-vllm-70b-tp": (PRODUCTION_VLLM_70B_TP, ClusterFacts()),
    "production-vllm-platform": (PRODUCTION_VLLM_PLATFORM, WITH_POD_MONITOR),
    "production-vllm-openshift": (PRODUCTION_VLLM_OPENSHIFT, WITH_POD_MONITOR),
    "dev-ollama-platform-ids": (DEV_OLLAMA_PLATFORM_IDS, ClusterFacts()),
    "dev-ollama-platform": (DEV_OLLAMA_PLATFORM, ClusterFacts()),
    "production-vllm-lora": (PRODUCTION_VLLM_LORA, WITH_POD_MONITOR),
    "production-vllm-keda": (PRODUCTION_VLLM_KEDA, WITH_KEDA),
    "staging-ollama-scale-to-zero": (STAGING_OLLAMA_SCALE_TO_ZERO, WITH_KEDA),
    "production-vllm-per-pod": (PRODUCTION_VLLM_PER_POD, WITH_POD_MONITOR),
    "staging-ollama-existing-claim": (STAGING_OLLAMA_EXISTING_CLAIM, ClusterFacts()),
    "production-vllm-hf-mirror": (PRODUCTION_VLLM_HF_MIRROR, ClusterFacts()),
    "production-vllm-source-pvc": (PRODUCTION_VLLM_SOURCE_PVC, ClusterFacts()),
    "production-vllm-source-s3": (PRODUCTION_VLLM_SOURCE_S3, ClusterFacts()),
    "production-vllm-source-gcs": (PRODUCTION_VLLM_SOURCE_GCS, ClusterFacts()),
    "production-vllm-source-oci-lora": (PRODUCTION_VLLM_SOURCE_OCI_LORA, ClusterFacts()),
    "production-vllm-lora-sources": (PRODUCTION_VLLM_LORA_SOURCES, ClusterFacts()),
    "staging-vllm-cpu": (STAGING_VLLM_CPU, ClusterFacts()),
    "production-vllm-cpu-bf16": (PRODUCTION_VLLM_CPU_BF16, WITH_POD_MONITOR),
    "production-vllm-405b-multi-node": (PRODUCTION_VLLM_405B_MULTI_NODE, WITH_ADD_ONS),
    "production-vllm-routing": (PRODUCTION_VLLM_ROUTING, WITH_ADD_ONS),
    "production-vllm-clients": (PRODUCTION_VLLM_CLIENTS, WITH_POD_MONITOR),
}


def pod_specs(resolved: Resolved) -> list[dict[str, Any]]:
    """Every pod the workload runs: the Deployment's, or a LeaderWorkerSet's leader and worker."""
    workload = render_deployment(resolved)
    if workload["kind"] == "Deployment":
        return [workload["spec"]["template"]["spec"]]
    group = workload["spec"]["leaderWorkerTemplate"]
    return [group["leaderTemplate"]["spec"], group["workerTemplate"]["spec"]]
