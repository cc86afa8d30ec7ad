"""Property tests: any spec the API accepts resolves, or fails with a SpecError naming a spec field."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmstage.api.models import LLMService, Runtime
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.catalog import builtin_catalog
from pydantic import ValidationError

MODELS = [e.name for e in builtin_catalog().entries] + [
    "llama3.1:8b-instruct-q8_0",
    "custom:1b",
    "org/custom",
]
PRODUCTS = ["NVIDIA-L4", "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB", "NVIDIA-L40S", "NVIDIA-B200"]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


ACCESS_MODES = ["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:  # noqa: C901 - a strategy: one branch per optional part of the spec
    spec: dict[str, Any] = {"model": {"name": draw(st.sampled_from(MODELS))}}
    fields: dict[str, Any] = {
        "stage": optional(st.sampled_from(["dev", "staging", "production"])),
        "runtime": optional(st.sampled_from(["auto", "ollama", "vllm"])),
        "optimizeFor": optional(st.sampled_from(["setupTime", "gpuCost"])),
        "expectedConcurrency": optional(st.integers(1, 500)),
    }
    for key, strategy in fields.items():
        value = draw(strategy)
        if value is not None:
            spec[key] = value
    if draw(st.booleans()):
        spec["replicas"] = draw(st.integers(0, 10))
    elif draw(st.booleans()):
        lo = draw(st.integers(1, 5))
        spec["autoscaling"] = {
            "minReplicas": lo,
            "maxReplicas": draw(st.integers(lo, 10)),
            "metric": draw(st.sampled_from(["auto", "cpu", "queue"])),
        }
    if draw(st.booleans()):
        gpu: dict[str, Any] = {"count": draw(st.integers(0, 8))}
        if gpu["count"] and draw(st.booleans()):
            gpu["product"] = draw(st.sampled_from(PRODUCTS))
        spec["resources"] = {"gpu": gpu}
        if draw(st.booleans()):
            spec["resources"]["memory"] = draw(st.sampled_from(["4Gi", "16Gi", "64Gi"]))
    vllm: dict[str, Any] = {}
    if draw(st.booleans()):
        vllm["apiKeySecretRef"] = {"name": "key"}
    if draw(st.booleans()):
        vllm["maxModelLen"] = draw(st.sampled_from([2048, 4096, 8192, 32768]))
    if draw(st.booleans()):
        vllm["gpuMemoryUtilization"] = draw(st.floats(0.5, 1.0))
    if vllm:
        spec["vllm"] = vllm
    if draw(st.booleans()):
        spec["ollama"] = {"numParallel": draw(st.integers(1, 64))}
    if draw(st.booleans()):
        # Invalid combinations (claimName with accessMode, ...) are refused by validation: fine.
        cache = {
            "mode": draw(optional(st.sampled_from(["PerPod", "Shared"]))),
            "accessMode": draw(optional(st.sampled_from(ACCESS_MODES))),
            "claimName": draw(optional(st.just("weights"))),
            "storageClassName": draw(optional(st.just("fast"))),
        }
        spec["cache"] = {k: v for k, v in cache.items() if v is not None}
    return spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_any_accepted_spec_resolves_or_names_a_field(spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "p"},
        "spec": spec,
    }
    try:
        service = LLMService.model_validate(body)
    except ValidationError:
        return  # the API server would reject it too (same rules)
    try:
        r = resolve(service)
    except SpecError as err:
        assert err.field.startswith("spec.") and ": " in str(err)
        return
    assert (r.replicas is None) != (r.autoscaling is None)
    assert (r.ollama is None) != (r.vllm is None)
    assert r.served_model_name == spec.get("servedModelName", spec["model"]["name"])
    if r.runtime == Runtime.VLLM:
        assert r.vllm is not None
        if r.resources.gpu is not None:
            assert r.resources.gpu.count >= 1 and r.vllm.cpu is None
            assert 1 <= r.vllm.tensor_parallel_size <= r.resources.gpu.count
        else:  # vLLM's CPU backend: its KV cache and threads are always set, never a GPU flag
            assert r.vllm.cpu is not None and r.vllm.tensor_parallel_size == 1
            assert r.vllm.cpu.kv_cache_gib >= 1 and r.vllm.cpu.omp_threads >= 1
            assert r.vllm.dtype in ("float32", "bfloat16", "float16", "half", "float")
        assert r.model.hugging_face_id
        if r.stage == "production":
            assert r.vllm.api_key_secret_ref is not None
    else:
        assert r.ollama is not None and 1 <= r.ollama.num_parallel <= 64
    if r.autoscaling:
        assert 1 <= r.autoscaling.min_replicas <= r.autoscaling.max_replicas
        assert not (r.runtime == Runtime.OLLAMA and r.autoscaling.metric == "queue")
    max_pods = r.replicas if r.replicas is not None else r.autoscaling.max_replicas
    cache = spec.get("cache") or {}
    if cache.get("mode"):
        assert r.cache.per_pod == (cache["mode"] == "PerPod")
    elif "claimName" not in cache and cache.get("accessMode") != "ReadWriteMany":
        # Several pods: a claim each, which binds on any StorageClass (ReadWriteOnce).
        assert r.cache.per_pod == (max_pods > 1)
    if "accessMode" not in cache:
        shared_by_several = not r.cache.per_pod and max_pods > 1
        assert r.cache.access_mode == ("ReadWriteMany" if shared_by_several else "ReadWriteOnce")
    # The Multi-Attach warning is for a claim that several pods share, never for a claim per pod.
    if r.cache.per_pod:
        assert "SharedReadWriteOnceCache" not in {w.reason for w in r.warnings}
    assert r.memory_fit.fits in (True, False, None) and r.memory_fit.message
    assert r.runtime_reason.endswith(("Ollama", "vLLM", ")"))
