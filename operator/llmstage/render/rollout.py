"""What a rollout costs a GPU service that may run a single pod: for how long it is unavailable
when its pod is replaced instead of surged, and the finding that says so before it happens.

    outage_seconds(resolved) -> int          up to how long the service has no ready pod
    outage_text(resolved) -> str             the same, in words, for status and Events
    rollout_findings(resolved) -> (Finding, ...)

Pure. The numbers are the renderers' own budgets (render/vllm.py, render/ollama.py): the startup
probe's time for loading the model and, where the new pod brings an empty cache of its own, the
download estimate of the progress deadline. They are upper bounds, not measurements.
"""

from __future__ import annotations

import math

from llmstage.api.constants import Runtime, Stage
from llmstage.render import ollama, vllm
from llmstage.render.pod import min_replicas
from llmstage.resolve.resolved import Finding, Resolved


def _download_seconds(resolved: Resolved) -> int:
    params = resolved.model.parameters_billion
    if resolved.runtime is Runtime.VLLM:
        if params is None:
            return vllm.UNKNOWN_MODEL_DOWNLOAD_SECONDS
        return round(vllm.DOWNLOAD_SECONDS_PER_BILLION_PARAMETERS * params)
    if params is None:
        return ollama.UNKNOWN_MODEL_PULL_SECONDS
    return round(ollama.PULL_SECONDS_PER_BILLION_PARAMETERS * params)


def _load_seconds(resolved: Resolved) -> int:
    params = resolved.model.parameters_billion
    budget = (
        vllm.startup_budget(params) if resolved.runtime is Runtime.VLLM else ollama.startup_budget(params)
    )
    return budget.budget_seconds


def outage_seconds(resolved: Resolved) -> int:
    """Up to how long a one-pod service has no ready pod when the pod is replaced: the new pod's
    load, plus its download where it starts with an empty cache of its own (a claim per pod)."""
    return _load_seconds(resolved) + (_download_seconds(resolved) if resolved.cache.per_pod else 0)


def outage_text(resolved: Resolved) -> str:
    minutes = math.ceil(outage_seconds(resolved) / 60)
    what = "download and load the model" if resolved.cache.per_pod else "load the model"
    return f"unavailable for up to {minutes} minutes, the time the new pod may take to {what}"


def rollout_findings(resolved: Resolved) -> tuple[Finding, ...]:
    """Production GPU services that replace their only pod on every rollout (Recreate: one
    ReadWriteOnce cache that a second pod cannot mount): the outage is known in advance."""
    gpu = resolved.resources.gpu
    if (
        resolved.stage is not Stage.PRODUCTION
        or gpu is None
        or gpu.count < 1
        or not resolved.cache.shared_single_attach
        or min_replicas(resolved) != 1
    ):
        return ()
    return (
        Finding(
            "RolloutReplacesOnlyPod",
            f"one pod and a {resolved.cache.access_mode} model cache that a second pod cannot mount: every "
            f"rollout stops the pod before its replacement starts, so the service is "
            f"{outage_text(resolved)}. For rollouts that keep serving, let two pods run: "
            "spec.cache.mode PerPod (each pod downloads the model) or spec.cache.accessMode "
            "ReadWriteMany with a class that offers it; the new pod then starts beside the old one "
            "when the cluster has room for it",
        ),
    )
