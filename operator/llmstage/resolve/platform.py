"""The install's serving defaults (api/defaults.py) merged with an LLMService's own settings.

    scheduling(spec, defaults, gpus) -> Scheduling
    pod_options(spec, defaults) -> PodOptions
    mirrored(image, registry) -> str
    pod_security(defaults) -> PodSecurity

Pure. What the LLMService says wins wherever it says something: maps merge key by key (the
service's value wins), lists are the defaults' then the service's (without repeats), a single
value is the service's when set. The IDs are the platform's alone.
"""

from __future__ import annotations

from typing import Any

from llmstage.api.defaults import SchedulingDefaults, ServingDefaults
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.resolved import PodOptions, PodSecurity, Scheduling

DOCKER_HUB = "docker.io"


def _toleration(t: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = t.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def scheduling(spec: LLMServiceSpec, defaults: ServingDefaults | None, gpus: bool) -> Scheduling:
    """spec.scheduling over the defaults for every pod and, for pods with GPUs, the GPU ones."""
    layers: list[SchedulingDefaults] = []
    if defaults is not None:
        layers.append(defaults.scheduling)
        if gpus:
            layers.append(defaults.gpu_scheduling)
    own = spec.scheduling
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    runtime_class = priority_class = None
    for layer in layers:
        node_selector.update(layer.node_selector)
        tolerations.extend(_toleration(t) for t in layer.tolerations)
        runtime_class = layer.runtime_class_name or runtime_class
        priority_class = layer.priority_class_name or priority_class
    if own is not None:
        node_selector.update(own.node_selector)
        tolerations.extend(_toleration(t) for t in own.tolerations)
        runtime_class = own.runtime_class_name or runtime_class
        priority_class = own.priority_class_name or priority_class
    return Scheduling(
        node_selector=node_selector,
        tolerations=tuple(_unique(tolerations)),
        affinity=own.affinity if own is not None else None,
        runtime_class_name=runtime_class,
        priority_class_name=priority_class,
    )


def pod_options(spec: LLMServiceSpec, defaults: ServingDefaults | None) -> PodOptions:
    """spec.pod with the defaults' pull secrets, labels and annotations under it."""
    pod = spec.pod
    base_secrets = [ref.name for ref in defaults.image_pull_secrets] if defaults else []
    own_secrets = [ref.name for ref in pod.image_pull_secrets] if pod else []
    return PodOptions(
        service_account_name=pod.service_account_name if pod else None,
        automount_service_account_token=pod.automount_service_account_token if pod else False,
        image_pull_secrets=tuple(_unique(base_secrets + own_secrets)),
        labels={**(defaults.pod_labels if defaults else {}), **(pod.labels if pod else {})},
        annotations={**(defaults.pod_annotations if defaults else {}), **(pod.annotations if pod else {})},
        volumes=tuple(pod.volumes) if pod else (),
        volume_mounts=tuple(m.model_dump(by_alias=True, exclude_none=True) for m in pod.volume_mounts)
        if pod
        else (),
    )


def _is_host(component: str) -> bool:
    """The first component of an image reference names a registry when it has a dot or a port, or
    is localhost (the rule of the distribution/reference library that container runtimes use)."""
    return "." in component or ":" in component or component == "localhost"


def mirrored(image: str, registry: str | None) -> str:
    """`image` pulled from `registry` (a mirror of its registry) instead: vllm/vllm-openai:v0.32.0
    -> registry.internal:5000/vllm/vllm-openai:v0.32.0; Docker Hub's official images keep their
    library/ path. Unchanged without a registry."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    if not rest:
        path = f"library/{image}"  # an official Docker Hub image
    elif _is_host(first):
        path = rest
    else:
        path = image
    return f"{registry.rstrip('/')}/{path}"


def pod_security(defaults: ServingDefaults | None) -> PodSecurity:
    if defaults is None:
        return PodSecurity()
    asked = defaults.pod_security_context
    return PodSecurity(asked.platform_assigns_ids, asked.run_as_user, asked.run_as_group, asked.fs_group)
