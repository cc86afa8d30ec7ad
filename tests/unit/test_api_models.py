"""The pydantic models: defaults, aliases, quantities, and the same rejections as the API server."""

from __future__ import annotations

import pytest
from llmstage.api.constants import MANAGED_VLLM_FLAG_PATTERN
from llmstage.api.models import (
    LLMService,
    LLMServiceStatus,
    RuntimeChoice,
    ScaleMetricChoice,
    Stage,
)
from llmstage.api.quantity import format_gib, gib, is_quantity, parse_quantity
from pydantic import ValidationError

from testkit.api_cases import INVALID, VALID, Invalid, service


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_objects_are_rejected_offline(case: Invalid) -> None:
    with pytest.raises(ValidationError) as err:
        LLMService.model_validate(case.body)
    assert (case.offline or case.message) in str(err.value)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_objects_parse(name: str) -> None:
    LLMService.model_validate(VALID[name])


def test_defaults_match_the_documented_ones() -> None:
    svc = LLMService.model_validate(
        service(
            resources={"gpu": {}},
            vllm={"apiKeySecretRef": {"name": "k"}},
            autoscaling={},
            huggingFaceTokenSecretRef={"name": "hf"},
        )
    )
    spec = svc.spec
    assert spec.stage == Stage.DEV
    assert spec.runtime == RuntimeChoice.AUTO
    assert spec.expected_concurrency == 1
    assert spec.replicas is None and spec.served_model_name is None
    assert spec.resources and spec.resources.gpu
    assert spec.resources.gpu.count == 1 and spec.resources.gpu.resource_name == "nvidia.com/gpu"
    assert spec.vllm and spec.vllm.gpu_memory_utilization == 0.9 and spec.vllm.dtype == "auto"
    assert spec.vllm.api_key_secret_ref and spec.vllm.api_key_secret_ref.key == "api-key"
    assert spec.hugging_face_token_secret_ref and spec.hugging_face_token_secret_ref.key == "token"
    assert spec.autoscaling and spec.autoscaling.metric == ScaleMetricChoice.AUTO
    assert spec.autoscaling.queue_metric_name == "vllm:num_requests_waiting"


def test_camel_case_on_the_wire_and_snake_case_in_python() -> None:
    svc = LLMService.model_validate(service(expectedConcurrency=7, servedModelName="chat"))
    assert svc.spec.expected_concurrency == 7 and svc.spec.served_model_name == "chat"
    dumped = svc.model_dump(exclude_none=True)
    assert dumped["apiVersion"] == "llmstage.io/v1alpha1"
    assert dumped["spec"]["expectedConcurrency"] == 7 and dumped["spec"]["servedModelName"] == "chat"


def test_unknown_fields_are_rejected_like_strict_field_validation() -> None:
    with pytest.raises(ValidationError, match="modle"):
        LLMService.model_validate(service(modle={"name": "x"}))


def test_metadata_and_status_tolerate_what_the_api_server_adds() -> None:
    body = service()
    body["metadata"].update(uid="u-1", generation=3, namespace="team", resourceVersion="9", managedFields=[])
    body["status"] = {
        "observedGeneration": 2,
        "runtime": "ollama",
        "kopf": {"progress": {}},
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ModelLoading",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "cutover": {"phase": "Starting", "from": "ollama", "to": "vllm"},
    }
    svc = LLMService.from_object(body)
    assert svc.metadata.uid == "u-1" and svc.metadata.generation == 3 and svc.metadata.namespace == "team"
    assert svc.status and svc.status.cutover and svc.status.cutover.from_ == "ollama"
    assert svc.status.conditions[0].reason == "ModelLoading"


def test_status_serializes_with_the_api_field_names() -> None:
    status = LLMServiceStatus.model_validate(
        {"readyReplicas": 1, "cutover": {"phase": "Switching", "to": "vllm"}}
    )
    dumped = status.model_dump(exclude_none=True, mode="json")
    assert dumped["readyReplicas"] == 1 and dumped["cutover"]["phase"] == "Switching"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8Gi", 8 * 2**30),
        ("500m", 0.5),
        (2, 2),
        ("1G", 10**9),
        ("1.5Ki", 1536),
        ("1e3", 1000),
        ("2E", 2 * 10**18),
        ("1E3", 1000),
        ("0E.0", 0),
        (".5", 0.5),
        ("1e999999", float("inf")),
        (".2E1000000000000000000", float("inf")),  # beyond Decimal's largest exponent
        ("1e-1000000000000000000", 0),
    ],
)
def test_quantities(value: str | int, expected: float) -> None:
    assert float(parse_quantity(value)) == expected


def test_quantity_helpers() -> None:
    assert gib("16Gi") == 16
    assert format_gib(6.01) == "7Gi" and format_gib(7) == "7Gi"
    for bad in ("8GB", "-1Gi", "1.2.3", ""):
        assert not is_quantity(bad)
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity("8GB")


def test_integer_quantities_become_strings() -> None:
    svc = LLMService.model_validate(service(resources={"cpu": 2, "memory": "4Gi"}))
    assert svc.spec.resources and svc.spec.resources.cpu == "2"


@pytest.mark.parametrize(
    ("arg", "managed"),
    [
        ("--port=1", True),
        ("--port", True),
        ("--served_model_name", True),
        ("--model", True),
        ("--enable-prefix-caching", False),
        ("--model-loader-extra-config={}", False),
        ("--max-loras=4", True),  # spec.lora.maxLoras
        ("--max-cpu-loras=8", False),
        ("--lora-dtype=float16", False),
    ],
)
def test_managed_vllm_flags(arg: str, managed: bool) -> None:
    import re

    assert bool(re.match(MANAGED_VLLM_FLAG_PATTERN, arg)) == managed
