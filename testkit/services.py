"""LLMServices in one namespace through the official client: what the cluster tests create, patch
and wait for. Test modules subclass LLMServices for the other objects they look at."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from testkit import wait_until

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
API_KEY_SECRET = "llm-api-key"  # what production specs of the tests name in spec.vllm.apiKeySecretRef


def llmservice(name: str, **spec: Any) -> dict[str, Any]:
    """An LLMService body; the model is llama3.1:8b unless spec names another."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }


class LLMServices:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create_api_key_secret(self, value: str = "test-key") -> None:
        self.core.create_namespaced_secret(
            self.ns, {"metadata": {"name": API_KEY_SECRET}, "stringData": {"api-key": value}}
        )

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, llmservice(name, **spec)
        )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec}
        )

    def condition(self, name: str, ctype: str) -> dict[str, Any] | None:
        status = self.get(name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)

    def wait_condition(
        self, name: str, ctype: str, status: str = "True", timeout: float = 60, interval: float = 0.2
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            cond = self.condition(name, ctype)
            return cond if cond and cond["status"] == status else None

        return wait_until(check, timeout=timeout, interval=interval, what=f"{name} {ctype}={status}")
