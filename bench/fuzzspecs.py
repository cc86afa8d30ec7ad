"""Hypothesis strategies for LLMService specs, derived from the pydantic models' CRD schema.

`specs()` walks the openAPIV3Schema that `llmstage.api.crd.crd()` generates from the models:
every field, enum, bound, pattern and list size comes from there, so a new field is fuzzed
without touching this file. A few fields get realistic pools (model names from the catalog,
GPU products of the test bed) so that accepted specs exercise the operator rather than only the
unknown-model path. `with_mistakes()` then breaks one field in some specs (wrong type, out of
range, unknown field or enum value) to exercise admission.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st
from llmstage.api.crd import crd
from llmstage.resolve.catalog import builtin_catalog

PRODUCTS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4", "NVIDIA-A100-SXM4-40GB", "NVIDIA-B200"]
QUANTITY_POOL = [
    "500m",
    "1",
    "2",
    "4",
    "16",
    "1Gi",
    "4Gi",
    "16Gi",
    "24Gi",
    "80Gi",
    "64Gi",
    "2Ti",
    "0.5",
    "1e3",
]
POOLS: dict[str, list[Any]] = {
    "spec.model.name": [e.name for e in builtin_catalog().entries] + ["custom:1b", "org/custom-model"],
    "spec.model.huggingFaceId": [
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "org/unknown",
    ],
    "spec.resources.gpu.product": PRODUCTS,
    "spec.resources.gpu.resourceName": ["nvidia.com/gpu", "nvidia.com/mig-3g.40gb"],
    "spec.vllm.apiKeySecretRef.name": ["llm-api-key", "missing-secret"],
    "spec.huggingFaceTokenSecretRef.name": ["hf-token"],
    # The test bed's classes (hack/cluster/storage.yaml): kwok-rwo refuses ReadWriteMany.
    "spec.cache.storageClassName": ["kwok-rwo", "kwok-volume", "does-not-exist"],
    "spec.cache.claimName": ["missing-claim"],
    # Bounded: the API allows 1000 replicas, which on kwok means 1000 pods per fuzzed spec.
    "spec.replicas": [0, 1, 2, 3],
    "spec.autoscaling.minReplicas": [1, 2, 3],
    "spec.autoscaling.maxReplicas": [1, 2, 3, 5],
    "spec.scheduling.affinity": [
        {},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                            ]
                        }
                    ]
                }
            }
        },
        {"nodeAffinity": "not-an-object"},
    ],
}
MAX_INT = 10**6
MAX_TEXT = 24


def spec_schema() -> dict[str, Any]:
    version = crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", MAX_TEXT), MAX_TEXT)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
    return st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=lo, max_size=max(lo, hi))


def from_schema(schema: dict[str, Any], path: str = "spec") -> st.SearchStrategy[Any]:
    if path in POOLS:
        return st.sampled_from(POOLS[path])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(0, 64), st.sampled_from(QUANTITY_POOL))
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = schema["properties"]
        required = {k: from_schema(props[k], f"{path}.{k}") for k in schema.get("required", [])}
        optional = {k: from_schema(v, f"{path}.{k}") for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        keys = _string({"pattern": r"^[a-z][a-z0-9.-]{0,10}[a-z0-9]$"})
        values = from_schema(schema["additionalProperties"], f"{path}{{}}")
        return st.dictionaries(keys, values, max_size=min(schema.get("maxProperties", 3), 3))
    if kind == "object":  # free-form (x-kubernetes-preserve-unknown-fields)
        return st.just({})
    if kind == "array":
        return st.lists(from_schema(schema["items"], f"{path}[]"), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", 0), min(schema.get("maximum", MAX_INT), MAX_INT))
    if kind == "number":
        lo, hi = schema.get("minimum", 0.0), schema.get("maximum", 1000.0)
        return st.floats(lo, hi, allow_nan=False, exclude_min=bool(schema.get("exclusiveMinimum")))
    if kind == "boolean":
        return st.booleans()
    return st.none()


def specs() -> st.SearchStrategy[dict[str, Any]]:
    strategy: st.SearchStrategy[dict[str, Any]] = from_schema(spec_schema())
    return strategy


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path] if path else []


MISTAKES: list[Any] = ["not-a-number", -1, 10**9, 3.5, True, {"x": 1}, ["a"], "", "x" * 300, "quantum"]


@st.composite
def with_mistakes(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A spec from `base`; about a third of them with one field broken or one unknown field added."""
    spec = copy.deepcopy(draw(base if base is not None else specs()))
    if draw(st.integers(0, 2)) != 0:
        return spec
    leaves = _leaves(spec)
    if not leaves or draw(st.booleans()):
        parent = spec
        if bool(leaves) and draw(st.booleans()):
            # An unknown field next to a known one deeper down.
            for key in draw(st.sampled_from(leaves))[:-1]:
                parent = parent[key]
        if isinstance(parent, dict):
            parent[draw(st.sampled_from(["bogusField", "replica", "gpus"]))] = draw(st.sampled_from(MISTAKES))
        return spec
    path = draw(st.sampled_from(leaves))
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(st.sampled_from(MISTAKES))
    return spec
