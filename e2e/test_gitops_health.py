"""GitOps health on live objects: what Argo CD (the packaged Lua health check, run as Argo CD runs
it) and Flux (kstatus) make of the LLMService while it serves, while a promotion waits for GPUs
no node has, once it stalls, and when the promotion is fixed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.runtimes import for_this_cluster
from testkit import wait_until
from testkit.chart import REPO, ChartRelease
from testkit.lua_health import argocd_health, conditions, kstatus
from testkit.user import User

EXAMPLES = REPO / "examples"
NAME = "llama31-8b"


@pytest.fixture
def user(kubeconfig: Path, installed: ChartRelease) -> User:
    return User(kubeconfig)


def example(file: str) -> dict[str, Any]:
    return for_this_cluster(yaml.safe_load((EXAMPLES / file).read_text()))


def health(user: User, ns: str) -> tuple[str, str, str, dict[str, Any]]:
    obj = user.get("llmservice", NAME, ns)
    status, message = argocd_health(obj)
    return status, message, kstatus(obj), obj


def test_argo_cd_and_flux_follow_a_promotion_that_stalls_and_is_fixed(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    ns = new_namespace("health")
    user.kubectl("create", "secret", "generic", "llama31-8b-api-key", "-n", ns, "--from-literal=api-key=k")
    user.kubectl("create", "secret", "generic", "hf-token", "-n", ns, "--from-literal=token=hf_e2e")
    user.apply(ns, example("llama31-8b-staging.yaml"))
    user.wait_ready(NAME, ns, "ollama", timeout=300)
    status, message, flux, obj = health(user, ns)
    assert (status, flux) == ("Healthy", "Current"), (message, obj["status"])
    assert message == conditions(obj)["Ready"]["message"]

    # Production on a GPU no node has: the vLLM pods stay Pending while Ollama keeps serving.
    stuck = example("llama31-8b-production.yaml")
    stuck["spec"]["resources"]["gpu"]["product"] = "NVIDIA-B200"
    user.apply(ns, stuck)
    seen: list[tuple[str, str]] = []

    def degraded() -> tuple[str, str, str, dict[str, Any]] | None:
        now = health(user, ns)
        if not seen or seen[-1] != (now[0], now[2]):
            seen.append((now[0], now[2]))
        return now if now[0] == "Degraded" else None

    status, message, flux, obj = wait_until(
        degraded, timeout=180, interval=0.5, what="Argo CD health Degraded"
    )
    print(f"health while promoting to a missing GPU: {seen}")
    assert ("Progressing", "InProgress") in seen and seen.index(("Progressing", "InProgress")) < len(seen) - 1
    assert flux == "Failed"
    assert message == conditions(obj)["Stalled"]["message"]
    assert conditions(obj)["Stalled"]["reason"] == "Unschedulable"
    # Stalled, yet still serving: the Service still selects the Ollama pods.
    assert user.get("service", NAME, ns)["spec"]["selector"]["llmstage.io/runtime"] == "ollama"
    assert user.ready_endpoints(NAME, ns)

    user.apply(ns, example("llama31-8b-production.yaml"))
    user.wait_ready(NAME, ns, "vllm", timeout=300)
    status, message, flux, obj = health(user, ns)
    assert (status, flux) == ("Healthy", "Current"), (message, json.dumps(obj["status"])[:2000])
    # What Argo CD also shows in the Application: the Deployment the operator made, available.
    deployment = user.get("deployment", f"{NAME}-vllm", ns)
    assert deployment["status"].get("readyReplicas", 0) >= 1
