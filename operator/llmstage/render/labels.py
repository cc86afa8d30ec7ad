"""Object names, labels and selectors shared by every rendered object.

Labels (Kubernetes recommended labels plus two of ours):

    app.kubernetes.io/name        llmstage        what the objects are: an llmstage serving stack
    app.kubernetes.io/instance    NAME            which LLMService they belong to
    app.kubernetes.io/component   server | cache  serving pods and what points at them | model cache
    app.kubernetes.io/managed-by  llmstage
    llmstage.io/runtime           ollama | vllm
    llmstage.io/stage             dev | staging | production

`app.kubernetes.io/name` is `llmstage` rather than the model because model names ("llama3.1:8b",
"meta-llama/Llama-3.1-8B-Instruct") are not valid label values; the model is an annotation.

Selectors use name, instance, component and runtime only. Never stage: Deployment selectors are
immutable and promotion changes the stage of the same Deployment in place. The runtime is part of
the selector so that the Ollama and the vLLM Deployment of one LLMService can run side by side
during a cutover while the Service selects exactly one of them.
"""

from __future__ import annotations

from llmstage.api.constants import Runtime, Stage
from llmstage.resolve.resolved import Resolved

API_GROUP = "llmstage.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "LLMService"

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
RUNTIME_LABEL = f"{API_GROUP}/runtime"
STAGE_LABEL = f"{API_GROUP}/stage"
MODEL_ANNOTATION = f"{API_GROUP}/model"

APP_NAME = "llmstage"
MANAGER = "llmstage"
SERVER = "server"
CACHE = "cache"


def workload_name(name: str, runtime: Runtime) -> str:
    """Deployment (and HPA, PDB, PodMonitor) name per runtime, so both can coexist in a cutover."""
    return f"{name}-{runtime.value}"


def cache_claim_name(name: str, runtime: Runtime) -> str:
    """PVC per runtime: Ollama's blob store and the Hugging Face cache do not share a layout."""
    return f"{name}-{runtime.value}-cache"


def service_name(name: str) -> str:
    """The Service is named like the LLMService: the endpoint never changes between runtimes."""
    return name


def selector_labels(name: str, runtime: Runtime) -> dict[str, str]:
    """Stable pod selector of one runtime's pods (Deployment, Service, PDB, PodMonitor, spread)."""
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: name,
        COMPONENT_LABEL: SERVER,
        RUNTIME_LABEL: runtime.value,
    }


def selector_string(name: str, runtime: Runtime) -> str:
    """The selector as `status.selector` (scale subresource, HPA) and `kubectl -l` take it."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(name, runtime).items()))


def object_labels(name: str, runtime: Runtime, stage: Stage, component: str) -> dict[str, str]:
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: name,
        COMPONENT_LABEL: component,
        MANAGED_BY_LABEL: MANAGER,
        RUNTIME_LABEL: runtime.value,
        STAGE_LABEL: stage.value,
    }


def labels_for(resolved: Resolved, component: str, runtime: Runtime | None = None) -> dict[str, str]:
    return object_labels(resolved.name, runtime or resolved.runtime, resolved.stage, component)


def metadata(
    resolved: Resolved,
    name: str,
    component: str,
    runtime: Runtime | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, object]:
    meta: dict[str, object] = {
        "name": name,
        "namespace": resolved.namespace,
        "labels": labels_for(resolved, component, runtime),
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def owner_reference(resolved: Resolved) -> dict[str, object]:
    """The ownerReference the operator puts on every rendered object (the renderer does not)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": resolved.name,
        "uid": resolved.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
