"""Where vLLM reads its weights (spec.model.source): the model argument, the volume, the download.

    source_context(model) -> SourceContext     for templates/vllm-deployment.yaml.j2
    adapter_placements(adapters) -> [AdapterPlacement]   the same for spec.lora.adapters[].source

| source              | download step            | vLLM serves                         | offline |
|---------------------|--------------------------|-------------------------------------|---------|
| Hugging Face (Hub)  | huggingface_hub snapshot | the repository id (from HF_HOME)    | yes     |
| pvc                 | none                     | /model-source/PATH (read-only)      | yes     |
| oci                 | none (the kubelet pulls) | /model-source/PATH (read-only)      | yes     |
| s3, gcs             | llmstage.fetch           | /models/KIND/BUCKET/PREFIX          | yes     |

Offline: the weights are a local directory, or the Hugging Face cache the download step filled, so
vLLM gets HF_HUB_OFFLINE=1 (read through huggingface_hub.constants in vLLM 0.32.0's config,
tokenizer and weight loaders) and never calls huggingface.co, even for a file the directory lacks.
The server then needs no HF_TOKEN: only the download step gets it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from llmstage.api.models import MANAGED_VOLUME_PREFIX, MODEL_SOURCE_MOUNT_PATH
from llmstage.render.pod import CACHE_MOUNT_PATH
from llmstage.resolve.resolved import (
    BucketSource,
    LoRAAdapter,
    ModelInfo,
    OCISource,
    PVCSource,
    WeightsSource,
)

SOURCE_VOLUME = "model-source"
# LoRA adapters are downloaded by the download step and given to vLLM as absolute paths, so vLLM
# never downloads them itself (vllm/lora/utils.py get_adapter_absolute_path: a relative name that
# is no local path is fetched from the Hub at load time).
LORA_DIR = f"{CACHE_MOUNT_PATH}/lora"
# Adapters on a claim or in an image: /lora-source/INDEX, volume lora-source-INDEX.
LORA_SOURCE_ROOT = "/lora-source"
# The Secret keys of spec.model.source.*.credentialsSecretRef: the names AWS tools use, so one
# Secret serves the aws CLI too. The variables the script reads are llmstage's own.
CREDENTIAL_KEYS = (
    ("LLMSTAGE_SOURCE_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID", False),
    ("LLMSTAGE_SOURCE_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", False),
    ("LLMSTAGE_SOURCE_SESSION_TOKEN", "AWS_SESSION_TOKEN", True),  # temporary credentials only
)


# The s3 and gcs download step, in llmstage's own image (resolve/download.py): llmstage/fetch/.
FETCH_COMMAND = ("python", "-m", "llmstage.fetch")


@dataclass(frozen=True)
class SourceContext:
    model: str  # vLLM's positional model argument: a repository id or a local directory
    hub: bool = False  # from Hugging Face: the download step fetches the repository
    bucket: bool = False  # from S3 or GCS: the download step runs llmstage.fetch in llmstage's image
    offline: bool = True  # HF_HUB_OFFLINE=1 for vLLM: every source (the table above)
    hugging_face_endpoint: str | None = None
    volume: dict[str, Any] | None = None  # the model-source volume (pvc, oci)
    mount: dict[str, Any] | None = None
    bucket_env: list[dict[str, Any]] = field(default_factory=list)


def _local(root: str, path: str) -> str:
    """/model-source + /llama -> /model-source/llama; "/" is the root itself."""
    return posixpath.normpath(root + "/" + path.strip("/")) if path.strip("/") else root


def bucket_dir(source: BucketSource, root: str = CACHE_MOUNT_PATH) -> str:
    """On the cache volume, one folder per bucket and prefix: another prefix never mixes in."""
    return _local(f"{root}/{source.kind}/{source.bucket}", source.prefix)


def _bucket_env(source: BucketSource, target: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "LLMSTAGE_SOURCE_KIND", "value": source.kind},
        {"name": "LLMSTAGE_SOURCE_ENDPOINT", "value": source.endpoint},
        {"name": "LLMSTAGE_SOURCE_BUCKET", "value": source.bucket},
        {"name": "LLMSTAGE_SOURCE_PREFIX", "value": source.prefix},
        {"name": "LLMSTAGE_SOURCE_REGION", "value": source.region},
        {"name": "LLMSTAGE_SOURCE_VIRTUAL_HOST", "value": "1" if source.virtual_host else "0"},
        {"name": "LLMSTAGE_SOURCE_DIR", "value": target},
    ]
    if source.credentials_secret:
        for name, key, optional in CREDENTIAL_KEYS:
            ref: dict[str, Any] = {"name": source.credentials_secret, "key": key}
            if optional:
                ref["optional"] = True
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def _volume(name: str, source: PVCSource | OCISource) -> dict[str, Any]:
    if isinstance(source, PVCSource):
        return {"name": name, "persistentVolumeClaim": {"claimName": source.claim_name, "readOnly": True}}
    image: dict[str, Any] = {"reference": source.image}
    if source.pull_policy:
        image["pullPolicy"] = source.pull_policy
    # An image volume is always read-only (KEP-4639); Kubernetes 1.35+ serves it by default.
    return {"name": name, "image": image}


def source_context(model: ModelInfo) -> SourceContext:
    source = model.source
    if source is None:
        return SourceContext(
            model=model.hugging_face_id, hub=True, hugging_face_endpoint=model.hugging_face_endpoint
        )
    if isinstance(source, PVCSource | OCISource):
        return SourceContext(
            model=_local(MODEL_SOURCE_MOUNT_PATH, source.path),
            volume=_volume(SOURCE_VOLUME, source),
            mount={"name": SOURCE_VOLUME, "mountPath": MODEL_SOURCE_MOUNT_PATH, "readOnly": True},
        )
    target = bucket_dir(source)
    return SourceContext(model=target, bucket=True, bucket_env=_bucket_env(source, target))


def lora_dir(adapter: LoRAAdapter) -> str:
    """Where the download step puts an adapter from the Hub: one folder per repo and revision."""
    folder = adapter.hugging_face_id.replace("/", "--")
    if adapter.revision:
        folder += "--" + adapter.revision.replace("/", "--")
    return f"{LORA_DIR}/{folder}"


@dataclass(frozen=True)
class AdapterPlacement:
    """Where vLLM finds one adapter, and what puts it there."""

    dir: str  # the path in --lora-modules
    hub: bool  # downloaded by the Hugging Face step (download-model or download-lora)
    volume: dict[str, Any] | None = None  # pvc, oci: lora-source-INDEX
    mount: dict[str, Any] | None = None
    bucket_step: str | None = None  # s3, gcs: the name of its own download step
    bucket_env: list[dict[str, Any]] = field(default_factory=list)


def _placement(index: int, adapter: LoRAAdapter, source: WeightsSource | None) -> AdapterPlacement:
    if source is None:
        return AdapterPlacement(dir=lora_dir(adapter), hub=True)
    if isinstance(source, PVCSource | OCISource):
        name, root = f"{MANAGED_VOLUME_PREFIX}{index}", f"{LORA_SOURCE_ROOT}/{index}"
        return AdapterPlacement(
            dir=_local(root, source.path),
            hub=False,
            volume=_volume(name, source),
            mount={"name": name, "mountPath": root, "readOnly": True},
        )
    target = bucket_dir(source, LORA_DIR)
    env = [
        *_bucket_env(source, target),
        {"name": "LLMSTAGE_SOURCE_EXPECTED", "value": "adapter_config.json"},
        {"name": "LLMSTAGE_SOURCE_FIELD", "value": f"spec.lora.adapters[{index}].source"},
    ]
    return AdapterPlacement(dir=target, hub=False, bucket_step=f"download-lora-{index}", bucket_env=env)


def adapter_placements(adapters: tuple[LoRAAdapter, ...]) -> list[AdapterPlacement]:
    return [_placement(i, adapter, adapter.source) for i, adapter in enumerate(adapters)]
