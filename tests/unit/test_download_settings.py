"""spec.vllm.download: the download steps' memory, the Hub's Xet backend and the bucket step's image,
per service and from the install's serving defaults (resolve/download.py)."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.api.defaults import ServingDefaults
from llmstage.api.models import LLMService
from llmstage.cli.run import StartError, _with_download_image
from llmstage.render import render_deployment
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.download import DEFAULT_DOWNLOAD_IMAGE
from llmstage.resolve.resolved import Resolved

GPU = {"gpu": {"count": 1, "product": "NVIDIA-L4"}}
S3 = {"s3": {"url": "s3://models/llama", "endpoint": "http://minio.storage.svc:9000"}}
XET = (
    "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_SIZE",
    "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_PERFILE_SIZE",
    "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT",
)


def resolved(
    defaults: ServingDefaults | None = None, source: dict[str, Any] | None = None, **vllm: Any
) -> Resolved:
    model: dict[str, Any] = {"name": "llama3.1:8b", **({"source": source} if source else {})}
    service = LLMService.model_validate(
        {
            "metadata": {"name": "chat", "namespace": "t"},
            "spec": {"runtime": "vllm", "model": model, "resources": GPU, "vllm": vllm},
        }
    )
    return resolve(service, serving_defaults=defaults)


def init_container(r: Resolved, name: str = "download-model") -> dict[str, Any]:
    spec = render_deployment(r)["spec"]["template"]["spec"]
    found: dict[str, Any] = next(c for c in spec["initContainers"] if c["name"] == name)
    return found


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_by_default_the_hub_step_has_4gi_and_xets_buffers_a_sixteenth_a_64th_and_a_quarter() -> None:
    step = init_container(resolved())
    assert step["resources"]["limits"] == {"memory": "4Gi"}
    assert step["resources"]["requests"]["memory"] == "512Mi"
    mib = 2**20
    assert {k: int(v) for k, v in env(step).items() if k in XET} == {
        "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_SIZE": 256 * mib,
        "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_PERFILE_SIZE": 64 * mib,
        "HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT": 1024 * mib,
    }
    assert "HF_HUB_DISABLE_XET" not in env(step)


def test_the_memory_limit_sizes_every_download_step_and_xets_buffers() -> None:
    hub = init_container(resolved(download={"memory": "16Gi"}))
    assert hub["resources"]["limits"] == {"memory": "16Gi"}
    assert int(env(hub)["HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT"]) == 4 * 2**30
    bucket = init_container(resolved(source=S3, download={"memory": "300Mi"}))
    assert bucket["resources"]["limits"] == {"memory": "300Mi"}
    assert bucket["resources"]["requests"]["memory"] == "300Mi"  # never above the limit


def test_too_little_memory_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        resolved(download={"memory": "128Mi"})
    assert err.value.field == "spec.vllm.download.memory"
    assert "set at least 256Mi" in err.value.message


def test_xet_off_downloads_over_plain_http() -> None:
    step = init_container(resolved(download={"xet": False}))
    assert env(step)["HF_HUB_DISABLE_XET"] == "1"
    assert not set(XET) & set(env(step))


def test_xet_settings_in_spec_vllm_env_win_without_duplicates() -> None:
    step = init_container(resolved(env={"HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT": "2147483648"}))
    names = [e["name"] for e in step["env"]]
    assert names.count("HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT") == 1
    assert env(step)["HF_XET_RECONSTRUCTION_DOWNLOAD_BUFFER_LIMIT"] == "2147483648"
    off = init_container(resolved(download={"xet": False}, env={"HF_HUB_DISABLE_XET": "1"}))
    assert [e["name"] for e in off["env"]].count("HF_HUB_DISABLE_XET") == 1


def test_the_bucket_step_runs_llmstages_image_the_service_the_install_or_the_default() -> None:
    assert init_container(resolved(source=S3))["image"] == DEFAULT_DOWNLOAD_IMAGE
    install = ServingDefaults(download_image="registry.internal/llmstage:0.1.0")
    assert init_container(resolved(install, source=S3))["image"] == "registry.internal/llmstage:0.1.0"
    own = resolved(install, source=S3, download={"image": "mirror.acme/llmstage:0.1.0"})
    assert init_container(own)["image"] == "mirror.acme/llmstage:0.1.0"
    # The Hugging Face step stays in the vLLM image, which has huggingface_hub.
    assert init_container(resolved(install))["image"].startswith("vllm/vllm-openai:")


def test_llmstage_run_passes_its_image_under_the_defaults_files() -> None:
    assert _with_download_image(None, None) is None
    assert _with_download_image(None, "reg/llmstage:1").download_image == "reg/llmstage:1"
    mirror = ServingDefaults(download_image="mirror/llmstage:1", image_registry="mirror.internal")
    assert _with_download_image(mirror, "reg/llmstage:1") is mirror  # the platform's choice wins
    filled = _with_download_image(ServingDefaults(image_registry="mirror.internal"), "reg/llmstage:1")
    assert (filled.download_image, filled.image_registry) == ("reg/llmstage:1", "mirror.internal")
    with pytest.raises(StartError, match="--download-image 'not an image!' is not an image reference"):
        _with_download_image(None, "not an image!")
