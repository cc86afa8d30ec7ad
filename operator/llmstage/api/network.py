"""spec.networkPolicy and spec.routing: who may call the model, and inference-aware routing
through a Gateway."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from llmstage.api.base import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    HOSTNAME,
    LABEL_VALUE,
    QUALIFIED_NAME,
    ApiModel,
    CelRule,
)
from llmstage.api.constants import FailureMode
from pydantic import Field


class LabelSelectorRequirement(ApiModel):
    """A metav1.LabelSelectorRequirement: key, operator and values."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
            message=(
                "spec.networkPolicy.allowedClients[].*Selector.matchExpressions[].values must fit the "
                "operator: list values with In or NotIn, none with Exists or DoesNotExist"
            ),
            check=lambda s: (s.operator in ("In", "NotIn")) == bool(s.values),
        ),
    )

    key: str = Field(min_length=1, max_length=316, pattern=QUALIFIED_NAME, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How key and values relate."
    )
    values: list[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=list, max_length=32, description="Label values (In, NotIn)."
    )


class LabelSelector(ApiModel):
    """A metav1.LabelSelector. Empty selects everything."""

    match_labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Labels that must all match.",
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Requirements that must all hold."
    )


class NetworkClient(ApiModel):
    """Pods allowed to call the service: a NetworkPolicyPeer without ipBlock."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.namespaceSelector) || has(self.podSelector)",
            message=(
                "spec.networkPolicy.allowedClients[] needs namespaceSelector, podSelector or both: "
                "podSelector alone selects pods of the LLMService's namespace, {} in namespaceSelector "
                "every namespace"
            ),
            check=lambda s: s.namespace_selector is not None or s.pod_selector is not None,
        ),
    )

    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Namespaces whose pods may call (by namespace labels, e.g. kubernetes.io/metadata.name: "
            "team-a); {} is every namespace. With podSelector: only those pods of those namespaces."
        ),
    )
    pod_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Pods that may call, by their labels; without namespaceSelector, pods of the LLMService's "
            "own namespace."
        ),
    )


class NetworkPolicySpec(ApiModel):
    """Who may reach the model: a NetworkPolicy selecting the serving pods (docs/security.md)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.enabled || !has(self.allowedClients) || size(self.allowedClients) == 0",
            message=(
                "spec.networkPolicy.allowedClients has no effect with enabled false: remove it, or "
                "remove enabled to restrict the clients"
            ),
            check=lambda s: s.enabled or not s.allowed_clients,
            field_path=".allowedClients",
        ),
    )

    enabled: bool = Field(
        default=True,
        description=(
            "Render a NetworkPolicy that admits the serving port from allowedClients only (and vLLM's "
            "/metrics from the monitoring namespace the operator is configured with). false: every pod "
            "that can reach the pods may call the model."
        ),
    )
    allowed_clients: list[NetworkClient] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Who may call the model on port 8000. Default: every pod of the LLMService's namespace. "
            "A list replaces that default: add {podSelector: {}} to keep the namespace."
        ),
    )


class GatewayRef(ApiModel):
    """The Gateway (Gateway API) whose listener routes to the InferencePool: one the platform runs."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="The Gateway's name.")
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description=(
            "The Gateway's namespace. Default: the LLMService's. A Gateway in another namespace must allow "
            "routes from this one (its listener's allowedRoutes)."
        ),
    )
    section_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="The Gateway listener to attach to. Default: every listener that allows the route.",
    )


class EndpointPickerRef(ApiModel):
    """An endpoint picker (EPP) Service the platform installed, e.g. llm-d's inference scheduler."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description="The endpoint picker's Service, in the LLMService's namespace.",
    )
    port: int = Field(default=9002, ge=1, le=65535, description="Its ext-proc gRPC port (Service port).")
    failure_mode: FailureMode = Field(
        default=FailureMode.FAIL_CLOSE,
        description=(
            "What the Gateway does when the endpoint picker does not answer: FailClose (reject the request, "
            "the extension's default) or FailOpen (pick an endpoint itself)."
        ),
    )


class RoutingSpec(ApiModel):
    """Inference-aware routing through the Gateway API Inference Extension, beside the Service."""

    gateway_ref: GatewayRef = Field(
        description=(
            "The Gateway an HTTPRoute attaches the InferencePool to. Clients of the Gateway get the "
            "extension's routing; the Service keeps serving clients that call it directly."
        )
    )
    endpoint_picker_ref: EndpointPickerRef | None = Field(
        default=None,
        description=(
            "The endpoint picker that chooses a pod per request (prefix cache, queue, LoRA aware). Default: "
            "none, and the Gateway implementation picks endpoints itself where it can (InferencePool's "
            "endpointPickerRef is optional since the extension's v1.5.0)."
        ),
    )
    hostnames: list[Annotated[str, Field(max_length=253, pattern=HOSTNAME)]] = Field(
        default_factory=list,
        max_length=16,
        description="Host names the HTTPRoute matches. Default: every host name of the Gateway listener.",
    )
