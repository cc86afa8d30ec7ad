"""The runtime Deployments: typed template contexts and the Jinja2 environment that renders them.

Each runtime has one template in templates/ that platform engineers can read as the Deployment it
produces. Templates see only a frozen dataclass (StrictUndefined: a misspelt field fails the
render instead of rendering empty) and `podside_source(NAME)`, the text of a program that runs in
the pod (llmstage.podside), and their output is parsed back with yaml.safe_load.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from llmstage import podside
from llmstage.api.constants import Runtime
from llmstage.render import gateway
from llmstage.render import pod as podlib
from llmstage.render.labels import (
    MODEL_ANNOTATION,
    SERVER,
    labels_for,
    selector_labels,
    workload_name,
)
from llmstage.render.storage import cache_volume
from llmstage.resolve.resolved import OllamaSettings, Resolved, VLLMSettings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# libyaml's loader when PyYAML was built with it: same output, and the pure-Python one was most
# of a reconcile's CPU (docs/benchmarks.md).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Characters a YAML double-quoted scalar cannot hold literally (DEL and everything non-ASCII,
# which includes YAML line breaks such as U+2028). JSON's own escapes cover the C0 controls.
_NOT_YAML_SAFE = re.compile(r"[^\x00-\x7e]")


def _yaml_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    # \U for astral characters: YAML does not join JSON's UTF-16 surrogate pairs.
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def to_json(value: Any) -> str:
    """A value as a JSON flow value that yaml.safe_load reads back exactly."""
    return _NOT_YAML_SAFE.sub(_yaml_escape, json.dumps(value, ensure_ascii=False))


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmstage.render", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML; quoting is the `json` filter's job
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["json"] = to_json
    env.globals["podside_source"] = podside.source
    return env


@dataclass(frozen=True)
class PodContext:
    """What both runtime templates share: the Deployment around the server container."""

    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    selector: dict[str, str]
    pod_labels: dict[str, str]
    replicas: int | None  # None: an HPA owns the count and the field is left out
    strategy: dict[str, Any]
    progress_deadline_seconds: int
    image: str
    resources: dict[str, Any]
    gpu_count: int
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    affinity: dict[str, Any] | None
    topology_spread_constraints: list[dict[str, Any]]
    runtime_class_name: str | None
    priority_class_name: str | None
    cache_volume: dict[str, Any]  # the model-cache volume (render/storage.py)
    cache_mount_path: str
    port: int
    startup: podlib.ProbeBudget
    pre_stop_sleep_seconds: int
    termination_grace_period_seconds: int
    pod_annotations: dict[str, str]
    security_context: dict[str, Any]  # of the pod (render/pod.py pod_security_context)
    service_account_name: str | None
    automount_service_account_token: bool
    image_pull_secrets: list[dict[str, str]]
    scratch_size_limit: str  # of the HOME and /tmp emptyDirs
    # spec.pod.volumes and volumeMounts, after llmstage's own: the server and the download step.
    extra_volumes: list[dict[str, Any]]
    extra_volume_mounts: list[dict[str, Any]]
    # spec.<runtime>.env names (defaults the templates leave to the user when set there) and
    # envFrom: the server and the download step (proxies, HF_ENDPOINT).
    user_env_names: frozenset[str]
    env_from: list[dict[str, Any]]
    # The NVIDIA container toolkit writes into a GPU container's root filesystem; the others,
    # and the download steps (no GPU), run read-only.
    read_only_root: bool
    runtime_port: int  # the runtime's, on loopback; the pod's serving port is the gateway's
    gateway: dict[str, Any]  # the gateway container (render/gateway.py)
    gateway_volume: dict[str, Any]


def pod_context(
    resolved: Resolved,
    runtime: Runtime,
    settings: OllamaSettings | VLLMSettings,
    startup: podlib.ProbeBudget,
    deadline_seconds: int,
    user_id: int,
    surge_blocked: bool = False,
) -> PodContext:
    """user_id: the UID and GID the runtime's pods run as unless the serving defaults say otherwise;
    surge_blocked: the operator saw a rollout's extra pod find no room (render/pod.py update_strategy)."""
    gpu = resolved.resources.gpu
    return PodContext(
        name=workload_name(resolved.name, runtime),
        namespace=resolved.namespace,
        labels=labels_for(resolved, SERVER, runtime),
        annotations={MODEL_ANNOTATION: resolved.model.name},
        selector=selector_labels(resolved.name, runtime),
        # Stage is on the pods (for `kubectl get pods -l llmstage.io/stage=...`) but never in the
        # selector, which is immutable.
        pod_labels=podlib.pod_labels(resolved, labels_for(resolved, SERVER, runtime)),
        replicas=None if resolved.autoscaling is not None else resolved.replicas,
        strategy=podlib.update_strategy(resolved, surge_blocked),
        progress_deadline_seconds=deadline_seconds,
        image=settings.image,
        resources=podlib.container_resources(resolved.resources),
        gpu_count=gpu.count if gpu is not None else 0,
        node_selector=dict(resolved.scheduling.node_selector),
        tolerations=podlib.tolerations(resolved),
        affinity=podlib.affinity(resolved),
        topology_spread_constraints=podlib.topology_spread_constraints(resolved, runtime),
        runtime_class_name=resolved.scheduling.runtime_class_name,
        priority_class_name=resolved.scheduling.priority_class_name,
        cache_volume=cache_volume(resolved, runtime),
        cache_mount_path=podlib.CACHE_MOUNT_PATH,
        port=podlib.HTTP_PORT,
        startup=startup,
        pre_stop_sleep_seconds=podlib.PRE_STOP_SLEEP_SECONDS,
        termination_grace_period_seconds=podlib.TERMINATION_GRACE_PERIOD_SECONDS,
        pod_annotations=podlib.pod_annotations(resolved),
        security_context=podlib.pod_security_context(resolved, user_id),
        service_account_name=resolved.pod.service_account_name,
        automount_service_account_token=resolved.pod.automount_service_account_token,
        image_pull_secrets=[{"name": name} for name in resolved.pod.image_pull_secrets],
        scratch_size_limit=podlib.SCRATCH_SIZE_LIMIT[runtime],
        extra_volumes=[dict(v) for v in resolved.pod.volumes],
        extra_volume_mounts=[dict(m) for m in resolved.pod.volume_mounts],
        user_env_names=frozenset(settings.env),
        env_from=[dict(source) for source in settings.env_from],
        read_only_root=not (gpu and gpu.count > 0),
        runtime_port=gateway.RUNTIME_PORT,
        gateway=gateway.gateway_container(resolved, runtime),
        gateway_volume=gateway.gateway_volume(),
    )


def render_template(template_name: str, context: DataclassInstance) -> dict[str, Any]:
    """Render a template with the fields of a context dataclass and parse the YAML back."""
    # Shallow on purpose: dataclasses.asdict would turn nested contexts into dicts.
    fields = {field.name: getattr(context, field.name) for field in dataclasses.fields(context)}
    text = environment().get_template(template_name).render(**fields)
    obj = yaml.load(text, Loader=_SafeLoader)
    if not isinstance(obj, dict):
        raise ValueError(f"{template_name} did not render a mapping")
    return obj
