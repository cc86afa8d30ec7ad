"""The model cache: one shared PersistentVolumeClaim, or a claim per pod (docs/storage.md)."""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.labels import CACHE, COMPONENT_LABEL, cache_claim_name, metadata, selector_labels
from llmstage.resolve.resolved import Resolved

# The pod volume every container mounts the cache from; a claim per pod is named POD-model-cache.
CACHE_VOLUME = "model-cache"


def _claim_spec(resolved: Resolved) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": [resolved.cache.access_mode],
        "resources": {"requests": {"storage": resolved.cache.size}},
    }
    if resolved.cache.storage_class_name is not None:
        spec["storageClassName"] = resolved.cache.storage_class_name
    return spec


def render_cache_claim(resolved: Resolved) -> dict[str, Any] | None:
    """One shared claim per runtime (NAME-ollama-cache, NAME-vllm-cache): the layouts differ, and
    during a cutover the new runtime fills its cache while the old one keeps serving from its own.
    None when each pod has its own claim or the user names an existing one."""
    if resolved.cache.per_pod or resolved.cache.claim_name is not None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(resolved, cache_claim_name(resolved.name, resolved.runtime), CACHE),
        "spec": _claim_spec(resolved),
    }


def cache_volume(resolved: Resolved, runtime: Runtime) -> dict[str, Any]:
    """The pod's model-cache volume: the shared claim, the user's claim, or a claim per pod.

    A claim per pod is a generic ephemeral volume: Kubernetes creates POD-model-cache with the pod
    and deletes it with the pod (the pod owns it), so the Deployment stays a Deployment and a
    ReadWriteOnce class suffices. It is labelled like our objects, for `kubectl get pvc -l`, but
    not managed-by llmstage: the operator neither applies nor prunes it, Kubernetes does.
    """
    cache = resolved.cache
    if not cache.per_pod:
        claim = cache.claim_name or cache_claim_name(resolved.name, runtime)
        return {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
    labels = {**selector_labels(resolved.name, runtime), COMPONENT_LABEL: CACHE}
    template = {"metadata": {"labels": labels}, "spec": _claim_spec(resolved)}
    return {"name": CACHE_VOLUME, "ephemeral": {"volumeClaimTemplate": template}}
