"""What the download step reads and where it writes: the LLMSTAGE_SOURCE_* variables that
render/source.py sets on the init container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StaticKeys:
    """Keys from the Secret of credentialsSecretRef (the kubelet sets them from secretKeyRefs)."""

    access_key: str
    secret_key: str
    session_token: str | None


@dataclass(frozen=True)
class Source:
    kind: str  # "s3" | "gcs"
    bucket: str
    prefix: str  # "" or ending in "/": a folder, so llama-3.1 never also matches llama-3.1-v2/
    endpoint: str  # scheme://host[:port]
    region: str
    virtual_host: bool  # BUCKET.host (AWS) rather than host/BUCKET
    keys: StaticKeys | None  # None: the platform's credential chain (IRSA, Pod Identity, ...)
    target: str  # the directory vLLM reads
    field: str  # spec.model.source, or spec.lora.adapters[N].source: for the messages
    expected_file: str  # config.json for a model, adapter_config.json for a LoRA adapter

    @property
    def url(self) -> str:
        return f"{'s3' if self.kind == 's3' else 'gs'}://{self.bucket}/{self.prefix}"


def source_from(env: Mapping[str, str]) -> Source:
    prefix = env.get("LLMSTAGE_SOURCE_PREFIX", "")
    access = env.get("LLMSTAGE_SOURCE_ACCESS_KEY_ID") or ""
    secret = env.get("LLMSTAGE_SOURCE_SECRET_ACCESS_KEY") or ""
    return Source(
        kind=env["LLMSTAGE_SOURCE_KIND"],
        bucket=env["LLMSTAGE_SOURCE_BUCKET"],
        prefix=prefix if not prefix or prefix.endswith("/") else prefix + "/",
        endpoint=env["LLMSTAGE_SOURCE_ENDPOINT"].rstrip("/"),
        region=env.get("LLMSTAGE_SOURCE_REGION") or "us-east-1",
        virtual_host=env.get("LLMSTAGE_SOURCE_VIRTUAL_HOST") == "1",
        keys=StaticKeys(access, secret, env.get("LLMSTAGE_SOURCE_SESSION_TOKEN") or None)
        if access and secret
        else None,
        target=env["LLMSTAGE_SOURCE_DIR"],
        field=env.get("LLMSTAGE_SOURCE_FIELD", "spec.model.source"),
        expected_file=env.get("LLMSTAGE_SOURCE_EXPECTED", "config.json"),
    )


def hostname() -> str:
    return os.environ.get("HOSTNAME") or os.uname().nodename
