"""The model download steps of a vLLM pod (spec.vllm.download): their image, memory and the Hub's
Xet backend.

    download_settings(spec, serving_defaults) -> DownloadSettings
    default_download() -> DownloadSettings          what a Resolved without settings renders

The s3 and gcs steps run llmstage's own image (llmstage.fetch: botocore and requests from the
operator's lock, google-auth from its own); the Hugging Face step runs the vLLM image's
huggingface_hub.

Xet: huggingface_hub downloads Xet-backed repositories through hf_xet, whose download buffers
were 2 GB, plus 512 MB per file being downloaded, up to 8 GB (xet-core's reconstruction config;
reported at about 4 GB in Kubernetes init containers, huggingface/huggingface_hub#3300). Since
hf_xet 1.7 it derives them from the memory it may use, the cgroup limit included, and the
variables below (their names are in hf_xet 1.8.0's binary, the real node's image) set them. The
images llmstage runs carry whatever hf_xet their release installed, so the step sets the same
derivation from its own memory limit explicitly: a sixteenth, a sixty-fourth per file, at most a
quarter (snapshot_download's 8 files at once stay within the quarter).
"""

from __future__ import annotations

import math

from llmstage import __version__
from llmstage.api.defaults import ServingDefaults
from llmstage.api.models import LLMServiceSpec
from llmstage.api.quantity import parse_quantity
from llmstage.resolve.errors import SpecError
from llmstage.resolve.resolved import DownloadSettings

# The chart's default image (values image.repository, tag = appVersion): the operator's own.
DEFAULT_DOWNLOAD_IMAGE = f"ghcr.io/llmstage/llmstage:{__version__}"
DEFAULT_MEMORY_LIMIT = "4Gi"
MEMORY_REQUEST = "512Mi"
# Python with botocore or huggingface_hub imported, and a megabyte of buffer: below this it is
# killed before it downloads anything.
MIN_MEMORY_BYTES = 256 * 2**20
MIB = 2**20


def xet_buffers(limit_bytes: int) -> tuple[tuple[str, str], ...]:
    """hf_xet's download buffers from the step's memory limit (bytes, in MiB steps)."""

    def mib(value: float, low: int, high: int) -> str:
        return str(max(low, min(high, math.floor(value / MIB))) * MIB)

    return (
        ("HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_SIZE", mib(limit_bytes / 16, 16, 16 * 1024)),
        ("HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_PERFILE_SIZE", mib(limit_bytes / 64, 4, 2 * 1024)),
        ("HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT", mib(limit_bytes / 4, 64, 64 * 1024)),
    )


def download_settings(spec: LLMServiceSpec, serving_defaults: ServingDefaults | None) -> DownloadSettings:
    asked = spec.vllm.download if spec.vllm else None
    limit = (asked.memory if asked else None) or DEFAULT_MEMORY_LIMIT
    limit_bytes = int(parse_quantity(limit))
    if limit_bytes < MIN_MEMORY_BYTES:
        raise SpecError(
            "spec.vllm.download.memory",
            f"{limit} is below the 256Mi a download step needs (Python and its HTTP client): "
            "set at least 256Mi",
        )
    xet = asked.xet if asked and asked.xet is not None else True
    return DownloadSettings(
        image=(asked.image if asked else None)
        or (serving_defaults.download_image if serving_defaults else None)
        or DEFAULT_DOWNLOAD_IMAGE,
        memory_request=MEMORY_REQUEST if limit_bytes >= parse_quantity(MEMORY_REQUEST) else limit,
        memory_limit=limit,
        xet=xet,
        xet_env=xet_buffers(limit_bytes) if xet else (),
    )


def default_download() -> DownloadSettings:
    limit_bytes = int(parse_quantity(DEFAULT_MEMORY_LIMIT))
    return DownloadSettings(
        image=DEFAULT_DOWNLOAD_IMAGE,
        memory_request=MEMORY_REQUEST,
        memory_limit=DEFAULT_MEMORY_LIMIT,
        xet=True,
        xet_env=xet_buffers(limit_bytes),
    )
