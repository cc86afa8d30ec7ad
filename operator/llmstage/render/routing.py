"""spec.routing: the Gateway API Inference Extension's InferencePool, and the HTTPRoute to it.

    render_routing(resolved, serving_runtime) -> [InferencePool, HTTPRoute] or []

Objects of the extension's pinned release, v1.6.2 (sigs.k8s.io/gateway-api-inference-extension,
config/crd/bases/inference.networking.k8s.io_inferencepools.yaml): InferencePool v1 with
`selector.matchLabels`, `targetPorts` and, optional since v1.5.0, `endpointPickerRef` (a Service
and its port; `failureMode` FailClose by default). A Gateway routes to the pool through an
HTTPRoute whose backendRef names it (group inference.networking.k8s.io, kind InferencePool, no
port: the pool's targetPorts say it). The endpoint picker itself is not rendered: since v1.6 the
extension ships only a round-robin reference picker for its conformance tests and the
inference-aware one lives in llm-d (llm-d/llm-d-router); spec.routing.endpointPickerRef names the
one the platform installed.

The pool selects what the Service selects, the serving runtime's server pods (a multi-node
group's leaders), and follows the Service through a cutover, so both paths switch together.
The Service stays: clients that call it directly keep working.
"""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.labels import SERVER, metadata, selector_labels, service_name
from llmstage.render.pod import HTTP_PORT
from llmstage.resolve.resolved import Resolved

INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"
INFERENCE_POOL = "InferencePool"
HTTP_ROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
HTTP_ROUTE = "HTTPRoute"


def render_inference_pool(resolved: Resolved, serving_runtime: Runtime) -> dict[str, Any]:
    routing = resolved.routing
    assert routing is not None
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(resolved.name, serving_runtime)},
        "targetPorts": [{"number": HTTP_PORT}],
    }
    if routing.endpoint_picker:
        spec["endpointPickerRef"] = {
            "kind": "Service",
            "name": routing.endpoint_picker,
            "port": {"number": routing.endpoint_picker_port},
            "failureMode": routing.failure_mode,
        }
    return {
        "apiVersion": INFERENCE_POOL_API_VERSION,
        "kind": INFERENCE_POOL,
        "metadata": metadata(resolved, service_name(resolved.name), SERVER, serving_runtime),
        "spec": spec,
    }


def render_http_route(resolved: Resolved) -> dict[str, Any]:
    routing = resolved.routing
    assert routing is not None
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": routing.gateway_name,
    }
    if routing.gateway_namespace != resolved.namespace:
        parent["namespace"] = routing.gateway_namespace
    if routing.section_name:
        parent["sectionName"] = routing.section_name
    spec: dict[str, Any] = {"parentRefs": [parent]}
    if routing.hostnames:
        spec["hostnames"] = list(routing.hostnames)
    spec["rules"] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [
                {
                    "group": "inference.networking.k8s.io",
                    "kind": INFERENCE_POOL,
                    "name": service_name(resolved.name),
                }
            ],
        }
    ]
    return {
        "apiVersion": HTTP_ROUTE_API_VERSION,
        "kind": HTTP_ROUTE,
        "metadata": metadata(resolved, service_name(resolved.name), SERVER),
        "spec": spec,
    }


def render_routing(resolved: Resolved, serving_runtime: Runtime) -> list[dict[str, Any]]:
    """Nothing without spec.routing: the Service alone serves."""
    if resolved.routing is None:
        return []
    return [render_inference_pool(resolved, serving_runtime), render_http_route(resolved)]
