"""The s3 and gcs model download step run on this machine exactly as the vLLM Deployment renders
it: its command and variables, the cache volume under a temporary directory, the Secret's values
where the kubelet would put them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llmstage.render import render_deployment
from llmstage.resolve.resolved import Resolved

HOSTNAME = "smol-vllm-5c9d8-abcde"  # the pod's name: partial files carry it


def step(resolved: Resolved, name: str) -> dict[str, Any]:
    spec = render_deployment(resolved)["spec"]["template"]["spec"]
    found: dict[str, Any] = next(c for c in spec.get("initContainers", []) if c["name"] == name)
    return found


def step_env(
    resolved: Resolved, name: str, root: Path, endpoint: str, secrets: dict[str, str] | None = None
) -> dict[str, str]:
    rendered = step(resolved, name)
    env = {e["name"]: e["value"] for e in rendered["env"] if "value" in e}
    for variable in rendered["env"]:
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref and secrets and ref["key"] in secrets:
            env[variable["name"]] = secrets[ref["key"]]
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return env | {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # no ~/.aws or gcloud configuration of this machine's user
        "HOSTNAME": HOSTNAME,
        "LLMSTAGE_SOURCE_ENDPOINT": endpoint,
        "LLMSTAGE_SOURCE_DIR": str(root) + env["LLMSTAGE_SOURCE_DIR"],
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to look for here
        "NO_PROXY": "*",
    }


def run_step(env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python -m llmstage.fetch` (the rendered command) with this venv's Python."""
    return subprocess.run(
        [sys.executable, "-m", "llmstage.fetch"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
