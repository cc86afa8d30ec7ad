"""spec.model.source: resolve and render. The s3 and gcs download step itself is run in
test_fetch_s3.py (against versitygw) and test_fetch_gcs.py."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from llmstage.api.models import LLMService
from llmstage.render import render, render_deployment
from llmstage.resolve import resolve
from llmstage.resolve.resolved import BucketSource, OCISource, PVCSource, Resolved, SecretKeyRef

from testkit.render_fixtures import (
    PRODUCTION_VLLM,
    PRODUCTION_VLLM_HF_MIRROR,
    PRODUCTION_VLLM_LORA_SOURCES,
    PRODUCTION_VLLM_SOURCE_GCS,
    PRODUCTION_VLLM_SOURCE_OCI_LORA,
    PRODUCTION_VLLM_SOURCE_PVC,
    PRODUCTION_VLLM_SOURCE_S3,
)

LOCAL_SOURCES = [
    PRODUCTION_VLLM_SOURCE_PVC,
    PRODUCTION_VLLM_SOURCE_S3,
    PRODUCTION_VLLM_SOURCE_GCS,
    PRODUCTION_VLLM_SOURCE_OCI_LORA,
]
LOCAL_IDS = ["pvc", "s3", "gcs", "oci"]


def pod_spec(resolved: Resolved) -> dict[str, Any]:
    spec: dict[str, Any] = render_deployment(resolved)["spec"]["template"]["spec"]
    return spec


def container(resolved: Resolved, name: str) -> dict[str, Any]:
    spec = pod_spec(resolved)
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c["env"]}


# ---------------------------------------------------------------- resolve


def service(**spec: Any) -> LLMService:
    body = {
        "metadata": {"name": "chat", "namespace": "t"},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }
    return LLMService.model_validate(body)


GPU = {"gpu": {"count": 1, "product": "NVIDIA-L4"}}


def test_the_hugging_face_source_is_the_old_field_with_a_mirror() -> None:
    old = resolve(service(runtime="vllm", resources=GPU, model={"name": "x", "huggingFaceId": "org/m"}))
    new = resolve(
        service(
            runtime="vllm",
            resources=GPU,
            model={"name": "x", "source": {"huggingFace": {"id": "org/m", "endpoint": "https://m.local"}}},
        )
    )
    assert old.model.hugging_face_id == new.model.hugging_face_id == "org/m"
    assert (old.model.source, new.model.source) == (None, None)
    assert new.model.hugging_face_endpoint == "https://m.local"


def test_s3_defaults_to_aws_virtual_hosted_and_minio_is_path_style() -> None:
    def source(s3: dict[str, Any]) -> Any:
        model = {"name": "llama3.1:8b", "source": {"s3": s3}}
        return resolve(service(runtime="vllm", resources=GPU, model=model)).model.source

    assert source({"url": "s3://models/llama/"}) == BucketSource(
        "s3", "models", "llama/", "https://s3.us-east-1.amazonaws.com", "us-east-1", True, None
    )
    assert source({"url": "s3://my.models/l", "region": "eu-west-1"}).virtual_host is False  # dotted name
    minio = source(
        {"url": "s3://models", "endpoint": "http://minio:9000", "credentialsSecretRef": {"name": "k"}}
    )
    assert (minio.prefix, minio.endpoint, minio.virtual_host, minio.credentials_secret) == (
        "",
        "http://minio:9000",
        False,
        "k",
    )


def test_a_local_source_needs_no_hugging_face_id_and_the_catalog_still_sizes_it() -> None:
    """The catalog is looked up by spec.model.name, so a catalogued name keeps its memory fit."""
    resolved = resolve(
        service(
            runtime="vllm",
            resources=GPU,
            model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "m"}}},
        )
    )
    assert resolved.model.hugging_face_id == ""
    assert resolved.model.source == PVCSource("m", "/")
    assert resolved.memory_fit.fits is True
    # Gated on the Hub, but the claim holds the files: no warning about a missing token.
    assert "GatedModelWithoutToken" not in {w.reason for w in resolved.warnings}


def test_an_uncatalogued_local_model_asks_for_its_architecture() -> None:
    model = {"name": "acme-7b", "source": {"oci": {"image": "r.local/acme-7b:1", "path": "/model"}}}
    resolved = resolve(service(runtime="vllm", resources=GPU, model=model))
    assert resolved.model.source == OCISource("r.local/acme-7b:1", "/model")
    assert resolved.memory_fit.fits is None
    assert "set spec.model.architecture" in resolved.memory_fit.message
    shaped = {**model, "architecture": {"parametersBillion": 7, "layers": 32, "kvHeads": 8, "headDim": 128}}
    assert resolve(service(runtime="vllm", resources=GPU, model=shaped)).memory_fit.fits is not None


def test_ollama_stages_pull_the_tag_and_say_the_source_is_vllms() -> None:
    resolved = resolve(service(model={"name": "llama3.1:8b", "source": {"s3": {"url": "s3://models/llama"}}}))
    assert resolved.runtime.value == "ollama"
    (finding,) = [w for w in resolved.warnings if w.reason == "ModelSourceNotForOllama"]
    assert "spec.model.source.s3 holds weights for vLLM" in finding.message
    assert "spec.ollama.registry" in finding.message
    hub = resolve(service(model={"name": "llama3.1:8b", "source": {"huggingFace": {"id": "a/b"}}}))
    assert "ModelSourceNotForOllama" not in {w.reason for w in hub.warnings}


# ---------------------------------------------------------------- render


@pytest.mark.parametrize("resolved", LOCAL_SOURCES, ids=LOCAL_IDS)
def test_local_weights_run_offline(resolved: Resolved) -> None:
    """No container may call huggingface.co for the base model: vLLM gets HF_HUB_OFFLINE=1 and a
    local directory; no step downloads the base model from the Hub."""
    server = container(resolved, "server")
    assert env_of(server)["HF_HUB_OFFLINE"]["value"] == "1"
    assert server["args"][0].startswith("/")
    assert "--revision" not in " ".join(server["args"])
    for init in pod_spec(resolved).get("initContainers", []):
        assert "LLMSTAGE_MODEL" not in env_of(init), init["name"]
        assert "HF_ENDPOINT" not in env_of(init)
    text = json.dumps(render(resolved))
    assert "huggingface.co" not in text


def test_the_hub_server_reads_the_cache_offline_without_the_token_and_the_mirror_reaches_both() -> None:
    """The download step gets HF_TOKEN and fetches what vLLM reads; the server runs offline."""
    resolved = replace(PRODUCTION_VLLM, hugging_face_token_secret_ref=SecretKeyRef("hf-token", "token"))
    server, download = env_of(container(resolved, "server")), env_of(container(resolved, "download-model"))
    assert server["HF_HUB_OFFLINE"]["value"] == "1" and "HF_TOKEN" not in server
    assert download["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    assert "HF_HUB_OFFLINE" not in download
    for name in ("download-model", "server"):
        env = env_of(container(PRODUCTION_VLLM_HF_MIRROR, name))
        assert env["HF_ENDPOINT"]["value"] == "https://hf-mirror.internal", name
    assert container(PRODUCTION_VLLM_HF_MIRROR, "server")["args"][:2] == [
        "meta-llama/Llama-3.1-8B-Instruct",
        "--revision=main",
    ]


def test_pvc_and_oci_are_mounted_read_only_and_nothing_downloads_them() -> None:
    pvc = pod_spec(PRODUCTION_VLLM_SOURCE_PVC)
    assert "initContainers" not in pvc
    volumes = {v["name"]: v for v in pvc["volumes"]}
    assert volumes["model-source"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    mount = {"name": "model-source", "mountPath": "/model-source", "readOnly": True}
    assert mount in pvc["containers"][0]["volumeMounts"]
    assert pvc["containers"][0]["args"][0] == "/model-source/llama-3.1-8b-instruct"

    oci = pod_spec(PRODUCTION_VLLM_SOURCE_OCI_LORA)
    volumes = {v["name"]: v for v in oci["volumes"]}
    assert volumes["model-source"]["image"] == {
        "reference": "registry.internal/models/llama-3.1-8b-instruct:v1"
    }
    assert oci["containers"][0]["args"][0] == "/model-source/model"
    # LoRA adapters still come from the Hub, in a step of their own.
    assert [c["name"] for c in oci["initContainers"]] == ["download-lora"]
    root = replace(
        PRODUCTION_VLLM_SOURCE_PVC,
        model=replace(PRODUCTION_VLLM_SOURCE_PVC.model, source=PVCSource("m", "/")),
    )
    assert pod_spec(root)["containers"][0]["args"][0] == "/model-source"


def test_oci_pull_policy_is_passed_on() -> None:
    model = replace(
        PRODUCTION_VLLM.model, hugging_face_id="", source=OCISource("r.local/m:latest", "/", "Always")
    )
    volumes = {v["name"]: v for v in pod_spec(replace(PRODUCTION_VLLM, model=model))["volumes"]}
    assert volumes["model-source"]["image"] == {"reference": "r.local/m:latest", "pullPolicy": "Always"}


def test_bucket_credentials_are_secret_references_only() -> None:
    env = env_of(container(PRODUCTION_VLLM_SOURCE_S3, "download-model"))
    for name, key in (
        ("LLMSTAGE_SOURCE_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        ("LLMSTAGE_SOURCE_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    ):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "models-s3", "key": key}}}
    assert env["LLMSTAGE_SOURCE_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert not any(
        k.startswith("LLMSTAGE_SOURCE_ACCESS")
        for k in env_of(container(PRODUCTION_VLLM_SOURCE_GCS, "download-model"))
    )
    # The server never sees bucket credentials.
    assert not any(
        k.startswith("LLMSTAGE_SOURCE") for k in env_of(container(PRODUCTION_VLLM_SOURCE_S3, "server"))
    )


def test_the_typed_offline_setting_wins_over_spec_vllm_env() -> None:
    """The fixture's spec.vllm.env sets HF_HUB_OFFLINE=0: dropped, not duplicated."""
    names = [e["name"] for e in container(PRODUCTION_VLLM_SOURCE_S3, "server")["env"]]
    assert names.count("HF_HUB_OFFLINE") == 1
    assert env_of(container(PRODUCTION_VLLM_SOURCE_S3, "server"))["HF_HUB_OFFLINE"]["value"] == "1"


# ---------------------------------------------------------------- LoRA adapters from the same sources


def test_adapters_resolve_their_sources() -> None:
    adapters = [
        {"name": "sql", "huggingFaceId": "org/sql-lora"},
        {"name": "support", "source": {"huggingFace": {"id": "org/support-lora", "revision": "v2"}}},
        {"name": "legal", "source": {"pvc": {"claimName": "adapters", "path": "/legal"}}},
        {"name": "faq", "source": {"s3": {"url": "s3://adapters/faq", "endpoint": "http://minio:9000"}}},
    ]
    lora = resolve(service(runtime="vllm", resources=GPU, lora={"adapters": adapters})).vllm.lora
    assert lora is not None
    assert [(a.hugging_face_id, a.revision) for a in lora.adapters[:2]] == [
        ("org/sql-lora", None),
        ("org/support-lora", "v2"),
    ]
    assert lora.adapters[2].source == PVCSource("adapters", "/legal")
    faq = lora.adapters[3].source
    assert isinstance(faq, BucketSource) and (faq.bucket, faq.prefix) == ("adapters", "faq")


def test_adapters_from_a_claim_an_image_and_a_bucket_are_where_vllm_is_told() -> None:
    spec = pod_spec(PRODUCTION_VLLM_LORA_SOURCES)
    args = spec["containers"][0]["args"]
    modules = {m["name"]: m["path"] for m in (json.loads(a) for a in args if a.startswith("{"))}
    assert modules == {
        "sql": "/models/lora/acme--llama31-8b-sql-lora",
        "support": "/lora-source/1/support",
        "legal": "/models/lora/s3/adapters/legal-v3",
        "faq": "/lora-source/3",
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["lora-source-1"]["persistentVolumeClaim"] == {"claimName": "adapters", "readOnly": True}
    assert volumes["lora-source-3"]["image"] == {"reference": "registry.internal/adapters/faq:v1"}
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["lora-source-1"] == {
        "name": "lora-source-1",
        "mountPath": "/lora-source/1",
        "readOnly": True,
    }
    assert [c["name"] for c in spec["initContainers"]] == ["download-model", "download-lora-2"]
    hub = env_of(container(PRODUCTION_VLLM_LORA_SOURCES, "download-model"))
    assert [a["repo"] for a in json.loads(hub["LLMSTAGE_LORA"]["value"])] == ["acme/llama31-8b-sql-lora"]
    bucket = env_of(container(PRODUCTION_VLLM_LORA_SOURCES, "download-lora-2"))
    assert bucket["LLMSTAGE_SOURCE_DIR"]["value"] == modules["legal"]
