"""spec.routing: the InferencePool and HTTPRoute beside the Service, and without their CRDs."""

from __future__ import annotations

from typing import Any

from llmstage.controller.plan import plan
from llmstage.render import render
from llmstage.resolve.resolved import ClusterFacts

from testkit.plan_fixtures import NOW, PRODUCTION, deployment, observed, resolved, service

ROUTING = {"gatewayRef": {"name": "inference-gateway"}}
WITH_EXTENSION = ClusterFacts(inference_pool_crd=True, http_route_crd=True)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def test_the_pool_selects_what_the_service_selects_and_the_route_points_at_it() -> None:
    objects = render(resolved(**PRODUCTION, routing=ROUTING), WITH_EXTENSION)
    pool, route = by_kind(objects, "InferencePool"), by_kind(objects, "HTTPRoute")
    assert pool["spec"]["selector"]["matchLabels"] == by_kind(objects, "Service")["spec"]["selector"]
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert "endpointPickerRef" not in pool["spec"]  # optional since the extension's v1.5.0
    # The Gateway in the service's own namespace: no namespace in the parentRef.
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}
    ]
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "chat"}
    ]
    assert "InferencePool" not in {o["kind"] for o in render(resolved(**PRODUCTION))}


def test_the_pool_follows_the_service_through_a_cutover() -> None:
    live = observed(service("ollama"), deployment("ollama", True), deployment("vllm", False))
    p = plan(resolved(**PRODUCTION, routing=ROUTING), live, NOW, facts=WITH_EXTENSION)
    pool = by_kind(p.apply, "InferencePool")
    assert pool["spec"]["selector"]["matchLabels"]["llmstage.io/runtime"] == "ollama"


def test_without_the_crds_the_service_serves_alone_and_the_service_is_stalled() -> None:
    p = plan(
        resolved(**PRODUCTION, routing=ROUTING), observed(), NOW, facts=ClusterFacts(http_route_crd=True)
    )
    assert not {"InferencePool", "HTTPRoute"} & {o["kind"] for o in p.apply}
    stalled = next(c for c in p.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "InferenceExtensionNotInstalled")
    assert "inferencepools.inference.networking.k8s.io" in stalled.message
    assert "httproutes" not in stalled.message  # only what is missing
