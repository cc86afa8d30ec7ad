"""The gcs download step (llmstage.fetch, run as the Deployment renders it) with Workload Identity,
against a stand-in on 127.0.0.1 for GKE's metadata server and GCS's JSON API (objects.list and
objects.get with alt=media, Range and ifGenerationMatch). Not against GCS: no GCS-compatible
server is built here.

The stand-in hands out access tokens that live 60 s, inside the step's refresh margin, and accepts
only the newest: the step works only if it fetches a new token before each request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from llmstage.resolve.resolved import BucketSource, Resolved

from testkit.fetchstep import run_step, step_env
from testkit.render_fixtures import PRODUCTION_VLLM_SOURCE_GCS

BUCKET = "acme_models"
OBJECTS = {
    "llama/config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "llama/model.safetensors": bytes(range(256)) * 8192,  # 2 MiB
    "llama/tokenizer.json": b"{}",
}


class GCS(ThreadingHTTPServer):
    objects: dict[str, bytes]
    md5: dict[str, str]  # what the metadata says (a test may make it lie)
    tokens: list[str]
    refused: list[str]
    cut_after: int | None  # the next media download stops after these many bytes
    ranges: list[str]


class Handler(BaseHTTPRequestHandler):
    server: GCS

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def metadata(self, path: str) -> None:
        flavor = {"Metadata-Flavor": "Google", "Content-Type": "text/plain"}
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, b"", flavor)
        if path in ("/", ""):
            return self.reply(200, b"", flavor)  # a ping of the server
        if path.endswith("/project/project-id"):
            return self.reply(200, b"acme", flavor)
        if "/service-accounts/" in path and path.endswith("/"):  # by alias (default) or email
            info = {
                "email": "models-reader@acme.iam.gserviceaccount.com",
                "aliases": ["default"],
                "scopes": [],
            }
            return self.reply(200, json.dumps(info).encode(), {**flavor, "Content-Type": "application/json"})
        if "/service-accounts/" in path and path.endswith("/token"):
            self.server.tokens.append(f"token-{len(self.server.tokens)}")
            token = {"access_token": self.server.tokens[-1], "expires_in": 60, "token_type": "Bearer"}
            return self.reply(200, json.dumps(token).encode(), {**flavor, "Content-Type": "application/json"})
        return self.reply(404, b"", flavor)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/computeMetadata/") or url.path == "/":
            return self.metadata(url.path)
        if (
            self.headers.get("Authorization")
            != f"Bearer {self.server.tokens[-1] if self.server.tokens else ''}"
        ):
            self.server.refused.append(self.path)
            return self.reply(401, b'{"error": "stale or missing token"}')
        prefix = f"/storage/v1/b/{BUCKET}/o"
        if url.path == prefix:
            names = sorted(n for n in self.server.objects if n.startswith(query.get("prefix", "")))
            start = int(query.get("pageToken") or 0)
            page: dict[str, Any] = {
                "items": [
                    {
                        "name": n,
                        "size": str(len(self.server.objects[n])),
                        "generation": "1700000000000001",
                        "md5Hash": self.server.md5[n],
                    }
                    for n in names[start : start + 2]
                ]
            }
            if start + 2 < len(names):
                page["nextPageToken"] = str(start + 2)
            return self.reply(200, json.dumps(page).encode(), {"Content-Type": "application/json"})
        name = urllib.parse.unquote(url.path[len(prefix) + 1 :])
        if query.get("alt") != "media" or name not in self.server.objects:
            return self.reply(404, b"")
        if query.get("ifGenerationMatch") != "1700000000000001":
            return self.reply(412, b"")
        body = self.server.objects[name]
        offset = 0
        if "Range" in self.headers:
            self.server.ranges.append(self.headers["Range"])
            offset = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        part = body[offset:]
        self.send_response(206 if offset else 200)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        cut = self.server.cut_after
        if cut is not None and cut < len(part):
            self.server.cut_after = None  # once
            self.wfile.write(part[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the body breaks mid-file
            return
        self.wfile.write(part)


@pytest.fixture
def gcs() -> Iterator[GCS]:
    server = GCS(("127.0.0.1", 0), Handler)
    server.objects = dict(OBJECTS)
    server.md5 = {n: base64.b64encode(hashlib.md5(b).digest()).decode() for n, b in OBJECTS.items()}
    server.tokens, server.refused, server.ranges = [], [], []
    server.cut_after = None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def resolved() -> Resolved:
    base = PRODUCTION_VLLM_SOURCE_GCS
    source = BucketSource("gcs", BUCKET, "llama", "https://storage.googleapis.com", "auto", False, None)
    return replace(base, model=replace(base.model, source=source))


def env_for(gcs: GCS, root: Path) -> dict[str, str]:
    host = f"127.0.0.1:{gcs.server_address[1]}"
    env = step_env(resolved(), "download-model", root, f"http://{host}")
    # Where the metadata server is (Google's libraries read the same variable).
    return env | {"GCE_METADATA_HOST": host}


def test_workload_identity_tokens_are_refreshed_and_each_file_checked(gcs: GCS, tmp_path: Path) -> None:
    gcs.cut_after = 1 << 20
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authorizing requests with the pod's token from the GKE metadata server" in result.stdout
    folder = tmp_path / "models" / "gcs" / BUCKET / "llama"
    for name, body in OBJECTS.items():
        assert (folder / name.removeprefix("llama/")).read_bytes() == body
    assert "model.safetensors: 2097152 bytes, checked: md5 from the object's MD5" in result.stdout
    # The body cut at 1 MiB was asked for again from there, with a fresh token.
    assert gcs.ranges == [f"bytes={1 << 20}-"]
    assert gcs.refused == [] and len(gcs.tokens) >= 4


def test_without_a_metadata_server_requests_are_anonymous_and_a_private_bucket_says_so(
    gcs: GCS, tmp_path: Path
) -> None:
    env = env_for(gcs, tmp_path) | {"GCE_METADATA_HOST": "127.0.0.1:9"}  # nothing answers there
    result = run_step(env)
    assert result.returncode == 1
    assert "no GKE metadata server answered: anonymous requests" in result.stdout
    assert "the bucket is not public and the pod has no Google identity" in result.stderr


def test_a_wrong_md5_stops_the_step(gcs: GCS, tmp_path: Path) -> None:
    gcs.md5["llama/tokenizer.json"] = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 1
    assert "tokenizer.json: checksum mismatch" in result.stderr
    assert not (tmp_path / "models" / "gcs" / BUCKET / "llama" / "tokenizer.json").exists()
