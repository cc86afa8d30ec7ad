"""Server-side dry-run of rendered objects, and what the API server changed in them (tests only)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def server_side_dry_run(kubectl: Kubectl, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    res = kubectl(
        "apply",
        "--server-side",
        "--field-manager=llmstage",
        "--validate=strict",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    out = json.loads(res.stdout)
    items: list[dict[str, Any]] = out["items"] if out.get("kind") == "List" else [out]
    return items


def contained(sent: Any, returned: Any, path: str = "") -> list[str]:
    """Where `returned` lost or changed something `sent` had (the server only adds defaults)."""
    if isinstance(sent, dict):
        if not isinstance(returned, dict):
            return [f"{path}: not an object"]
        return [
            problem
            for key, value in sent.items()
            for problem in (
                contained(value, returned[key], f"{path}.{key}")
                if key in returned
                else [f"{path}.{key}: dropped"]
            )
        ]
    if isinstance(sent, list):
        if not isinstance(returned, list) or len(sent) != len(returned):
            return [f"{path}: list changed"]
        return [
            p
            for i, (s, r) in enumerate(zip(sent, returned, strict=True))
            for p in contained(s, r, f"{path}[{i}]")
        ]
    # Quantities come back as strings (nvidia.com/gpu: 1 -> "1").
    return [] if sent == returned or str(sent) == str(returned) else [f"{path}: {sent!r} -> {returned!r}"]
