"""spec.autoscaling.autoscaler in the reconcile plan: KEDA missing, hpa <-> keda switches, scale to zero."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.controller.conditions import Condition
from llmstage.controller.plan import plan
from llmstage.resolve import SpecError
from llmstage.resolve.resolved import ClusterFacts

from testkit.plan_fixtures import NOW, deployment, observed, resolved, service

KEDA = ClusterFacts(keda_crd=True)
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
WAKE = 'sum(rate(nginx_ingress_controller_requests{exported_service="chat"}[2m]))'


def keda_spec(**autoscaling: Any) -> dict[str, Any]:
    return {"stage": "staging", "autoscaling": {"autoscaler": "keda", **autoscaling}}


def conditions(p: Any) -> dict[str, Condition]:
    return {c.type: c for c in p.conditions}


def kinds(p: Any) -> list[str]:
    return [o["kind"] for o in p.apply]


def test_keda_renders_a_scaled_object_and_no_hpa() -> None:
    p = plan(resolved(**keda_spec()), observed(), NOW, facts=KEDA)
    assert "ScaledObject" in kinds(p) and "HorizontalPodAutoscaler" not in kinds(p)
    assert conditions(p)["Stalled"].status == "False"


def test_without_the_keda_crd_the_service_is_stalled_naming_what_to_install() -> None:
    p = plan(resolved(**keda_spec()), observed(), NOW, facts=ClusterFacts())
    assert "ScaledObject" not in kinds(p)  # the API server would not know the kind
    assert "Deployment" in kinds(p)  # the rest is applied: the service still serves, unscaled
    stalled = conditions(p)["Stalled"]
    assert (stalled.status, stalled.reason) == ("True", "KEDANotInstalled")
    assert "scaledobjects.keda.sh" in stalled.message
    assert "helm install keda kedacore/keda" in stalled.message
    assert "spec.autoscaling.autoscaler hpa" in stalled.message
    assert conditions(p)["Ready"].reason == "KEDANotInstalled"


def test_hpa_users_are_not_stalled_without_keda() -> None:
    p = plan(resolved(stage="staging"), observed(), NOW, facts=ClusterFacts())
    assert conditions(p)["Stalled"].status == "False"
    assert "HorizontalPodAutoscaler" in kinds(p)


def test_hpa_to_keda_waits_for_our_hpa_to_go_before_applying_the_scaled_object() -> None:
    """KEDA's webhook refuses a ScaledObject for a Deployment another HPA already targets."""
    live = observed(service("ollama"), deployment("ollama", True))
    live.children[("HorizontalPodAutoscaler", "chat-ollama")] = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "chat-ollama"},
    }
    p = plan(resolved(**keda_spec()), live, NOW, facts=KEDA)
    assert "ScaledObject" not in kinds(p) and "HorizontalPodAutoscaler" not in kinds(p)
    del live.children[("HorizontalPodAutoscaler", "chat-ollama")]  # pruned; its event reconciles
    assert "ScaledObject" in kinds(plan(resolved(**keda_spec()), live, NOW, facts=KEDA))


def test_keda_to_hpa_waits_for_the_scaled_object_to_go_before_applying_the_hpa() -> None:
    live = observed(service("ollama"), deployment("ollama", True))
    live.children[("ScaledObject", "chat-ollama")] = {
        "kind": "ScaledObject",
        "metadata": {"name": "chat-ollama"},
    }
    p = plan(resolved(stage="staging"), live, NOW, facts=KEDA)
    assert "HorizontalPodAutoscaler" not in kinds(p) and "ScaledObject" not in kinds(p)
    del live.children[("ScaledObject", "chat-ollama")]
    assert "HorizontalPodAutoscaler" in kinds(plan(resolved(stage="staging"), live, NOW, facts=KEDA))


def test_a_service_keda_scaled_to_zero_is_done_and_says_what_wakes_it() -> None:
    spec = keda_spec(minReplicas=0, keda={"serverAddress": PROMETHEUS, "wakeQuery": WAKE})
    zero = deployment("ollama", False)
    zero["status"] = {"observedGeneration": 1, "replicas": 0}
    p = plan(resolved(**spec), observed(service("ollama"), zero), NOW, facts=KEDA)
    ready = conditions(p)["Ready"]
    assert (ready.status, ready.reason) == ("False", "ScaledToZero")
    assert "spec.autoscaling.keda.wakeQuery" in ready.message and "fail" in ready.message
    assert conditions(p)["Reconciling"].status == "False"
    assert conditions(p)["Stalled"].status == "False"


def test_runtime_auto_choosing_vllm_still_needs_the_prometheus_address() -> None:
    """Admission cannot know what runtime auto chooses in dev; resolve() says it (Stalled InvalidSpec)."""
    with pytest.raises(SpecError, match=r"spec\.autoscaling\.keda\.serverAddress: autoscaler keda reads"):
        resolved(
            expectedConcurrency=20,
            resources={"gpu": {"count": 1}},
            autoscaling={"autoscaler": "keda"},
        )
    ok = resolved(
        expectedConcurrency=20,
        resources={"gpu": {"count": 1}},
        autoscaling={"autoscaler": "keda", "keda": {"serverAddress": PROMETHEUS}},
    )
    assert ok.runtime.value == "vllm" and ok.autoscaling is not None
    assert ok.autoscaling.keda.server_address == PROMETHEUS
