"""The CRD in crds/ is exactly what the models generate, and it is a well-formed structural schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from llmstage.api.crd import PRINTER_COLUMNS, crd, crd_yaml
from llmstage.cli import main

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "llmservices.llmstage.io.yaml"


def schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ is stale: run `make generate` and commit the result"


def test_cli_prints_the_same_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == crd_yaml()


def test_cli_entry_point_runs() -> None:
    script = Path(sys.executable).parent / "llmstage"  # the console script `pip install` made
    res = subprocess.run([str(script), "crd"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == crd_yaml()


def test_crd_is_valid_for_kubernetes_offline() -> None:
    kubernetes_validate.validate(crd(), kubernetes_validate.latest_version(), strict=True)


def test_names_scope_and_version() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "llmservices.llmstage.io"
    assert spec["group"] == "llmstage.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "LLMService" and spec["names"]["plural"] == "llmservices"
    assert spec["names"]["shortNames"] == ["llms", "llmsvc"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]


def test_subresources() -> None:
    sub = crd()["spec"]["versions"][0]["subresources"]
    assert sub["status"] == {}
    assert sub["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in PRINTER_COLUMNS}
    assert list(columns) == ["Stage", "Runtime", "Model", "Ready", "Replicas", "Age", "Endpoint"]
    assert columns["Endpoint"]["priority"] == 1
    assert all("priority" not in c for n, c in columns.items() if n != "Endpoint")
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'


def test_every_field_has_a_description() -> None:
    """kubectl explain shows these; items of lists and values of maps are not fields of their own."""
    fields = [p for p, _ in walk(schema()) if p not in ("", ".metadata") and not p.endswith(("[]", "{}"))]
    nodes = dict(walk(schema()))
    assert len(fields) > 80
    assert not [p for p in fields if not nodes[p].get("description")]


def test_schema_is_structural() -> None:
    """No $ref, no null types, no titles, anyOf only for int-or-string, every node typed."""
    for path, node in walk(schema()):
        assert "$ref" not in node and "title" not in node and "$defs" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert node.get("default", "") is not None, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path


def test_status_is_declared_not_preserved() -> None:
    status = schema()["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert {
        "observedGeneration",
        "conditions",
        "runtime",
        "stage",
        "replicas",
        "readyReplicas",
        "selector",
        "endpoint",
        "servedModelName",
        "cutover",
    } <= set(status["properties"])
    condition = status["properties"]["conditions"]["items"]
    assert set(condition["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert status["properties"]["conditions"]["x-kubernetes-list-type"] == "map"
    assert set(status["properties"]["cutover"]["properties"]) == {
        "phase",
        "from",
        "to",
        "message",
        "lastTransitionTime",
    }


def test_lists_maps_and_strings_are_bounded_for_cel_cost() -> None:
    """The API server estimates CEL cost from maxItems/maxProperties/maxLength; unbounded inputs fail it."""
    spec = schema()["properties"]["spec"]
    for path, node in walk(spec, ".spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
            assert "maxProperties" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path


def test_cel_messages_name_the_field() -> None:
    rules = [(p, r) for p, n in walk(schema()) for r in n.get("x-kubernetes-validations", [])]
    assert len(rules) >= 12
    for path, rule in rules:
        message = rule["message"]
        assert message.startswith(("spec.", "metadata.", "keys must")), (path, message)
        if not message.startswith("keys"):
            assert ":" in message, f"{path}: the message should say the fix after a colon: {message}"


def test_defaults_are_stage_independent() -> None:
    """Stage-dependent values must stay unset, or resolve() could not tell them from user values."""
    spec = schema()["properties"]["spec"]
    defaulted = {p for p, n in walk(spec, ".spec") if "default" in n}
    assert defaulted == {
        ".spec.stage",
        ".spec.runtime",
        ".spec.expectedConcurrency",
        ".spec.autoscaling.autoscaler",
        ".spec.autoscaling.metric",
        ".spec.autoscaling.queueMetricName",
        ".spec.resources.gpu.count",
        ".spec.resources.gpu.resourceName",
        ".spec.vllm.gpuMemoryUtilization",
        ".spec.vllm.dtype",
        ".spec.vllm.apiKeySecretRef.key",
        ".spec.ollama.apiKeySecretRef.key",
        ".spec.huggingFaceTokenSecretRef.key",
        ".spec.ollama.registry.insecure",
        ".spec.ollama.registry.caConfigMapRef.key",
        ".spec.ollama.registry.keySecretRef.key",
        ".spec.scheduling.tolerations[].operator",
        ".spec.pod.automountServiceAccountToken",
        ".spec.model.source.pvc.path",  # "/": the claim's root, whatever the stage
        ".spec.model.source.oci.path",
        ".spec.lora.adapters[].source.pvc.path",
        ".spec.lora.adapters[].source.oci.path",
        ".spec.routing.endpointPickerRef.port",  # the extension's ext-proc port, 9002
        ".spec.routing.endpointPickerRef.failureMode",  # FailClose, InferencePool's own default
        ".spec.networkPolicy.enabled",  # on in every stage
    }
