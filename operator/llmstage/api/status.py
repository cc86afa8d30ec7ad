"""LLMServiceStatus: what the operator observed and decided, with its conditions."""

from __future__ import annotations

from datetime import datetime

from llmstage.api.base import ApiModel
from llmstage.api.constants import MAX_LORA_ADAPTERS, ConditionStatus, CutoverPhase, Runtime, Stage
from pydantic import ConfigDict, Field


class Condition(ApiModel):
    """A metav1.Condition."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Condition type: Ready, Reconciling, Stalled, RuntimeSelected, ModelFits, ...",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the last transition, e.g. ModelLoading.",
    )
    message: str = Field(max_length=32768, description="Human-readable details; may be empty.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )


class CutoverStatus(ApiModel):
    """Progress of a runtime switch (e.g. Ollama -> vLLM when stage becomes production)."""

    model_config = ConfigDict(extra="ignore")

    phase: CutoverPhase = Field(description="Starting, Switching, Draining, Complete or Failed.")
    from_: Runtime | None = Field(default=None, alias="from", description="Runtime being replaced.")
    to: Runtime = Field(description="Runtime taking over.")
    message: str = Field(default="", max_length=32768, description="Human-readable progress.")
    last_transition_time: datetime | None = Field(default=None, description="When the phase last changed.")


class LLMServiceStatus(ApiModel):
    """Observed state, written by the operator."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Ready, Reconciling, Stalled, RuntimeSelected, ModelFits and warning conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    runtime: Runtime | None = Field(default=None, description="Runtime in use after the decision.")
    stage: Stage | None = Field(default=None, description="Stage the running workload was built for.")
    replicas: int | None = Field(
        default=None, ge=0, description="Pods of the active runtime (scale subresource)."
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Pods of the active runtime that are ready."
    )
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the pods, serialized (for the autoscaler).",
    )
    endpoint: str | None = Field(
        default=None,
        max_length=1024,
        description="OpenAI-compatible base URL, e.g. http://NAME.NAMESPACE.svc:8000/v1.",
    )
    served_model_name: str | None = Field(
        default=None, max_length=253, description="The `model` string clients send."
    )
    lora_adapters: list[str] | None = Field(
        default=None,
        max_length=MAX_LORA_ADAPTERS,
        description="Model names of the LoRA adapters served beside servedModelName (vLLM).",
    )
    cutover: CutoverStatus | None = Field(
        default=None, description="Progress of a runtime switch, when one runs."
    )
