"""resolve(): stage defaults, explicit values winning, sizing, the article's common mistakes, SpecErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.api.models import LLMService, Runtime, Stage
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.catalog import CatalogEntry, builtin_catalog
from llmstage.resolve.ollama import DEFAULT_OLLAMA_IMAGE
from llmstage.resolve.resolved import ConfigMapKeyRef, PodOptions, Resolved, ScaleMetric, SecretKeyRef
from llmstage.resolve.vllm import DEFAULT_VLLM_IMAGE

from testkit.api_cases import API_KEY, GPU_H100, VALID, service

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
PROD: dict[str, Any] = {"stage": "production", "resources": GPU_H100, "vllm": API_KEY}


def run(**spec: Any) -> Resolved:
    body = service("chat", **spec)
    body["metadata"].update(namespace="team", uid="u-1", generation=4)
    return resolve(LLMService.model_validate(body))


def reasons(r: Resolved) -> set[str]:
    return {w.reason for w in r.warnings}


# ---------------------------------------------------------------- stage defaults


def test_dev_defaults() -> None:
    r = run()
    assert (r.name, r.namespace, r.uid, r.generation) == ("chat", "team", "u-1", 4)
    assert r.stage == Stage.DEV and r.runtime == Runtime.OLLAMA
    assert r.replicas == 1 and r.autoscaling is None
    assert r.resources.cpu == "2" and r.resources.memory == "9Gi" and r.resources.gpu is None
    assert r.ollama is not None and r.vllm is None
    assert r.ollama.image == DEFAULT_OLLAMA_IMAGE
    assert (r.ollama.num_parallel, r.ollama.keep_alive, r.ollama.context_length) == (1, "-1", 8192)
    assert r.cache.access_mode == "ReadWriteOnce" and r.cache.size == "20Gi"
    assert not r.pod_disruption_budget and not r.topology_spread
    assert (
        r.model.ollama_tag == "llama3.1:8b" and r.model.format == "gguf" and r.model.quantization == "q4_K_M"
    )
    assert r.memory_fit.fits is True
    assert r.warnings == ()


def test_staging_defaults() -> None:
    r = run(stage="staging", expectedConcurrency=4)
    assert r.runtime == Runtime.OLLAMA and r.replicas is None
    assert r.autoscaling is not None
    assert (r.autoscaling.min_replicas, r.autoscaling.max_replicas) == (1, 2)
    assert (r.autoscaling.metric, r.autoscaling.target) == (ScaleMetric.CPU, 70)
    assert r.ollama is not None and r.ollama.num_parallel == 4  # 4 users over 1 baseline replica
    # Up to 2 pods: a ReadWriteOnce claim each, which any StorageClass provides.
    assert r.cache.per_pod and r.cache.access_mode == "ReadWriteOnce"
    assert r.resources.cpu == "4"


def test_production_defaults() -> None:
    r = run(**PROD, expectedConcurrency=50)
    assert r.runtime == Runtime.VLLM
    assert r.runtime_reason == "stage production and 50 expected users > 4: vLLM"
    assert r.autoscaling is not None and r.replicas is None
    assert (r.autoscaling.min_replicas, r.autoscaling.max_replicas) == (2, 8)
    assert r.autoscaling.metric == ScaleMetric.QUEUE and r.autoscaling.target == 3
    assert r.autoscaling.queue_metric_name == "vllm:num_requests_waiting"
    assert r.pod_disruption_budget and r.topology_spread
    assert r.vllm is not None and r.ollama is None
    assert r.vllm.image == DEFAULT_VLLM_IMAGE
    assert r.vllm.max_num_seqs is None  # vLLM's own batch; the fit sizes 25 users per replica
    assert (r.vllm.max_model_len, r.vllm.tensor_parallel_size, r.vllm.gpu_memory_utilization) == (
        8192,
        1,
        0.9,
    )
    assert r.vllm.api_key_secret_ref == SecretKeyRef("api-key", "api-key")
    assert r.resources.gpu is not None and r.resources.gpu.product == "NVIDIA-H100-80GB-HBM3"
    assert (r.resources.cpu, r.resources.memory) == ("4", "24Gi")
    assert r.model.hugging_face_id == "meta-llama/Llama-3.1-8B-Instruct" and r.model.format == "safetensors"
    assert r.model.quantization is None
    assert r.memory_fit.fits is True, r.memory_fit.message
    assert reasons(r) == {"GatedModelWithoutToken"}


def test_production_gets_one_gpu_by_default() -> None:
    r = run(stage="production", vllm=API_KEY)
    assert r.runtime == Runtime.VLLM
    assert r.resources.gpu is not None and r.resources.gpu.count == 1 and r.resources.gpu.product is None
    assert r.memory_fit.fits is None and r.memory_fit.reason == "UnknownGPUProduct"
    assert "spec.resources.gpu.product" in r.memory_fit.message


def test_served_model_name_is_identical_in_every_stage() -> None:
    names = {run().served_model_name, run(stage="staging").served_model_name, run(**PROD).served_model_name}
    assert names == {"llama3.1:8b"}
    assert run(servedModelName="chat-model", **PROD).served_model_name == "chat-model"


def test_context_is_identical_on_both_runtimes() -> None:
    dev, prod = run(), run(**PROD)
    assert dev.ollama is not None and prod.vllm is not None
    assert dev.ollama.context_length == prod.vllm.max_model_len == 8192
    small = run(model={"name": "phi3:mini"})
    assert small.ollama is not None and small.ollama.context_length == 4096  # the model's own context


# ---------------------------------------------------------------- explicit values win


def test_explicit_replicas_win_over_the_stage_autoscaler() -> None:
    r = run(**PROD, replicas=3)
    assert r.replicas == 3 and r.autoscaling is None
    assert r.cache.per_pod and r.cache.access_mode == "ReadWriteOnce"


def test_explicit_autoscaling_bounds_and_metric() -> None:
    r = run(**PROD, autoscaling={"maxReplicas": 1, "target": 10, "queueMetricName": "vllm_waiting"})
    assert r.autoscaling is not None
    assert (r.autoscaling.min_replicas, r.autoscaling.max_replicas) == (1, 1)  # min clamps to the max given
    assert r.autoscaling.target == 10 and r.autoscaling.queue_metric_name == "vllm_waiting"
    assert r.cache.access_mode == "ReadWriteOnce"
    cpu = run(**PROD, autoscaling={"metric": "cpu", "minReplicas": 3})
    assert cpu.autoscaling is not None and cpu.autoscaling.metric == ScaleMetric.CPU
    assert (cpu.autoscaling.min_replicas, cpu.autoscaling.max_replicas) == (3, 8)
    dev = run(autoscaling={})
    assert dev.autoscaling is not None and (dev.autoscaling.min_replicas, dev.autoscaling.max_replicas) == (
        1,
        2,
    )


def test_explicit_resources_and_settings_win() -> None:
    r = run(
        stage="production",
        resources={"cpu": 16, "memory": "100Gi", "gpu": {"count": 2, "product": "NVIDIA-L4"}},
        vllm={
            **API_KEY,
            "maxNumSeqs": 2,
            "maxModelLen": 4096,
            "tensorParallelSize": 2,
            "gpuMemoryUtilization": 0.85,
            "dtype": "float16",
            "extraArgs": ["--enable-prefix-caching"],
            "image": "registry.local/vllm:1",
        },
        cache={"size": "99Gi", "storageClassName": "fast", "accessMode": "ReadWriteOncePod"},
    )
    assert (r.resources.cpu, r.resources.memory) == ("16", "100Gi")
    assert r.vllm is not None
    assert (r.vllm.max_num_seqs, r.vllm.max_model_len, r.vllm.tensor_parallel_size) == (2, 4096, 2)
    assert (r.vllm.gpu_memory_utilization, r.vllm.dtype, r.vllm.image) == (
        0.85,
        "float16",
        "registry.local/vllm:1",
    )
    assert r.vllm.extra_args == ("--enable-prefix-caching",)
    assert (r.cache.size, r.cache.storage_class_name, r.cache.access_mode) == (
        "99Gi",
        "fast",
        "ReadWriteOncePod",
    )


def test_explicit_ollama_settings_win() -> None:
    r = run(
        ollama={
            "numParallel": 3,
            "keepAlive": "30m",
            "contextLength": 2048,
            "image": "ollama/ollama:x",
            "env": {"OLLAMA_FLASH_ATTENTION": "1"},
        }
    )
    assert r.ollama is not None
    assert (r.ollama.num_parallel, r.ollama.keep_alive, r.ollama.context_length) == (3, "30m", 2048)
    assert r.ollama.image == "ollama/ollama:x" and r.ollama.env == {"OLLAMA_FLASH_ATTENTION": "1"}


def test_explicit_runtime_wins_over_the_decision() -> None:
    r = run(runtime="vllm", resources={"gpu": {"count": 1, "product": "NVIDIA-L4"}})
    assert r.runtime == Runtime.VLLM and r.runtime_reason.startswith("runtime vllm set in spec.runtime")


def test_scheduling_and_secrets_pass_through() -> None:
    r = resolve(LLMService.model_validate(VALID["tolerations"]))
    assert r.scheduling.node_selector == {"pool": "gpu"}
    assert r.scheduling.tolerations[0] == {
        "key": "nvidia.com/gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert r.scheduling.tolerations[1]["tolerationSeconds"] == 60
    assert r.scheduling.affinity == {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    hf = run(huggingFaceTokenSecretRef={"name": "hf"}, **PROD)
    assert hf.hugging_face_token_secret_ref == SecretKeyRef("hf", "token")
    assert "GatedModelWithoutToken" not in reasons(hf)


# ---------------------------------------------------------------- sizing and fit


def test_tensor_parallel_defaults_to_the_gpu_count() -> None:
    r = run(
        stage="production",
        model={"name": "llama3.1:70b"},
        vllm=API_KEY,
        resources={"gpu": {"count": 4, "product": "NVIDIA-H100-80GB-HBM3"}},
    )
    assert r.vllm is not None and r.vllm.tensor_parallel_size == 4
    assert (r.resources.cpu, r.resources.memory) == ("10", "48Gi")
    assert r.cache.size == "170Gi"  # 131.5 GiB x 1.2 + 5, rounded up to 10 GiB


def test_70b_on_four_l4_reports_does_not_fit_with_numbers() -> None:
    r = run(
        stage="production",
        model={"name": "llama3.1:70b"},
        vllm=API_KEY,
        resources={"gpu": {"count": 4, "product": "NVIDIA-L4"}},
    )
    assert r.memory_fit.fits is False and r.memory_fit.reason == "DoesNotFit"
    assert "131.5 GiB weights" in r.memory_fit.message and "81.0 GiB available" in r.memory_fit.message


def test_gpu_memory_override_for_unknown_products() -> None:
    unknown = run(**{**PROD, "resources": {"gpu": {"product": "NVIDIA-B200"}}})
    assert unknown.memory_fit.fits is None and "NVIDIA-B200" in unknown.memory_fit.message
    known = run(**{**PROD, "resources": {"gpu": {"product": "NVIDIA-B200", "memory": "180Gi"}}})
    assert known.memory_fit.fits is True and "NVIDIA-B200 180.0 GiB" in known.memory_fit.message


def test_ollama_memory_is_sized_from_the_model_and_explicit_memory_is_checked() -> None:
    big = run(stage="staging", model={"name": "qwen2.5:14b"}, expectedConcurrency=4)
    assert big.memory_fit.fits is True
    tight = run(resources={"memory": "4Gi"})
    assert tight.memory_fit.fits is False and "OOM-killed" in tight.memory_fit.message


def test_unknown_models() -> None:
    ollama = run(model={"name": "my-model:7b"})
    assert ollama.model.ollama_tag == "my-model:7b" and ollama.model.hugging_face_id == ""
    assert ollama.memory_fit.fits is None and ollama.memory_fit.reason == "UnknownModelShape"
    custom = resolve(LLMService.model_validate(VALID["custom-model"]))
    assert custom.memory_fit.fits is True and custom.model.parameters_billion == 3.5
    hf = run(**PROD, model={"name": "my-org/my-model"})
    assert hf.model.hugging_face_id == "my-org/my-model"


def test_user_catalog_entries_are_used() -> None:
    entry = CatalogEntry.model_validate(
        {
            "name": "acme:3b",
            "huggingFaceId": "acme/acme-3b",
            "parametersBillion": 3,
            "layers": 28,
            "attentionHeads": 24,
            "kvHeads": 8,
            "headDim": 128,
            "contextLength": 16384,
        }
    )
    catalog = builtin_catalog().merged([entry])
    r = resolve(LLMService.model_validate(service(model={"name": "acme:3b"}, **PROD)), catalog)
    assert r.model.hugging_face_id == "acme/acme-3b" and r.model.context_length == 16384


def test_architecture_overrides_the_catalog() -> None:
    r = run(model={"name": "llama3.1:8b", "architecture": {"contextLength": 4096}})
    assert r.model.context_length == 4096 and r.ollama is not None and r.ollama.context_length == 4096


# ---------------------------------------------------------------- the article's common mistakes


def test_ollama_in_production_is_warned() -> None:
    r = run(stage="production", runtime="ollama", expectedConcurrency=20)
    assert r.runtime == Runtime.OLLAMA
    assert {"OllamaInProduction", "TooManyUsersForOllama"} <= reasons(r)
    cpu_only = run(stage="production", resources={"gpu": {"count": 0}})
    assert "OllamaInProduction" in reasons(cpu_only) and "there is no GPU" in cpu_only.warnings[0].message


def test_ollama_above_four_users_is_warned() -> None:
    r = run(stage="staging", expectedConcurrency=10)
    assert r.runtime == Runtime.OLLAMA and "TooManyUsersForOllama" in reasons(r)
    assert "10 expected users > 4" in next(
        w.message for w in r.warnings if w.reason == "TooManyUsersForOllama"
    )


def test_gguf_weights_on_vllm_are_refused_and_a_gguf_level_is_warned() -> None:
    """vLLM 0.32.0 has no GGUF loader and no gguf quantization (the wheel's model_loader and
    QUANTIZATION_METHODS): a gguf format would crash at load, so it is InvalidSpec; an Ollama
    quantization level on vLLM is ignored and warned about."""
    with pytest.raises(SpecError) as err:
        run(**{**PROD, "model": {"name": "llama3.1:8b", "format": "gguf"}})
    assert err.value.field == "spec.model.format" and "no GGUF loader" in err.value.message
    assert "spec.runtime ollama" in err.value.message
    # The same spec in dev, where auto picks Ollama, serves the GGUF.
    assert run(model={"name": "llama3.1:8b", "format": "gguf"}).runtime == Runtime.OLLAMA
    quant = run(**{**PROD, "model": {"name": "llama3.1:8b", "quantization": "q4_K_M"}})
    assert "GGUFOnVLLM" in reasons(quant)
    assert quant.vllm is not None and quant.vllm.quantization is None  # not passed to vLLM


def test_full_precision_on_ollama_is_warned() -> None:
    assert "FullPrecisionOnOllama" in reasons(run(model={"name": "llama3.1:8b-instruct-fp16"}))
    assert "FullPrecisionOnOllama" in reasons(run(model={"name": "llama3.1:8b", "format": "safetensors"}))
    fp16 = run(model={"name": "llama3.1:8b-instruct-fp16"})
    assert fp16.model.quantization == "fp16" and fp16.resources.memory == "22Gi"  # (15 + 1 + 1) GiB x 1.25


def test_quantization_outside_the_ollama_tag_is_warned() -> None:
    r = run(model={"name": "llama3.1:8b", "quantization": "q8_0"})
    assert "QuantizationNotInTag" in reasons(r)
    assert "llama3.1:8b-instruct-q8_0" in r.warnings[0].message
    assert not run(model={"name": "llama3.1:8b-instruct-q8_0", "quantization": "q8_0"}).warnings


def test_vllm_for_single_user_is_warned() -> None:
    r = run(runtime="vllm", resources={"gpu": {"count": 1, "product": "NVIDIA-L4"}})
    assert "VLLMForSingleUser" in reasons(r)
    assert "VLLMForSingleUser" not in reasons(run(**PROD))


def test_idle_gpus_and_shared_rwo_cache_are_warned() -> None:
    r = run(
        **{
            **PROD,
            "resources": {"gpu": {"count": 2, "product": "NVIDIA-L4"}},
            "vllm": {**API_KEY, "tensorParallelSize": 1},
            "cache": {"mode": "Shared", "accessMode": "ReadWriteOnce"},
        }
    )
    assert {"GPUsIdle", "SharedReadWriteOnceCache"} <= reasons(r)


def test_vllm_quantization_from_the_model_spec() -> None:
    r = run(**{**PROD, "model": {"name": "llama3.1:70b", "quantization": "fp8"}})
    # vLLM 0.32 calls online fp8 fp8_per_tensor ("--quantization fp8 is deprecated for online
    # quantization"): the new spelling is rendered, the model keeps the user's.
    assert r.vllm is not None and r.vllm.quantization == "fp8_per_tensor" and r.model.quantization == "fp8"
    assert r.memory_fit.fits is True  # 65.8 GiB of fp8 weights on one H100


@pytest.mark.parametrize(
    "method", ["fp8_per_tensor", "fp8_per_block", "int8_per_channel_weight_only", "experts_int8"]
)
def test_online_quantization_is_passed_to_vllm(method: str) -> None:
    """vLLM 0.32.0 quantizes the unquantized Hugging Face weights itself for these."""
    r = run(**{**PROD, "vllm": {**API_KEY, "quantization": method}})
    assert r.vllm is not None and r.vllm.quantization == method and r.model.quantization == method


@pytest.mark.parametrize("method", ["bitsandbytes", "rtn"])
def test_online_methods_gone_since_vllm_012_are_rejected(method: str) -> None:
    with pytest.raises(SpecError) as err:
        run(**{**PROD, "vllm": {**API_KEY, "quantization": method}})
    assert err.value.field == "spec.vllm.quantization"
    assert f"{method!r} is not a quantization method of vLLM 0.32.0" in err.value.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"vllm": {**API_KEY, "quantization": "awq"}}, "spec.vllm.quantization"),
        ({"vllm": {**API_KEY, "quantization": "gptq"}}, "spec.vllm.quantization"),
        ({"model": {"name": "llama3.1:8b", "quantization": "awq"}}, "spec.model.quantization"),
    ],
)
def test_prequantized_methods_need_a_prequantized_checkpoint(spec: dict[str, Any], field: str) -> None:
    """awq/gptq against the catalog's unquantized repo fails at load: "Cannot find the config file
    for awq" (vllm/model_executor/model_loader/weight_utils.py get_quant_config)."""
    with pytest.raises(SpecError) as err:
        run(**{**PROD, **spec})
    assert err.value.field == field
    assert "Cannot find the config file for" in err.value.message
    assert "spec.model.huggingFaceId" in err.value.message


def test_a_prequantized_checkpoint_names_its_own_method() -> None:
    r = run(
        **{
            **PROD,
            "model": {
                "name": "llama3.1:8b",
                "huggingFaceId": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
                "quantization": "awq",
            },
        }
    )
    assert r.vllm is not None and r.vllm.quantization is None  # vLLM reads it from the checkpoint
    assert r.model.quantization == "awq" and r.model.hugging_face_id.endswith("-AWQ-INT4")
    assert "4.0 GiB weights" in r.memory_fit.message  # 8.03e9 x 4.25 bits, not bf16


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"vllm": {**API_KEY, "quantization": "int8"}}, "spec.vllm.quantization"),
        ({"vllm": {**API_KEY, "quantization": "w8a8"}}, "spec.vllm.quantization"),
        ({"model": {"name": "llama3.1:8b", "quantization": "int8"}}, "spec.model.quantization"),
    ],
)
def test_methods_vllm_does_not_have_are_rejected(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        run(**{**PROD, **spec})
    assert err.value.field == field
    assert "is not a quantization method of vLLM 0.32.0" in err.value.message


def test_production_keeps_vllms_batch_for_two_users() -> None:
    """`recommend --users 2 --stage production` rendered --max-num-seqs=1 (two users over two
    replicas), which switched off continuous batching."""
    r = run(**PROD, expectedConcurrency=2)
    assert r.vllm is not None and r.vllm.max_num_seqs is None
    assert r.memory_fit.fits is True and "vLLM's default --max-num-seqs (256" in r.memory_fit.message
    capped = run(**{**PROD, "vllm": {**API_KEY, "maxNumSeqs": 4}}, expectedConcurrency=20)
    assert capped.vllm is not None and capped.vllm.max_num_seqs == 4
    assert "(4 x 8192 tokens" in capped.memory_fit.message  # the cap, not the 10 users per replica


def test_fp8_kv_cache_in_extra_args_halves_the_fitted_kv_cache() -> None:
    l4 = {"gpu": {"count": 1, "product": "NVIDIA-L4"}}
    bf16 = run(**{**PROD, "resources": l4}, expectedConcurrency=10)
    fp8 = run(
        **{**PROD, "resources": l4, "vllm": {**API_KEY, "extraArgs": ["--kv-cache-dtype", "fp8_e4m3"]}},
        expectedConcurrency=10,
    )
    assert fp8.vllm is not None and fp8.vllm.kv_cache_dtype == "fp8_e4m3"
    assert "(5 x 8192 tokens x 128 KiB)" in bf16.memory_fit.message
    assert bf16.memory_fit.reason == "KVCacheLimitsConcurrency"
    assert "(5 x 8192 tokens x 64 KiB, --kv-cache-dtype=fp8_e4m3)" in fp8.memory_fit.message
    assert fp8.memory_fit.fits is True


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        # Qwen2.5-7B: 28 attention heads divide by 7, its 4 KV heads do not (and 7 is no multiple).
        (
            {"model": {"name": "qwen2.5:7b"}, "resources": {"gpu": {"count": 7}}},
            "must divide its 4 key/value heads",
        ),
        # An intermediate size tensor parallelism cannot split.
        (
            {
                "model": {"name": "llama3.1:8b", "architecture": {"intermediateSize": 14338}},
                "resources": {"gpu": {"count": 4}},
            },
            "must divide its intermediate size 14338",
        ),
    ],
)
def test_tensor_parallelism_must_split_kv_heads_and_the_mlp(spec: dict[str, Any], text: str) -> None:
    with pytest.raises(SpecError) as err:
        run(**{**PROD, **spec})
    assert err.value.field == "spec.resources.gpu.count" and text in err.value.message


def test_tensor_parallelism_may_replicate_kv_heads() -> None:
    """tp >= KV heads replicates them when tp is a multiple (QKVParallelLinear): 8 GPUs, 4 KV heads."""
    r = run(**{**PROD, "model": {"name": "qwen2.5:7b"}, "resources": {"gpu": {"count": 4}}})
    assert r.vllm is not None and r.vllm.tensor_parallel_size == 4
    with pytest.raises(SpecError) as err:  # 28 heads do not divide by 8
        run(**{**PROD, "model": {"name": "qwen2.5:7b"}, "resources": {"gpu": {"count": 8}}})
    assert "28 attention heads" in err.value.message and "use 1, 2, 4 GPUs" in err.value.message


# ---------------------------------------------------------------- Ollama names, registry, upstream warnings


def test_ollama_serves_the_name_clients_send() -> None:
    r = run(model={"name": "meta-llama/Llama-3.1-8B-Instruct"})
    assert r.runtime == Runtime.OLLAMA and r.model.ollama_tag == "llama3.1:8b"
    assert r.served_model_name == "meta-llama/Llama-3.1-8B-Instruct"  # copied to it after the pull
    chat = run(servedModelName="chat")
    assert chat.served_model_name == "chat" and chat.model.ollama_tag == "llama3.1:8b"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"servedModelName": "chat@v1"}, "spec.servedModelName"),  # '@' is no Ollama name character
        ({"servedModelName": "org.name/model"}, "spec.servedModelName"),  # no '.' in a namespace
        ({"servedModelName": "a/b/c/d"}, "spec.servedModelName"),
        ({"model": {"name": "llama3.1@sha256:abc"}}, "spec.model.name"),
    ],
)
def test_names_ollama_cannot_hold_are_invalid_specs_on_ollama(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        run(**spec)
    assert err.value.field == field and "Ollama" in err.value.message


def test_served_names_ollama_cannot_hold_are_fine_on_vllm() -> None:
    assert run(**PROD, servedModelName="chat@v1").served_model_name == "chat@v1"


def test_registry_pull_reference() -> None:
    reg = run(model={"name": "smollm2:135m"}, ollama={"registry": {"host": "registry.internal:5000"}})
    assert reg.ollama is not None and reg.ollama.registry is not None
    assert reg.ollama.pull_ref == "registry.internal:5000/library/smollm2:135m"
    assert reg.served_model_name == "smollm2:135m"
    ns = run(model={"name": "smollm2"}, ollama={"registry": {"host": "r.local", "namespace": "team-a"}})
    assert ns.ollama is not None and ns.ollama.pull_ref == "r.local/team-a/smollm2:latest"
    own = run(model={"name": "ml/custom:1"}, ollama={"registry": {"host": "r.local", "namespace": "team-a"}})
    assert own.ollama is not None and own.ollama.pull_ref == "r.local/ml/custom:1"
    full = run(
        model={"name": "smollm2:135m"},
        ollama={
            "registry": {
                "host": "r.local:443",
                "caConfigMapRef": {"name": "ca"},
                "keySecretRef": {"name": "key"},
            }
        },
    )
    assert full.ollama is not None and full.ollama.registry is not None
    assert (full.ollama.registry.ca_config_map, full.ollama.registry.key_secret) == (
        ConfigMapKeyRef("ca", "ca.crt"),
        SecretKeyRef("key", "id_ed25519"),
    )
    with pytest.raises(SpecError) as err:
        run(model={"name": "hf.co/org/repo:Q4_K_M"}, ollama={"registry": {"host": "r.local"}})
    assert err.value.field == "spec.ollama.registry.host"


def test_unknown_extra_args_and_env_are_warnings_naming_the_release() -> None:
    r = run(**{**PROD, "vllm": {**API_KEY, "extraArgs": ["--enable-prefix-caching", "--turbo"]}})
    (finding,) = [w for w in r.warnings if w.reason == "UnknownVLLMArgument"]
    assert "vLLM 0.32.0" in finding.message and "--turbo is not a flag" in finding.message
    custom = run(**{**PROD, "vllm": {**API_KEY, "extraArgs": ["--turbo"], "image": "my/vllm:1"}})
    assert "spec.vllm.image my/vllm:1 may differ" in next(
        w.message for w in custom.warnings if w.reason == "UnknownVLLMArgument"
    )
    assert "UnknownVLLMArgument" not in reasons(
        run(**{**PROD, "vllm": {**API_KEY, "extraArgs": ["-tp", "1"]}})
    )
    o = run(ollama={"env": {"OLLAMA_FLASH_ATTENTION": "1", "OLLAMA_TURBO": "1"}})
    (env,) = [w for w in o.warnings if w.reason == "UnknownOllamaVariable"]
    assert "OLLAMA_TURBO" in env.message and "Ollama 0.17.4" in env.message
    assert "OLLAMA_FLASH_ATTENTION" not in env.message
    v = run(
        **{
            **PROD,
            "vllm": {
                **API_KEY,
                "env": {"VLLM_LOGGING_LEVEL": "DEBUG", "VLLM_TURBO": "1", "NCCL_DEBUG": "INFO"},
            },
        }
    )
    (venv,) = [w for w in v.warnings if w.reason == "UnknownVLLMVariable"]
    assert "VLLM_TURBO" in venv.message and "vLLM 0.32.0" in venv.message
    assert "VLLM_LOGGING_LEVEL" not in venv.message and "NCCL_DEBUG" not in venv.message


def test_pod_settings_env_and_ephemeral_storage_reach_resolved() -> None:
    r = run(
        **{
            **PROD,
            "resources": {**PROD["resources"], "ephemeralStorage": "20Gi"},
            "vllm": {
                **API_KEY,
                "env": {"HF_ENDPOINT": "https://m"},
                "envFrom": [{"secretRef": {"name": "s3"}}],
            },
            "pod": {
                "serviceAccountName": "reader",
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [{"name": "ca", "configMap": {"name": "ca"}}],
                "volumeMounts": [{"name": "ca", "mountPath": "/etc/ca", "readOnly": True}],
            },
        }
    )
    assert r.resources.ephemeral_storage == "20Gi"
    assert r.vllm is not None and r.vllm.env == {"HF_ENDPOINT": "https://m"}
    assert r.vllm.env_from == ({"secretRef": {"name": "s3"}},)
    assert r.pod.service_account_name == "reader" and r.pod.image_pull_secrets == ("pull",)
    assert r.pod.automount_service_account_token is False
    assert r.pod.volume_mounts == ({"name": "ca", "mountPath": "/etc/ca", "readOnly": True},)
    assert run().pod == PodOptions()


def test_lora_adapters_default_to_one_batch_slot_each_up_to_four() -> None:
    def adapters(n: int) -> dict[str, Any]:
        return {"adapters": [{"name": f"a{i}", "huggingFaceId": f"acme/a{i}"} for i in range(n)]}

    two = run(**PROD, lora=adapters(2))
    assert two.vllm is not None and two.vllm.lora is not None
    assert two.vllm.lora.max_loras == 2 and two.vllm.lora.max_rank is None
    assert [a.name for a in two.vllm.lora.adapters] == ["a0", "a1"]
    six = run(**PROD, lora=adapters(6))
    assert six.vllm is not None and six.vllm.lora is not None and six.vllm.lora.max_loras == 4
    pinned = run(**PROD, lora={**adapters(3), "maxLoras": 1, "maxRank": 64})
    assert pinned.vllm is not None and pinned.vllm.lora is not None
    assert (pinned.vllm.lora.max_loras, pinned.vllm.lora.max_rank) == (1, 64)


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"gpu": {"count": 1, "memory": "1E400"}}, "spec.resources.gpu.memory"),
        ({"memory": "2Ei"}, "spec.resources.memory"),
        ({"ephemeralStorage": "9E18"}, "spec.resources.ephemeralStorage"),
    ],
)
def test_a_size_no_machine_has_is_an_error_naming_the_field(resources: dict[str, Any], field: str) -> None:
    # 1E400 passes the quantity grammar and would overflow the memory fit.
    with pytest.raises(SpecError) as err:
        run(**{**PROD, "resources": {**GPU_H100, **resources}})
    assert err.value.field == field and "more than 1 EiB" in err.value.message


def test_lora_on_a_stage_where_auto_picks_ollama_is_an_error_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        run(lora={"adapters": [{"name": "sql", "huggingFaceId": "acme/sql-lora"}]})
    assert err.value.field == "spec.lora"
    assert "the runtime is Ollama (stage dev" in str(err.value) and "set runtime vllm" in str(err.value)


# ---------------------------------------------------------------- errors raised as SpecError


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"model": {"name": "my-model:7b"}, **PROD}, "spec.model.huggingFaceId", "not in the catalog"),
        ({"autoscaling": {"metric": "queue"}}, "spec.autoscaling.metric", "use metric cpu or auto"),
        ({**PROD, "resources": {"gpu": {"count": 3}}}, "spec.resources.gpu.count", "use 1, 2, 4, 8 GPUs"),
        ({**PROD, "vllm": {**API_KEY, "maxModelLen": 200000}}, "spec.vllm.maxModelLen", "at most 131072"),
    ],
)
def test_spec_errors_name_the_field_and_the_fix(spec: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(SpecError) as err:
        run(**spec)
    assert err.value.field == field and text in err.value.message
    assert str(err.value).startswith(field + ": ")


def test_production_vllm_without_api_key_is_a_spec_error_even_without_cel() -> None:
    svc = LLMService.model_construct(
        metadata=LLMService.model_validate(service()).metadata,
        spec=LLMService.model_validate(service()).spec.model_copy(update={"stage": Stage.PRODUCTION}),
    )
    with pytest.raises(SpecError) as err:
        resolve(svc)
    assert err.value.field == "spec.vllm.apiKeySecretRef"


# ---------------------------------------------------------------- every example and valid object resolves


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_resolve_and_fit(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    r = resolve(LLMService.from_object(doc))
    assert r.memory_fit.fits is True, r.memory_fit.message
    # Clients send the model's name in every stage (the llama31-8b-* pipeline: llama3.1:8b).
    assert r.served_model_name == doc["spec"]["model"]["name"]
    assert r.served_model_name == "llama3.1:8b" or not path.name.startswith("llama31-8b-")


def test_examples_move_from_ollama_to_vllm_by_stage() -> None:
    by_stage = {p.name: resolve(LLMService.from_object(yaml.safe_load(p.read_text()))) for p in EXAMPLES}
    assert by_stage["llama31-8b-dev.yaml"].runtime == Runtime.OLLAMA
    assert by_stage["llama31-8b-staging.yaml"].runtime == Runtime.OLLAMA
    assert by_stage["llama31-8b-production.yaml"].runtime == Runtime.VLLM
    assert by_stage["llama31-70b-tensor-parallel.yaml"].vllm.tensor_parallel_size == 4


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_objects_resolve(name: str) -> None:
    resolve(LLMService.model_validate(VALID[name]))
