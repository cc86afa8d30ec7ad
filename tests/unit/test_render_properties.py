"""Property tests: any spec the CRD accepts resolves (or is refused with a SpecError) and renders
into objects that pass the strict Kubernetes schema check.

Specs are generated from the CRD's own OpenAPI schema (llmstage.api.crd.openapi_schema, which the
pydantic models produce), then kept only if the pydantic models accept them; the models enforce
the same CEL rules as the API server. Generation is steered so that most examples get past
resolve() and every stage x runtime shows up (see OVERLAID): model names come mostly from the
catalog, and the free-form affinity (the CRD passes it through unchecked) is drawn from valid
core/v1 Affinities. Statistics: `pytest --hypothesis-show-statistics`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, reject, settings
from hypothesis import strategies as st
from llmstage.api import crd
from llmstage.api.models import LLMService
from llmstage.render import render
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.catalog import builtin_catalog
from llmstage.resolve.resolved import ClusterFacts
from pydantic import ValidationError

KUBERNETES_VERSION = kubernetes_validate.latest_version()
OUTSIDE_KUBERNETES = ("PodMonitor", "ScaledObject", "LeaderWorkerSet", "InferencePool", "HTTPRoute")
MAX_ITEMS = 3  # lists and maps: a few entries find the same bugs as many, faster

VALID_AFFINITIES: list[dict[str, Any] | None] = [
    None,
    {},
    {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": None}},
    {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a", "b"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-0"]}]},
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ],
        }
    },
    {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}
            ]
        }
    },
]


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = node.get("minLength", 0), node.get("maxLength", 64)
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(min_size=low, max_size=min(high, 64))


def _quantity(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """int-or-string quantities as the CRD pattern admits them (exponents, fractions, huge values).

    Integers start at 0: the CRD's pattern only constrains strings, so it would take -5, but the
    models refuse it (reported to the API owner); drawing negatives would only waste examples.
    """
    return st.one_of(st.integers(min_value=0), st.from_regex(node["pattern"], fullmatch=True))


def from_schema(node: dict[str, Any], path: str) -> st.SearchStrategy[Any]:
    """A strategy for values of one structural-schema node (the subset the CRD uses)."""
    if path in OVERRIDES:
        return OVERRIDES[path]
    if node.get("x-kubernetes-int-or-string"):
        return _quantity(node)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        if "properties" in node:
            props = node["properties"]
            required = set(node.get("required", []))
            return st.fixed_dictionaries(
                {k: from_schema(v, f"{path}.{k}") for k, v in props.items() if k in required},
                optional={k: from_schema(v, f"{path}.{k}") for k, v in props.items() if k not in required},
            )
        values = node.get("additionalProperties", {"type": "string"})
        keys = KEYS.get(path, st.from_regex(r"[a-z][a-z0-9]{0,15}", fullmatch=True))
        return st.dictionaries(keys, from_schema(values, f"{path}.*"), max_size=MAX_ITEMS)
    if kind == "array":
        return st.lists(
            from_schema(node["items"], f"{path}[]"),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", MAX_ITEMS), MAX_ITEMS),
        )
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return st.integers(min_value=node.get("minimum"), max_value=node.get("maximum"))
    if kind == "number":
        return st.floats(
            min_value=node.get("minimum"),
            max_value=node.get("maximum"),
            exclude_min=bool(node.get("exclusiveMinimum")),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"{path}: schema construct not covered by the generator: {node}")


CATALOG_NAMES = sorted(entry.name for entry in builtin_catalog().entries)
OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "spec.model.name": st.one_of(
        st.sampled_from(CATALOG_NAMES),
        st.sampled_from(CATALOG_NAMES).map(lambda name: name.split(":")[0]),  # untagged aliases
        st.from_regex(r"[a-z][a-z0-9.]{0,12}(:[a-z0-9_.-]{1,12})?", fullmatch=True),
    ),
    "spec.scheduling.affinity": st.sampled_from(VALID_AFFINITIES),
}
KEYS: dict[str, st.SearchStrategy[str]] = {
    "spec.ollama.env": st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True),
    "spec.scheduling.nodeSelector": st.from_regex(
        r"([a-z0-9]{1,8}\.io/)?[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True
    ),
}


DELETE = object()  # in an overlay: remove the key from the generated spec


def _merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = _merged(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = value
    return out


SCHEMA = crd.openapi_schema()
RAW_SPECS = from_schema(SCHEMA["properties"]["spec"], "spec")
# Raw specs mostly land in dev (the default stage) on Ollama: production needs a GPU, an API key
# ref and a model vLLM can serve, which independent draws rarely combine. Overlays supply those
# parts; everything else in the spec stays random.
GPU_SERVING = st.builds(
    lambda stage, runtime, gpus_and_tp, model, max_model_len: {
        "stage": stage,
        "runtime": runtime,
        "model": {"name": model},
        "resources": {"gpu": {"count": gpus_and_tp[0]}},
        "vllm": {
            "apiKeySecretRef": {"name": "api-key"},
            "tensorParallelSize": gpus_and_tp[1],
            "maxModelLen": max_model_len,
        },
    },
    # Production first: hypothesis favours the first elements, and dev is what raw specs give.
    st.sampled_from(["production", "staging", "dev"]),
    st.sampled_from(["vllm", "auto", "ollama"]),
    st.sampled_from([(1, 1), (2, 2), (4, 4), (8, 8), (2, 1), (4, 2), (8, 4), (3, DELETE)]),
    st.sampled_from(CATALOG_NAMES),
    st.sampled_from([DELETE, 2048, 8192]),
)
CPU_SERVING = st.builds(
    lambda stage: {"stage": stage, "runtime": "ollama"}, st.sampled_from(["production", "staging"])
)
# replicas and autoscaling are exclusive; drop one of them (or neither) before the overlay.
ONE_SCALING = st.sampled_from([{"replicas": DELETE}, {"autoscaling": DELETE}, {}])
OVERLAID = st.builds(
    lambda spec, scaling, serving: _merged(_merged(spec, scaling), serving),
    RAW_SPECS,
    ONE_SCALING,
    st.one_of(GPU_SERVING, GPU_SERVING, CPU_SERVING),
)
SPECS = st.one_of(OVERLAID, OVERLAID, RAW_SPECS)
NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,50}[a-z0-9])?", fullmatch=True).filter(lambda n: n != "vllm")


def accepted_service(name: str, spec: dict[str, Any]) -> LLMService:
    obj = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": name, "namespace": "team-a", "uid": "u-1", "generation": 1},
        "spec": spec,
    }
    try:
        return LLMService.model_validate(obj)
    except ValidationError:
        reject()  # not a spec the CRD accepts


# 100 examples take about 40 s on two cores; PROPERTY_EXAMPLES=2000 for a longer hunt.
@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(name=NAMES, spec=SPECS, pod_monitor_crd=st.booleans())
def test_any_accepted_spec_resolves_and_renders_schema_valid_objects(
    name: str, spec: dict[str, Any], pod_monitor_crd: bool
) -> None:
    service = accepted_service(name, spec)
    try:
        resolved = resolve(service)
    except SpecError as err:
        # The designed outcome for specs that cannot be served as written (Stalled, with the fix).
        note(f"SpecError: {err}")
        assert err.field.startswith("spec.") and err.message
        reject()
    event(f"{resolved.stage.value}/{resolved.runtime.value}")
    objects = render(resolved, ClusterFacts(pod_monitor_crd=pod_monitor_crd))
    assert render(resolved, ClusterFacts(pod_monitor_crd=pod_monitor_crd)) == objects  # deterministic
    for obj in objects:
        # CRDs outside the Kubernetes schemas: PodMonitor (test_render_schema) and KEDA's ScaledObject
        # (tests/integration/test_keda.py, against KEDA's own CRD).
        if obj["kind"] not in OUTSIDE_KUBERNETES:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        if obj["kind"] == "LeaderWorkerSet":  # its pod templates are core/v1's
            for role, template in obj["spec"]["leaderWorkerTemplate"].items():
                if role.endswith("Template"):
                    pod = {
                        "apiVersion": "v1",
                        "kind": "PodTemplate",
                        "metadata": {"name": "t"},
                        "template": template,
                    }
                    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == "team-a"
        assert_plain_json(obj, obj["kind"])
    deployment = next(o for o in objects if o["kind"] in ("Deployment", "LeaderWorkerSet"))
    assert deployment["kind"] == ("LeaderWorkerSet" if resolved.multi_node else "Deployment")
    assert ("replicas" in deployment["spec"]) == (resolved.autoscaling is None)
    # At most one autoscaler, and it scales this workload.
    scalers = [o for o in objects if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
    assert len(scalers) == (resolved.autoscaling is not None)
    for scaler in scalers:
        assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def assert_plain_json(value: Any, path: str) -> None:
    """Only the types a JSON decoder returns, exactly: the operator's caches marshal rendered and
    live objects (a tuple would come back a tuple and never equal the live list; an enum member
    is not marshallable)."""
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str, f"{path}: key {key!r}"
            assert_plain_json(item, f"{path}.{key}")
    elif type(value) is list:
        for item in value:
            assert_plain_json(item, f"{path}[]")
    else:
        assert type(value) in (str, int, float, bool, type(None)), f"{path}: {type(value).__name__}"


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_resolves_and_renders_schema_valid_objects(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "LLMService"]
    assert documents
    for doc in documents:
        resolved = resolve(LLMService.model_validate(doc))
        for obj in render(resolved, ClusterFacts(pod_monitor_crd=True)):
            if obj["kind"] not in OUTSIDE_KUBERNETES:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
