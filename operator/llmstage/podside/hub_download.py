"""vLLM's Hugging Face download step: the init container download-model (download-lora when the
weights come from another source), run as `python3 -c` in vLLM's own image.

It downloads the weights into the Hugging Face cache on the cache volume before the server
starts: a 70B model is 141 GB, which no startup probe budget should have to cover. The download
shows in this container's logs (`kubectl logs POD -c download-model`), no probe can kill it, and
the server then loads from the volume. It fetches what vLLM 0.32.0 would
(model_loader/default_loader.py and weight_utils.download_weights_from_hf): the first of
*.safetensors and *.bin the repository has, never original/** (LoadConfig.ignore_patterns), plus
the config, tokenizer and remote-code (*.py) files: the server runs offline from this cache
(HF_HUB_OFFLINE=1), without the token, which only this step gets. Files already in the cache are
not fetched again, and huggingface_hub locks each file, so pods sharing the cache can download at
the same time. With another source (pvc, oci, s3, gcs) the step downloads the LoRA adapters only.

Its settings, from the environment the template sets:

    LLMSTAGE_MODEL, LLMSTAGE_REVISION  the repository and its revision (the revision may be
                                       absent); both absent: no model to download
    LLMSTAGE_LORA                      the adapters from the Hub, JSON [{"repo", "revision", "dir"}],
                                       each downloaded into the folder vLLM's --lora-modules names;
                                       absent: none
    LLMSTAGE_LORA_MAX_RANK             vLLM's --max-lora-rank: an adapter of a higher rank fails
                                       the step, naming spec.lora.maxRank
    HF_HOME, HF_TOKEN, HF_ENDPOINT     huggingface_hub's own

Standard library and huggingface_hub only (vLLM's image has it; llmstage is not installed there).
Annotations are not evaluated, so an image's Python before 3.10 runs it too.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
import sys
from types import ModuleType
from typing import Any

NO_HUB = (
    "llmstage: no huggingface_hub in this image, and vLLM serves from the cache only: "
    "use an image with vLLM's dependencies, or spec.model.source"
)
WEIGHTS = ("*.safetensors", "*.bin")  # the first the repository has, as vLLM picks them
OTHER_FILES = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja", "*.py"]
IGNORE = ["original/**/*"]


def has_weights(folder: str) -> bool:
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return "config.json" in names and any(n.endswith((".safetensors", ".bin")) for n in names)


def download_model(hub: ModuleType, repo: str, revision: str | None) -> None:
    try:  # a restart: what an earlier start downloaded, without asking the Hub
        cached = hub.snapshot_download(repo, revision=revision, local_files_only=True)
    except Exception:
        cached = None
    if cached and has_weights(cached):
        print(f"llmstage: {repo} is in the cache {cached}; the Hub is not asked", flush=True)
        return
    files = hub.HfApi().list_repo_files(repo, revision=revision)
    weights = next((p for p in WEIGHTS if fnmatch.filter(files, p)), WEIGHTS[0])
    print(f"llmstage: downloading {repo} ({weights}) into {os.environ['HF_HOME']}", flush=True)
    hub.snapshot_download(
        repo, revision=revision, allow_patterns=[weights, *OTHER_FILES], ignore_patterns=IGNORE
    )
    print(f"llmstage: {repo} is in the cache", flush=True)


def download_adapters(hub: ModuleType, adapters: list[dict[str, Any]], limit: int) -> None:
    for adapter in adapters:
        repo, folder = adapter["repo"], adapter["dir"]
        config = os.path.join(folder, "adapter_config.json")
        if os.path.exists(config) and any(n.startswith("adapter_model.") for n in os.listdir(folder)):
            print(f"llmstage: LoRA adapter {repo} is in {folder}; the Hub is not asked", flush=True)
        else:
            print(f"llmstage: LoRA adapter {repo} into {folder}", flush=True)
            hub.snapshot_download(repo, revision=adapter["revision"], local_dir=folder)
        with open(config) as f:
            rank = json.load(f).get("r") or 0
        if rank > limit:
            sys.exit(
                f"llmstage: LoRA adapter {repo} has rank {rank}, above vLLM's "
                f"--max-lora-rank {limit}: set spec.lora.maxRank to at least {rank}"
            )


def main() -> None:
    if importlib.util.find_spec("huggingface_hub") is None:
        sys.exit(NO_HUB)
    hub = importlib.import_module("huggingface_hub")
    if "LLMSTAGE_MODEL" in os.environ:
        download_model(hub, os.environ["LLMSTAGE_MODEL"], os.environ.get("LLMSTAGE_REVISION") or None)
    if "LLMSTAGE_LORA" in os.environ:
        limit = int(os.environ["LLMSTAGE_LORA_MAX_RANK"])
        download_adapters(hub, json.loads(os.environ["LLMSTAGE_LORA"]), limit)


if __name__ == "__main__":
    main()
