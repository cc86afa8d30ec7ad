"""Argo CD health for LLMService: the Lua check (package data) and the argocd-cm snippet shipping it.

Argo CD shows no health for a custom resource without such a check, so an Application with a
broken LLMService would stay Healthy. Flux needs nothing: the status is kstatus-compatible.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

HEALTH_KEY = "resource.customizations.health.llmstage.io_LLMService"
ARGOCD_NAMESPACE = "argocd"


@cache
def argocd_health_lua() -> str:
    """The Lua health check, as Argo CD runs it (global `obj`, returns {status, message})."""
    return resources.files("llmstage").joinpath("data/argocd-health.lua").read_text(encoding="utf-8")


def argocd_cm_patch(namespace: str = ARGOCD_NAMESPACE) -> str:
    """The argocd-cm ConfigMap entry, for `kubectl patch`/kustomize or a chart's argocd-cm values."""
    body = "".join(f"    {line}\n" if line else "\n" for line in argocd_health_lua().splitlines())
    return (
        "# Merge into Argo CD's argocd-cm ConfigMap, e.g.\n"
        f"#   kubectl -n {namespace} patch configmap argocd-cm --patch-file argocd-cm-llmstage.yaml\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        f"  namespace: {namespace}\n"
        "  labels:\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {HEALTH_KEY}: |\n"
        f"{body}"
    )
