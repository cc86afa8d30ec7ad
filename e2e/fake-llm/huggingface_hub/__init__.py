"""The stand-in image's huggingface_hub: the two calls llmstage's download-model init container
makes (its program is operator/llmstage/podside/hub_download.py: snapshot_download,
HfApi.list_repo_files), answered without the Hub. A "download" leaves
config.json and an empty model.safetensors in $HF_HOME's layout
(hub/models--ORG--NAME/snapshots/REVISION/), which the stand-in vLLM ignores: enough for the step
to finish and the pod to start, as with the real image and a reachable Hub. Standard library only."""

from __future__ import annotations

import json
import os
from pathlib import Path

__version__ = "0.0.0+llmstage-fake"


def _snapshot(repo_id: str, revision: str | None) -> Path:
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots" / (revision or "fake")


def snapshot_download(
    repo_id: str, revision: str | None = None, local_files_only: bool = False, **_: object
) -> str:
    folder = _snapshot(repo_id, revision)
    if local_files_only:
        if not (folder / "config.json").exists():
            raise FileNotFoundError(f"{repo_id} is not in the cache {folder}")
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_name_or_path": repo_id, "llmstage_fake": True}) + "\n")
    (folder / "model.safetensors").write_bytes(b"")
    return str(folder)


class HfApi:
    def list_repo_files(self, repo_id: str, revision: str | None = None, **_: object) -> list[str]:
        return ["config.json", "model.safetensors"]
