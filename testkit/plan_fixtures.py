"""Inputs of the pure reconcile plan: a resolved service and the cluster it observes (tests only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmstage.api.models import LLMService
from llmstage.controller.observed import Observed
from llmstage.resolve import resolve
from llmstage.resolve.resolved import Resolved

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def resolved(**spec: Any) -> Resolved:
    return resolved_at(3, **spec)


def resolved_at(generation: int, /, **spec: Any) -> Resolved:
    """LLMService chat in namespace team at `generation`, with `spec` (camelCase keys), resolved."""
    body = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "chat", "namespace": "team", "uid": "u-1", "generation": generation},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }
    return resolve(LLMService.from_object(body))


PRODUCTION = {
    "stage": "production",
    "replicas": 1,
    "resources": {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}},
    "vllm": {"apiKeySecretRef": {"name": "key"}},
}


def service(runtime: str) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": "chat"},
        "spec": {"selector": {"llmstage.io/runtime": runtime}},
    }


def deployment(runtime: str, available: bool) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": f"chat-{runtime}", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 1 if available else 0,
            "conditions": [{"type": "Available", "status": "True" if available else "False"}],
        },
    }


def endpoints(*pods: str) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"name": "chat-abc"},
            "endpoints": [
                {"addresses": [f"10.244.0.{i}"], "conditions": {"ready": True}, "targetRef": {"name": p}}
                for i, p in enumerate(pods)
            ],
        }
    ]


def observed(
    *children: dict[str, Any],
    slices: list[dict[str, Any]] | None = None,
    pods: list[dict[str, Any]] | None = None,
    pod_claims: list[dict[str, Any]] | None = None,
) -> Observed:
    return Observed(
        children={(c["kind"], c["metadata"]["name"]): c for c in children},
        endpoint_slices=slices or [],
        pods=pods or [],
        pod_claims={c["metadata"]["name"]: c for c in pod_claims or []},
    )
