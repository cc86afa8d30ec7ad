"""Run the packaged Argo CD health check the way Argo CD does: global `obj`, Lua 5.1 (gopher-lua)."""

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
