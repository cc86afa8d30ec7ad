"""The LLMService API (llmstage.io/v1alpha1) as pydantic models: the single source of the CRD schema.

`llmstage.api.crd` turns these models into the CustomResourceDefinition, so every description,
default, enum, bound and cross-field rule written in them is what `kubectl explain` shows and what
the API server enforces. Cross-field rules are `CelRule`s (api/base.py): the CEL expression goes
into the CRD (x-kubernetes-validations) and the Python `check` makes pydantic enforce the very same
rule, so a spec validated offline (CLI, unit tests) is rejected exactly when the API server would
reject it.

Defaults in the models are only the ones that do not depend on the stage (the API server fills
them in); stage-dependent defaults (replicas, autoscaling, GPUs, sizes) are left unset and applied
by `llmstage.resolve`, so an explicit user value can always be told apart from a default.

This module is the resource; the rest of the API is a module per subject: constants.py (enums and
constants, plain Python), base.py (ApiModel, CelRule, quantities, patterns), spec_parts.py (the
parts of the spec), spec.py (LLMServiceSpec and its rules across parts), status.py. The spec, the
status, the enums and the names the runtime renderers use are importable from here too.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from llmstage.api.base import ApiModel, CelRule, ObjectName
from llmstage.api.constants import (
    MANAGED_OLLAMA_ENV,
    MANAGED_VLLM_ENV,
    MANAGED_VOLUME_PREFIX,
    MAX_NAME_LENGTH,
    MODEL_SOURCE_MOUNT_PATH,
    AccessMode,
    AutoscalerChoice,
    CacheMode,
    ConditionStatus,
    CutoverPhase,
    FailureMode,
    ModelFormat,
    OptimizeFor,
    Runtime,
    RuntimeChoice,
    ScaleMetricChoice,
    Stage,
    VLLMDtype,
)
from llmstage.api.spec import LLMServiceSpec
from llmstage.api.status import LLMServiceStatus
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MANAGED_OLLAMA_ENV",
    "MANAGED_VLLM_ENV",
    "MANAGED_VOLUME_PREFIX",
    "MODEL_SOURCE_MOUNT_PATH",
    "AccessMode",
    "AutoscalerChoice",
    "CacheMode",
    "ConditionStatus",
    "CutoverPhase",
    "FailureMode",
    "LLMService",
    "LLMServiceSpec",
    "LLMServiceStatus",
    "ModelFormat",
    "ObjectMeta",
    "OptimizeFor",
    "Runtime",
    "RuntimeChoice",
    "ScaleMetricChoice",
    "Stage",
    "VLLMDtype",
]


_NAME_RULES = (
    CelRule(
        rule=f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
        message=(
            f"metadata.name must be at most {MAX_NAME_LENGTH} characters: it prefixes the Service, "
            "Deployments and claims llmstage creates; choose a shorter name"
        ),
        check=lambda s: len(s.metadata.name) <= MAX_NAME_LENGTH,
        field_path=".metadata.name",
    ),
    CelRule(
        rule="self.metadata.name.matches('^[a-z]')",
        message=(
            "metadata.name must start with a letter: it becomes a Service name (DNS-1035 label); rename it"
        ),
        check=lambda s: bool(re.match("^[a-z]", s.metadata.name)),
        field_path=".metadata.name",
    ),
    CelRule(
        # The API server accepts dots in a custom resource's name (a DNS-1123 subdomain); a
        # Service name cannot have them, so `chat.v2` would only fail later, as ApplyRejected.
        rule="!self.metadata.name.contains('.')",
        message=(
            "metadata.name must not contain '.': it becomes a Service name (DNS-1035 label: "
            "lower-case letters, digits and '-'); use '-' instead, e.g. chat-v2 for chat.v2"
        ),
        check=lambda s: "." not in s.metadata.name,
        field_path=".metadata.name",
    ),
    CelRule(
        rule="self.metadata.name != 'vllm'",
        message=(
            "metadata.name must not be 'vllm': a Service named vllm injects VLLM_PORT into pods, "
            "which breaks vLLM's own VLLM_PORT setting; choose another name"
        ),
        check=lambda s: s.metadata.name != "vllm",
        field_path=".metadata.name",
    ),
)


class ObjectMeta(BaseModel):
    """The parts of metadata llmstage reads. Anything else in metadata is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: ObjectName
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LLMService(ApiModel):
    """An LLM behind an OpenAI-compatible endpoint: Ollama in dev/staging, GPU-scheduled vLLM in production.

    The same spec moves from stage to stage; clients keep the URL and the model name.
    """

    model_config = ConfigDict(extra="ignore")
    cel_rules: ClassVar[tuple[CelRule, ...]] = _NAME_RULES

    api_version: Literal["llmstage.io/v1alpha1"] = "llmstage.io/v1alpha1"
    kind: Literal["LLMService"] = "LLMService"
    metadata: ObjectMeta
    spec: LLMServiceSpec
    status: LLMServiceStatus | None = None

    @classmethod
    def from_object(cls, obj: Any) -> LLMService:
        """Parse an object as the API server returns it (a dict or a kopf Body-like mapping)."""
        return cls.model_validate(dict(obj))
