"""spec.routing -> Routing: the InferencePool and HTTPRoute settings, with defaults applied."""

from __future__ import annotations

from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.resolved import Routing


def routing_settings(spec: LLMServiceSpec, namespace: str) -> Routing | None:
    asked = spec.routing
    if asked is None:
        return None
    gateway, picker = asked.gateway_ref, asked.endpoint_picker_ref
    return Routing(
        gateway_name=gateway.name,
        gateway_namespace=gateway.namespace or namespace,
        section_name=gateway.section_name,
        endpoint_picker=picker.name if picker else None,
        endpoint_picker_port=picker.port if picker else 9002,
        failure_mode=picker.failure_mode.value if picker else "FailClose",
        hostnames=tuple(asked.hostnames),
    )
