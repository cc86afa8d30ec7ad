"""spec.model.source: resolve, render, and the bucket download step run for real.

The S3/GCS download step (operator/llmstage/render/bucket_download.py) is run exactly as the
Deployment renders it, against stand-ins served on 127.0.0.1: an S3-compatible store that checks
each request's SigV4 Authorization header and serves ListObjects (paged) and GetObject, and a GKE
metadata server. Never against real S3 or GCS.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from llmstage.api.models import LLMService
from llmstage.render import render, render_deployment
from llmstage.render.bucket_download import sigv4_headers
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


# ---------------------------------------------------------------- SigV4


def test_sigv4_matches_the_aws_documentation_example() -> None:
    """AWS S3 API reference, "Signature Calculations for the Authorization Header: Transferring
    Payload in a Single Chunk", example GET Bucket (List Objects): its published signature."""
    headers = sigv4_headers(
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/",
        {"max-keys": "2", "prefix": "J"},
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        now=datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


# ---------------------------------------------------------------- the download step, run for real

ACCESS, SECRET = "AKIASTANDIN", "stand-in/secret+key"
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<access>[^/]+)/(?P<day>\d{8})/(?P<region>[a-z0-9-]+)/s3/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


class StandIn(ThreadingHTTPServer):
    """An S3-compatible store (path style) and a GKE metadata server, on one port."""

    objects: dict[str, bytes]  # "bucket/key" -> body
    mode: str  # "sigv4" | "bearer"
    page_size = 2
    requests: list[str]
    refused: list[str]


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/xml") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self, path: str, query: dict[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        if self.server.mode == "bearer":
            return header == "Bearer stand-in-token"
        match = AUTH.match(header)
        if (
            not match
            or match["access"] != ACCESS
            or match["signed"] != "host;x-amz-content-sha256;x-amz-date"
        ):
            return False
        moment = datetime.datetime.strptime(self.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
        # What the request looks like on the wire, signed again with the secret the store knows.
        expected = sigv4_headers(
            "GET",
            self.headers["Host"],
            path,
            query,
            access_key=ACCESS,
            secret_key=SECRET,
            region=match["region"],
            now=moment,
        )
        return expected["Authorization"] == header

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.server.requests.append(self.path)
        if url.path.startswith("/computeMetadata/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, b"no Metadata-Flavor")
            return self.reply(
                200, json.dumps({"access_token": "stand-in-token"}).encode(), "application/json"
            )
        raw_path = urllib.parse.unquote(url.path)
        if not self.authorised(url.path if self.server.mode == "bearer" else raw_path, query):
            self.server.refused.append(self.path)
            return self.reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        bucket, _, key = raw_path.lstrip("/").partition("/")
        if key:
            body = self.server.objects.get(f"{bucket}/{key}")
            return (
                self.reply(200, body, "application/octet-stream")
                if body is not None
                else self.reply(404, b"")
            )
        keys = sorted(k.partition("/")[2] for k in self.server.objects if k.startswith(bucket + "/"))
        keys = [k for k in keys if k.startswith(query.get("prefix", "")) and k > query.get("marker", "")]
        page, truncated = keys[: self.server.page_size], len(keys) > self.server.page_size
        sizes = {k: len(self.server.objects[f"{bucket}/{k}"]) for k in page}
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{size}</Size></Contents>" for k, size in sizes.items()
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><IsTruncated>{str(truncated).lower()}</IsTruncated>{contents}"
            "</ListBucketResult>"
        )
        return self.reply(200, xml.encode())


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn(("127.0.0.1", 0), Handler)
    server.objects = {
        "models/llama/config.json": b'{"architectures": ["LlamaForCausalLM"]}',
        "models/llama/tokenizer.json": b"{}",
        "models/llama/model-00001-of-00002.safetensors": b"a" * 3000,
        "models/llama/model-00002-of-00002.safetensors": b"b" * 1000,
        "models/llama/sub dir/notes+1.txt": b"spaces and plus signs in a key",
        "models/llama/": b"",  # a folder marker, as consoles create them
        "models/llama-v2/config.json": b"a sibling prefix: never downloaded",
    }
    server.mode = "sigv4"
    server.requests, server.refused = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_bucket_step(
    resolved: Resolved, stand_in: StandIn, tmp_path: Path, step_name: str = "download-model", **overrides: str
) -> subprocess.CompletedProcess[str]:
    """A bucket step's command and variables, with the stand-in as the endpoint, the cache volume
    under tmp_path and the Secret's values where the kubelet would put them."""
    step = container(resolved, step_name)
    env = {e["name"]: e["value"] for e in step["env"] if "value" in e}
    host = f"127.0.0.1:{stand_in.server_address[1]}"
    env |= {
        "PATH": os.environ["PATH"],
        "LLMSTAGE_SOURCE_ENDPOINT": f"http://{host}",
        "LLMSTAGE_SOURCE_DIR": str(tmp_path) + env["LLMSTAGE_SOURCE_DIR"],
        "GCE_METADATA_HOST": host,
        "NO_PROXY": "*",
    }
    secrets = {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    for variable in step["env"]:
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["key"] in secrets:
            env[variable["name"]] = secrets[ref["key"]]
    env |= overrides
    return subprocess.run(
        [sys.executable, *step["command"][1:]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def s3_from(stand_in: StandIn, prefix: str = "llama") -> Resolved:
    source = replace(PRODUCTION_VLLM_SOURCE_S3.model.source, bucket="models", prefix=prefix)  # type: ignore[type-var]
    return replace(PRODUCTION_VLLM_SOURCE_S3, model=replace(PRODUCTION_VLLM_SOURCE_S3.model, source=source))


def test_the_s3_step_downloads_the_prefix_where_vllm_reads_it(stand_in: StandIn, tmp_path: Path) -> None:
    resolved = s3_from(stand_in)
    result = run_bucket_step(resolved, stand_in, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stand_in.refused == []
    served = container(resolved, "server")["args"][0]
    target = Path(str(tmp_path) + served)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "sub dir/notes+1.txt",
        "tokenizer.json",
    ]
    assert (target / "model-00001-of-00002.safetensors").read_bytes() == b"a" * 3000
    assert not (tmp_path / "models" / "s3" / "models" / "llama-v2").exists()  # the sibling prefix
    lists = [r for r in stand_in.requests if "prefix=" in r]
    assert len(lists) >= 3  # six keys under the prefix, two per page

    # A restart (or a second pod on the shared cache) lists again and fetches nothing.
    stand_in.requests.clear()
    again = run_bucket_step(resolved, stand_in, tmp_path)
    assert again.returncode == 0, again.stderr
    assert all("prefix=" in r for r in stand_in.requests), stand_in.requests
    assert "config.json is in the cache" in again.stdout


def test_a_wrong_secret_stops_the_step_with_what_to_check(stand_in: StandIn, tmp_path: Path) -> None:
    result = run_bucket_step(s3_from(stand_in), stand_in, tmp_path, LLMSTAGE_SOURCE_SECRET_ACCESS_KEY="wrong")
    assert result.returncode == 1
    assert "HTTP 403: check the Secret of credentialsSecretRef" in result.stderr


def test_an_empty_prefix_stops_the_step(stand_in: StandIn, tmp_path: Path) -> None:
    result = run_bucket_step(s3_from(stand_in, prefix="nothing-here"), stand_in, tmp_path)
    assert result.returncode == 1
    assert "no objects under s3://models/nothing-here/" in result.stderr


def test_the_gcs_step_uses_the_workload_identity_token(stand_in: StandIn, tmp_path: Path) -> None:
    stand_in.mode = "bearer"
    stand_in.objects = {k.replace("models/", "acme_models/", 1): v for k, v in stand_in.objects.items()}
    source = replace(PRODUCTION_VLLM_SOURCE_GCS.model.source, prefix="llama")  # type: ignore[type-var]
    resolved = replace(
        PRODUCTION_VLLM_SOURCE_GCS, model=replace(PRODUCTION_VLLM_SOURCE_GCS.model, source=source)
    )
    result = run_bucket_step(resolved, stand_in, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stand_in.refused == []
    assert sum("computeMetadata" in r for r in stand_in.requests) == 1  # one token for the whole step
    assert (tmp_path / "models" / "gcs" / "acme_models" / "llama" / "config.json").is_file()


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


def test_an_adapter_bucket_step_downloads_where_vllm_is_told(stand_in: StandIn, tmp_path: Path) -> None:
    stand_in.objects = {
        "adapters/legal-v3/adapter_config.json": b'{"r": 16, "peft_type": "LORA"}',
        "adapters/legal-v3/adapter_model.safetensors": b"w" * 512,
    }
    result = run_bucket_step(PRODUCTION_VLLM_LORA_SOURCES, stand_in, tmp_path, "download-lora-2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert stand_in.refused == []
    target = tmp_path / "models" / "lora" / "s3" / "adapters" / "legal-v3"
    assert sorted(p.name for p in target.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert "warning" not in result.stdout
