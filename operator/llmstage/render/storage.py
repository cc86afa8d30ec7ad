"""The model cache PersistentVolumeClaim."""

from __future__ import annotations

from typing import Any

from llmstage.render.labels import CACHE, cache_claim_name, metadata
from llmstage.resolve.resolved import Resolved


def render_cache_claim(resolved: Resolved) -> dict[str, Any]:
    """One claim per runtime (NAME-ollama-cache, NAME-vllm-cache): the layouts differ, and during a
    cutover the new runtime fills its cache while the old one keeps serving from its own."""
    spec: dict[str, Any] = {
        "accessModes": [resolved.cache.access_mode],
        "resources": {"requests": {"storage": resolved.cache.size}},
    }
    if resolved.cache.storage_class_name is not None:
        spec["storageClassName"] = resolved.cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(resolved, cache_claim_name(resolved.name, resolved.runtime), CACHE),
        "spec": spec,
    }
