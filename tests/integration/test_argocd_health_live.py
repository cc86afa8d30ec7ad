"""The Argo CD health check (Lua, run with lupa) on statuses the operator really writes.

Set LLMSTAGE_CAPTURE_DIR to save the captured objects as fixtures for tests/unit/test_argocd_health.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testkit import OperatorProcess, wait_until
from testkit.lua_health import argocd_health
from testkit.services import LLMServices


class Services(LLMServices):
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.create_api_key_secret("k")

    def wait(self, name: str, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(name)
            return obj if check(obj) else None

        return wait_until(probe, timeout=timeout, interval=0.1, what=f"{name}: {what}")


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def observed(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


def save(name: str, obj: dict[str, Any]) -> None:
    target = os.environ.get("LLMSTAGE_CAPTURE_DIR")
    if target:
        meta = obj["metadata"]
        kept = {k: meta[k] for k in ("name", "namespace", "generation") if k in meta}
        Path(target, f"{name}.json").write_text(json.dumps({**obj, "metadata": kept}, indent=2) + "\n")


@pytest.fixture
def services(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Services:
    return Services(api_client, namespace)


def test_ready_is_healthy_and_a_stale_generation_is_progressing(services: Services) -> None:
    services.create("ready")
    obj = services.wait(
        "ready", "Ready", lambda o: observed(o) and condition(o, "Ready").get("status") == "True"
    )
    save("ready", obj)
    assert argocd_health(obj) == ("Healthy", condition(obj, "Ready")["message"])
    stale = {**obj, "metadata": {**obj["metadata"], "generation": obj["metadata"]["generation"] + 1}}
    status, message = argocd_health(stale)
    assert status == "Progressing" and "observe generation" in message


def test_cutover_is_progressing_then_unschedulable_is_degraded(services: Services) -> None:
    services.create("moving", stage="staging", replicas=1)
    services.wait("moving", "Ready", lambda o: observed(o) and condition(o, "Ready").get("status") == "True")
    # Production on a GPU product no node has: the vLLM pods stay Pending while Ollama serves.
    services.patch_spec(
        "moving",
        {
            "stage": "production",
            "resources": {"gpu": {"count": 1, "product": "NVIDIA-B200"}},
            "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
        },
    )
    starting = services.wait(
        "moving",
        "cutover Starting",
        lambda o: observed(o) and (o["status"].get("cutover") or {}).get("phase"),
    )
    save("cutover", starting)
    status, message = argocd_health(starting)
    assert status == "Progressing", message
    assert message.startswith("Runtime cutover ollama -> vllm: Starting")

    stalled = services.wait(
        "moving", "Stalled", lambda o: observed(o) and condition(o, "Stalled").get("status") == "True"
    )
    save("stalled-unschedulable", stalled)
    assert argocd_health(stalled) == ("Degraded", condition(stalled, "Stalled")["message"])
    assert condition(stalled, "Stalled")["reason"] == "Unschedulable"


def test_new_service_waiting_for_pods_is_progressing(services: Services) -> None:
    # Pods on a product no node has never become ready; before the grace period it is just progressing.
    services.create(
        "waiting",
        stage="production",
        replicas=1,
        resources={"gpu": {"count": 1, "product": "NVIDIA-B200"}},
        vllm={"apiKeySecretRef": {"name": "llm-api-key"}},
    )
    obj = services.wait(
        "waiting",
        "Reconciling",
        lambda o: observed(o) and condition(o, "Reconciling").get("status") == "True",
    )
    save("progressing", obj)
    status, message = argocd_health(obj)
    assert status == "Progressing"
    assert message == condition(obj, "Reconciling")["message"]


def test_invalid_spec_is_degraded(services: Services) -> None:
    services.create(
        "invalid",
        stage="production",
        replicas=1,
        model={"name": "no-such-model:1b"},
        resources={"gpu": {"count": 1}},
        vllm={"apiKeySecretRef": {"name": "llm-api-key"}},
    )
    obj = services.wait(
        "invalid", "Stalled", lambda o: observed(o) and condition(o, "Stalled").get("status") == "True"
    )
    save("stalled-invalid-spec", obj)
    status, message = argocd_health(obj)
    assert status == "Degraded"
    assert "spec.model.huggingFaceId" in message
