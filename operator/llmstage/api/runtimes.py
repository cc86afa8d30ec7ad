"""spec.ollama and spec.vllm: each runtime's settings, its environment and its registry."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from llmstage import ollama_name
from llmstage.api.base import (
    DNS_SUBDOMAIN,
    DURATION,
    ENV_NAME,
    IMAGE,
    PRINTABLE,
    QUANTIZATION,
    SECRET_KEY,
    APIKeySecretRef,
    ApiModel,
    CelRule,
    SecretKeyRef,
    cel_list,
)
from llmstage.api.constants import (
    MANAGED_ENV_PREFIX,
    MANAGED_OLLAMA_ENV,
    MANAGED_VLLM_ENV,
    MANAGED_VLLM_FLAG_PATTERN,
    MANAGED_VLLM_FLAGS,
    MAX_GPUS,
    VLLMDtype,
)
from pydantic import Field


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

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the ConfigMap."
    )
    key: str = Field(
        default="ca.crt",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key within the ConfigMap holding PEM certificates (default 'ca.crt').",
    )


class OllamaKeySecretRef(SecretKeyRef):
    """Secret key holding an Ollama private key (the id_ed25519 file Ollama signs registry requests with)."""

    key: str = Field(
        default="id_ed25519",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key within the Secret holding the OpenSSH ed25519 private key (default 'id_ed25519').",
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

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Its name.")
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
            "Default: expectedConcurrency per replica (Ollama's own default is 1 today; it used to be 4)."
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
    env: dict[str, EnvValue] = _env_field(
        "Extra environment variables for the model download step and the vLLM server, e.g. "
        "HF_ENDPOINT for a Hugging Face mirror, HTTPS_PROXY or VLLM_LOGGING_LEVEL. Variables llmstage "
        "sets are rejected."
    )
    env_from: list[EnvFromSource] = _env_from_field()
