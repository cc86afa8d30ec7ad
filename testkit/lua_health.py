"""GitOps health of an LLMService: the packaged Argo CD health check run the way Argo CD does
(global `obj`, Lua 5.1 as its gopher-lua), and Flux's, kstatus' generic rules for a custom
resource (kubernetes-sigs/cli-utils pkg/kstatus status.go / generic.go), which read the status
without configuration."""

from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51
from llmstage.gitops.health import argocd_health_lua


def _to_lua(runtime: Any, value: Any) -> Any:
    # JSON objects become tables, arrays 1-based tables, null nil: what Argo CD's conversion does.
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the health check returns for `obj`."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(argocd_health_lua())
    return str(result["status"]), str(result["message"])


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def kstatus(obj: dict[str, Any]) -> str:
    """kstatus' generic rules for a custom resource (status.go / generic.go)."""
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    if status.get("observedGeneration") is not None and status["observedGeneration"] != obj["metadata"].get(
        "generation"
    ):
        return "InProgress"
    conds = conditions(obj)
    if conds.get("Reconciling", {}).get("status") == "True":
        return "InProgress"
    if conds.get("Stalled", {}).get("status") == "True":
        return "Failed"
    ready = conds.get("Ready")
    if ready is None:
        return "Current"
    return "Current" if ready["status"] == "True" else "InProgress"
