"""spec.model.source: where vLLM's weights come from, with its defaults applied.

    weights(spec) -> Weights               the repository, revision, mirror, or a local source
    weights_of(source, hf_id, revision)    the same for any source (spec.lora.adapters[] too)
    source_findings(spec, runtime) -> [Finding]   a source Ollama cannot use (it pulls the tag)

The source is vLLM's: Ollama pulls spec.model.name from a registry (spec.ollama.registry for a
private one), so a spec promoted from an Ollama stage to a vLLM one keeps the same source.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmstage.api.constants import VLLM_ONLY_SOURCE_KINDS, Runtime
from llmstage.api.spec import LLMServiceSpec
from llmstage.api.spec_parts import ModelSource
from llmstage.resolve.resolved import BucketSource, Finding, OCISource, PVCSource, WeightsSource

DEFAULT_S3_REGION = "us-east-1"
# GCS's XML API speaks the S3 protocol (HMAC keys sign it with SigV4); the region is not checked.
GCS_ENDPOINT = "https://storage.googleapis.com"
GCS_REGION = "auto"


@dataclass(frozen=True)
class Weights:
    hugging_face_id: str | None  # None: not named by the source (the catalog or the model name may)
    revision: str | None
    hugging_face_endpoint: str | None
    source: WeightsSource | None  # None: the Hub


def _split(url: str) -> tuple[str, str]:
    """s3://bucket/a/b/ -> ("bucket", "a/b/")."""
    bucket, _, prefix = url.partition("://")[2].partition("/")
    return bucket, prefix


def weights(spec: LLMServiceSpec) -> Weights:
    return weights_of(spec.model.source, spec.model.hugging_face_id, spec.model.revision)


def weights_of(source: ModelSource | None, hugging_face_id: str | None, revision: str | None) -> Weights:
    if source is None:
        return Weights(hugging_face_id, revision, None, None)
    if source.hugging_face is not None:
        hf = source.hugging_face
        return Weights(hf.id, hf.revision, hf.endpoint, None)
    local: WeightsSource
    if source.pvc is not None:
        local = PVCSource(source.pvc.claim_name, source.pvc.path)
    elif source.oci is not None:
        local = OCISource(source.oci.image, source.oci.path, source.oci.pull_policy)
    elif source.s3 is not None:
        s3 = source.s3
        bucket, prefix = _split(s3.url)
        region = s3.region or DEFAULT_S3_REGION
        local = BucketSource(
            kind="s3",
            bucket=bucket,
            prefix=prefix,
            endpoint=s3.endpoint or f"https://s3.{region}.amazonaws.com",
            region=region,
            # AWS: virtual-hosted style, except for dotted names, which break the wildcard certificate.
            # Other stores (MinIO, Ceph RGW) are addressed path-style, which they all serve.
            virtual_host=s3.endpoint is None and "." not in bucket,
            credentials_secret=s3.credentials_secret_ref.name if s3.credentials_secret_ref else None,
        )
    else:
        assert source.gcs is not None  # ModelSource holds exactly one kind
        gcs = source.gcs
        bucket, prefix = _split(gcs.url)
        local = BucketSource(
            kind="gcs",
            bucket=bucket,
            prefix=prefix,
            endpoint=GCS_ENDPOINT,
            region=GCS_REGION,
            virtual_host=False,
            credentials_secret=gcs.credentials_secret_ref.name if gcs.credentials_secret_ref else None,
        )
    return Weights(None, None, None, local)


def source_findings(spec: LLMServiceSpec, runtime: Runtime) -> list[Finding]:
    """A vLLM-only source in a stage where the runtime decision picked Ollama: it runs, from the tag.

    Not an error: the same spec is promoted from dev (Ollama) to production (vLLM). The CRD rejects
    the source with an explicit runtime ollama, where it can only be a mistake.
    """
    source = spec.model.source
    if runtime != Runtime.OLLAMA or source is None:
        return []
    kinds = [k for k in source.kinds() if k in VLLM_ONLY_SOURCE_KINDS]
    if not kinds:
        return []
    return [
        Finding(
            "ModelSourceNotForOllama",
            f"spec.model.source.{kinds[0]} holds weights for vLLM; the runtime here is Ollama, which pulls "
            f"{spec.model.name!r} from its registry instead (registry.ollama.ai, or spec.ollama.registry: "
            "set it on an offline cluster), so this stage does not read the source",
        )
    ]
