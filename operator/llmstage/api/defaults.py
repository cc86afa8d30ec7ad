"""Serving defaults: what a platform team sets once for every serving pod of an installation.

One YAML file (the chart's `servingDefaults` value, mounted into the operator; `llmstage run
--defaults FILE` and `llmstage render --defaults FILE` read it): the registry the runtime images
come from, pull secrets, scheduling (for every serving pod, and more for the pods with GPUs),
labels and annotations, and the pods' user and group IDs. Each LLMService may override where it
makes sense (spec.scheduling, spec.pod, spec.vllm.image, spec.ollama.image); how the two merge is
in resolve/platform.py and docs/install.md.

Parsing only: a file in, a validated ServingDefaults out, or a DefaultsError naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pydantic
import yaml
from llmstage.api.base import IMAGE, LABEL_VALUE, QUALIFIED_NAME, ApiModel, ObjectName
from llmstage.api.constants import MANAGED_ANNOTATIONS, MANAGED_LABEL_PREFIXES
from llmstage.api.spec_parts import LocalObjectReference, Toleration
from llmstage.api.validation import validation_message
from pydantic import Field

# host[:port][/path]: a registry that mirrors Docker Hub, e.g. registry.internal:5000/dockerhub.
REGISTRY = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$"
UNIX_ID_MAX = 2**31 - 1


class DefaultsError(ValueError):
    """A serving-defaults file that cannot be used; the message names the file and the field."""


class SchedulingDefaults(ApiModel):
    """Where serving pods run: merged under each LLMService's spec.scheduling."""

    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels the pods require; spec.scheduling.nodeSelector wins per key.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        description="Tolerations added to the pods, before an LLMService's own.",
    )
    runtime_class_name: ObjectName | None = Field(
        default=None,
        description="RuntimeClass of the pods unless the LLMService sets spec.scheduling.runtimeClassName.",
    )
    priority_class_name: ObjectName | None = Field(
        default=None,
        description="PriorityClass of the pods unless the LLMService sets spec.scheduling.priorityClassName.",
    )


class PodSecurityDefaults(ApiModel):
    """The serving pods' user and group IDs. Unset: llmstage's (vLLM 2000, Ollama 1000)."""

    platform_assigns_ids: bool = Field(
        default=False,
        description=(
            "Leave runAsUser, runAsGroup and fsGroup out of the pods, for a platform that assigns them "
            "(OpenShift's restricted-v2 SCC picks them from the namespace's range). runAsNonRoot, the "
            "seccomp profile and the containers' dropped capabilities stay."
        ),
    )
    run_as_user: int | None = Field(default=None, ge=1, le=UNIX_ID_MAX, description="UID of the pods.")
    run_as_group: int | None = Field(default=None, ge=1, le=UNIX_ID_MAX, description="GID of the pods.")
    fs_group: int | None = Field(
        default=None, ge=1, le=UNIX_ID_MAX, description="Group that owns the model cache volume."
    )

    @pydantic.model_validator(mode="after")
    def _ids_from_one_place(self) -> PodSecurityDefaults:
        if self.platform_assigns_ids and (self.run_as_user or self.run_as_group or self.fs_group):
            raise ValueError(
                "platformAssignsIds leaves runAsUser, runAsGroup and fsGroup to the platform: remove "
                "them, or set platformAssignsIds false"
            )
        return self


class PodMonitorDefaults(ApiModel):
    """The PodMonitor of each vLLM service (rendered where the Prometheus Operator's CRD exists)."""

    labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description=(
            "Labels the cluster's Prometheus selects PodMonitors by (its podMonitorSelector), e.g. "
            "release: kube-prometheus-stack; llmstage's own labels stay."
        ),
    )

    @pydantic.field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if len(key) > 316 or not re.match(QUALIFIED_NAME, key):
                raise ValueError(f"{key!r} is not a label key ([prefix/]name)")
            if key.startswith(MANAGED_LABEL_PREFIXES):
                raise ValueError(f"{key!r}: the prefixes {', '.join(MANAGED_LABEL_PREFIXES)} are llmstage's")
        return value


class ServingDefaults(ApiModel):
    """Install-wide defaults of the serving pods (both runtimes)."""

    image_registry: str | None = Field(
        default=None,
        max_length=253,
        pattern=REGISTRY,
        description=(
            "A registry mirroring Docker Hub, host[:port][/path], e.g. registry.internal:5000/dockerhub: "
            "llmstage's default images (vllm/vllm-openai, vllm/vllm-openai-cpu, ollama/ollama) are pulled "
            "from there. An LLMService's spec.vllm.image or spec.ollama.image is used as written."
        ),
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Secrets (kubernetes.io/dockerconfigjson) for pulling the images, in each LLMService's "
            "namespace; added before an LLMService's spec.pod.imagePullSecrets."
        ),
    )
    pod_labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Labels of every serving pod (e.g. for a mesh); spec.pod.labels wins per key.",
    )
    pod_annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Annotations of every serving pod; spec.pod.annotations wins per key.",
    )
    scheduling: SchedulingDefaults = Field(
        default_factory=SchedulingDefaults, description="Where every serving pod runs."
    )
    gpu_scheduling: SchedulingDefaults = Field(
        default_factory=SchedulingDefaults,
        description=(
            "Where pods that request GPUs run, over `scheduling` (a GPU node pool's taints, a 'nvidia' "
            "RuntimeClass); an LLMService's spec.scheduling still wins."
        ),
    )
    pod_monitor: PodMonitorDefaults = Field(
        default_factory=PodMonitorDefaults, description="The PodMonitor of each vLLM service."
    )
    pod_security_context: PodSecurityDefaults = Field(
        default_factory=PodSecurityDefaults,
        description="User and group IDs of the serving pods; not per LLMService (a platform property).",
    )
    download_image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE,
        description=(
            "Image of the s3 and gcs model download steps: llmstage's own image, which holds the download "
            "code. Default: the operator's image (the chart passes it to the operator); a mirror of it for "
            "an air-gapped registry. An LLMService's spec.vllm.download.image wins."
        ),
    )

    @pydantic.field_validator("pod_labels", "pod_annotations")
    @classmethod
    def _qualified_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if len(key) > 316 or not re.match(QUALIFIED_NAME, key):
                raise ValueError(f"{key!r} is not a label or annotation key ([prefix/]name)")
        return value

    @pydantic.model_validator(mode="after")
    def _not_llmstage_keys(self) -> ServingDefaults:
        if any(k.startswith(MANAGED_LABEL_PREFIXES) for k in self.pod_labels):
            raise ValueError(
                "podLabels must not use the prefixes "
                + ", ".join(MANAGED_LABEL_PREFIXES)
                + ": llmstage's selectors use them; choose another key"
            )
        if any(k in MANAGED_ANNOTATIONS or k.startswith("llmstage.io/") for k in self.pod_annotations):
            raise ValueError(
                "podAnnotations must not set "
                + ", ".join(MANAGED_ANNOTATIONS)
                + " or llmstage.io/* annotations: llmstage sets them"
            )
        return self


def parse_defaults(text: str, source: str) -> ServingDefaults:
    """A serving-defaults YAML text (an empty file: no defaults); DefaultsError names the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise DefaultsError(f"{source}: YAML syntax error: {' '.join(str(err).split())}") from err
    if data is None:
        return ServingDefaults()
    if not isinstance(data, dict):
        raise DefaultsError(f"{source}: not a mapping of serving defaults (imageRegistry, scheduling, ...)")
    try:
        return ServingDefaults.model_validate(data)
    except pydantic.ValidationError as err:
        message = validation_message(err).replace(
            "`kubectl explain llmservice.spec` lists the fields", "docs/install.md lists the serving defaults"
        )
        raise DefaultsError(f"{source}: {message}") from err
