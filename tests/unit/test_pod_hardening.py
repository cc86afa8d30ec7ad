"""What the serving pods do against a full disk, a wedged server and code from a model repository:
distinct liveness and readiness, sizeLimit on every emptyDir, an ephemeral-storage request by
default, and a finding for --trust-remote-code."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.api.models import LLMService
from llmstage.render import render_deployment
from llmstage.resolve import resolve
from llmstage.resolve.resolver import DEFAULT_EPHEMERAL_STORAGE

from testkit.render_fixtures import CASES, DEV_OLLAMA, pod_specs


def service(**spec: Any) -> LLMService:
    return LLMService.from_object(
        {
            "apiVersion": "llmstage.io/v1alpha1",
            "kind": "LLMService",
            "metadata": {"name": "chat", "namespace": "team"},
            "spec": {"model": {"name": "llama3.1:8b"}, **spec},
        }
    )


def test_ollamas_liveness_asks_the_process_and_readiness_the_model_store() -> None:
    server = render_deployment(DEV_OLLAMA)["spec"]["template"]["spec"]["containers"][0]
    # Through the gateway's port, the serving port: Ollama itself listens on loopback only.
    assert server["readinessProbe"]["httpGet"] == {"path": "/api/tags", "port": 8000}
    assert server["livenessProbe"]["httpGet"] == {"path": "/api/version", "port": 8000}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_empty_dir_has_a_size_limit(case: str) -> None:
    resolved, _ = CASES[case]
    for spec in pod_specs(resolved):
        empty = [v for v in spec["volumes"] if "emptyDir" in v]
        assert empty and all(v["emptyDir"].get("sizeLimit") for v in empty), empty


@pytest.mark.parametrize(
    ("spec", "runtime"),
    [({}, "ollama"), ({"stage": "production", "vllm": {"apiKeySecretRef": {"name": "k"}}}, "vllm")],
)
def test_an_ephemeral_storage_request_by_default_and_the_users_wins(
    spec: dict[str, Any], runtime: str
) -> None:
    resolved = resolve(service(**spec))
    assert resolved.runtime.value == runtime
    requests = render_deployment(resolved)["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"
    ]
    assert requests["ephemeral-storage"] == DEFAULT_EPHEMERAL_STORAGE[resolved.runtime]
    asked = resolve(service(**spec, resources={"ephemeralStorage": "40Gi"}))
    assert asked.resources.ephemeral_storage == "40Gi"


@pytest.mark.parametrize(
    ("args", "revision", "found"),
    [
        (["--trust-remote-code"], None, "not pinned: set spec.model.revision"),
        (["--trust_remote_code=true"], "abc123", "pinned to revision abc123"),
        (["--max-num-batched-tokens=8192"], None, None),
    ],
)
def test_trust_remote_code_is_a_finding_naming_the_repository(
    args: list[str], revision: str | None, found: str | None
) -> None:
    model = {"name": "llama3.1:8b", **({"revision": revision} if revision else {})}
    resolved = resolve(
        service(stage="production", model=model, vllm={"apiKeySecretRef": {"name": "k"}, "extraArgs": args})
    )
    findings = {f.reason: f.message for f in resolved.warnings}
    if found is None:
        assert "TrustRemoteCode" not in findings
        return
    assert found in findings["TrustRemoteCode"]
    assert "meta-llama/Llama-3.1-8B-Instruct" in findings["TrustRemoteCode"]
