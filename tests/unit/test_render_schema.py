"""Every rendered object is valid against the Kubernetes OpenAPI schemas, offline and strict.

kubernetes-validate ships the schemas of each Kubernetes release; strict mode also rejects fields
the schema does not know (a misspelt `readinessprobe` would otherwise be dropped silently by the
API server). PodMonitor is a Prometheus Operator CRD, not in those schemas: it is checked against
the part of its CRD schema we use.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from llmstage.render import render

from testkit.render_fixtures import CASES, PRODUCTION_VLLM, WITH_POD_MONITOR

KUBERNETES_VERSION = kubernetes_validate.latest_version()

# From prometheus-operator's monitoring.coreos.com_podmonitors.yaml (v1), restricted to the fields
# llmstage sets; additionalProperties false so a misspelt field fails here as in strict mode.
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$",
                            },
                        },
                    },
                },
            },
        },
    },
}


def validate(obj: dict[str, Any]) -> None:
    if obj["kind"] == "PodMonitor":
        jsonschema.validate(obj, POD_MONITOR_SCHEMA)
    elif obj["kind"] == "ScaledObject":
        # KEDA's CRD is not copied here: tests/integration/test_keda.py installs the one of the
        # pinned KEDA release into the local cluster and dry-runs every rendered ScaledObject.
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
    elif obj["kind"] == "LeaderWorkerSet":
        # The CRD is LWS's (tests/integration/test_multi_node.py applies these on the local cluster
        # with the real controller); its two pod templates are core/v1 ones, checked strictly here.
        assert obj["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
        templates = obj["spec"]["leaderWorkerTemplate"]
        for role in ("leaderTemplate", "workerTemplate"):
            pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role.lower()}}
            kubernetes_validate.validate(
                {**pod_template, "template": templates[role]}, KUBERNETES_VERSION, strict=True
            )
    elif obj["kind"] in ("InferencePool", "HTTPRoute"):
        # Checked against the inference extension's and Gateway API's pinned CRDs on the local
        # cluster (tests/integration/test_routing.py).
        assert obj["apiVersion"] in ("inference.networking.k8s.io/v1", "gateway.networking.k8s.io/v1")
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_object_passes_the_kubernetes_schema(case: str) -> None:
    resolved, facts = CASES[case]
    for obj in render(resolved, facts):
        validate(obj)


def test_the_validator_is_strict_about_unknown_fields() -> None:
    deployment = render(PRODUCTION_VLLM)[1]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_pod_monitor_is_outside_the_kubernetes_schemas_and_checked_against_its_crd() -> None:
    pod_monitor = render(PRODUCTION_VLLM, WITH_POD_MONITOR)[-1]
    assert pod_monitor["kind"] == "PodMonitor"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(pod_monitor, KUBERNETES_VERSION, strict=True)
    validate(pod_monitor)
    pod_monitor["spec"]["podMetricsEndpoint"] = pod_monitor["spec"].pop("podMetricsEndpoints")
    with pytest.raises(jsonschema.ValidationError):
        validate(pod_monitor)
