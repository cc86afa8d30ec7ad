"""The gcs download step (llmstage.fetch, run as the Deployment renders it) through google-auth's
credential chain, against stand-ins on 127.0.0.1 for GKE's metadata server, Google's OAuth token
endpoint (JWT bearer grants signed with a service-account key), STS (workload identity federation)
and GCS's JSON API (objects.list and objects.get with alt=media, Range and ifGenerationMatch). Not
against GCS: no GCS-compatible server is built here.

The GCS stand-in accepts only the newest access token it handed out, so a step that keeps a token
google-auth would have refreshed is refused. Every request of the step is held to 127.0.0.1: any
other host goes to a proxy on a closed local port and fails.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from llmstage.resolve.resolved import BucketSource, Resolved

from testkit.fetchstep import run_step, step_env
from testkit.render_fixtures import PRODUCTION_VLLM_SOURCE_GCS

BUCKET = "acme_models"
OBJECTS = {
    "llama/config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "llama/model.safetensors": bytes(range(256)) * 8192,  # 2 MiB
    "llama/tokenizer.json": b"{}",
}
SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
EMAIL = "models-reader@acme.iam.gserviceaccount.com"
AUDIENCE = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/kind"
SUBJECT_TOKEN = "a-kubernetes-serviceaccount-token"
FOLDER = Path("models") / "gcs" / BUCKET / "llama"


class GCS(ThreadingHTTPServer):
    objects: dict[str, bytes]
    md5: dict[str, str]  # what the metadata says (a test may make it lie)
    tokens: list[str]  # every access token handed out, by any of the stand-ins
    lifetime: int  # their expires_in
    used: collections.Counter[str]  # storage requests each token authorized
    revoke_at: int | None  # the storage request at which the newest token stops being accepted
    revoked: set[str]
    storage_requests: int
    refused: list[str]
    cut_after: int | None  # the next media download stops after these many bytes
    delay_media: float  # the first media download waits this long before it answers
    ranges: list[str]
    pings: int  # GETs of / on the metadata server (google-auth's check that there is one)
    metadata_tokens: list[tuple[dict[str, str], str]]  # query, x-goog-api-client of each
    key: rsa.RSAPublicKey | None  # the service-account key the OAuth stand-in trusts
    assertions: list[dict[str, Any]]  # the claims of each JWT it verified
    exchanges: list[dict[str, str]]  # the forms of each STS token exchange


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


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

    def token(self) -> dict[str, Any]:
        self.server.tokens.append(f"token-{len(self.server.tokens)}")
        return {
            "access_token": self.server.tokens[-1],
            "expires_in": self.server.lifetime,
            "token_type": "Bearer",
        }

    def metadata(self, path: str, query: str) -> None:
        flavor = {"Metadata-Flavor": "Google", "Content-Type": "text/plain"}
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, b"", flavor)
        if path in ("/", ""):
            self.server.pings += 1
            return self.reply(200, b"", flavor)  # a ping of the server
        if path.endswith("/project/project-id"):
            return self.reply(200, b"acme", flavor)
        if "/service-accounts/" in path and path.endswith("/"):  # by alias (default) or email
            info = {"email": EMAIL, "aliases": ["default"], "scopes": []}
            return self.reply(200, json.dumps(info).encode(), {**flavor, "Content-Type": "application/json"})
        if "/service-accounts/" in path and path.endswith("/token"):
            client = self.headers.get("x-goog-api-client", "")
            self.server.metadata_tokens.append((dict(urllib.parse.parse_qsl(query)), client))
            body = json.dumps(self.token()).encode()
            return self.reply(200, body, {**flavor, "Content-Type": "application/json"})
        return self.reply(404, b"", flavor)

    def do_POST(self) -> None:
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        json_reply = {"Content-Type": "application/json"}
        if self.path == "/token":  # Google's OAuth token endpoint, the token_uri of a key file
            claims = self.verified(form)
            if claims is None:
                body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
                return self.reply(400, json.dumps(body).encode(), json_reply)
            self.server.assertions.append(claims)
            return self.reply(200, json.dumps(self.token()).encode(), json_reply)
        if self.path == "/v1/token":  # STS: a federated subject token for a Google access token
            self.server.exchanges.append(form)
            if form.get("subject_token") != SUBJECT_TOKEN or form.get("audience") != AUDIENCE:
                return self.reply(400, b'{"error": "invalid_grant"}', json_reply)
            token = self.token() | {"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}
            return self.reply(200, json.dumps(token).encode(), json_reply)
        return self.reply(404, b"")

    def verified(self, form: dict[str, str]) -> dict[str, Any] | None:
        """The claims of a JWT bearer grant signed with the trusted key, for Google's token endpoint
        and the read-only storage scope; None otherwise."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or self.server.key is None:
            return None
        header, payload, signature = form["assertion"].split(".")
        if json.loads(unb64(header)).get("alg") != "RS256":
            return None
        try:
            self.server.key.verify(
                unb64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return None
        claims: dict[str, Any] = json.loads(unb64(payload))
        # The audience is Google's token endpoint, wherever token_uri sends the grant.
        audience = "https://oauth2.googleapis.com/token"
        wanted = claims.get("iss") == EMAIL and claims.get("aud") == audience and claims.get("scope") == SCOPE
        return claims if wanted and claims.get("exp", 0) > time.time() else None

    def authorized(self) -> bool:
        self.server.storage_requests += 1
        newest = self.server.tokens[-1] if self.server.tokens else ""
        if self.server.revoke_at == self.server.storage_requests:
            self.server.revoked.add(newest)
        if newest in self.server.revoked or self.headers.get("Authorization") != f"Bearer {newest}":
            self.server.refused.append(self.path)
            return False
        self.server.used[newest] += 1
        return True

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/computeMetadata/") or url.path == "/":
            return self.metadata(url.path, url.query)
        if not self.authorized():
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
        if self.server.delay_media:
            time.sleep(self.server.delay_media)
            self.server.delay_media = 0  # once
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
    server.lifetime = 60  # inside google-auth's refresh margin (3 min 45 s): stale at once
    server.used, server.revoke_at, server.revoked, server.storage_requests = (
        collections.Counter(),
        None,
        set(),
        0,
    )
    server.cut_after, server.delay_media = None, 0.0
    server.pings, server.metadata_tokens = 0, []
    server.key, server.assertions, server.exchanges = None, [], []
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
    return env | {
        # Where the metadata server is (Google's libraries read the same variable).
        "GCE_METADATA_HOST": host,
        # Any host but the stand-ins' (oauth2.googleapis.com, ...) goes to a closed local port.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1",
    }


def assert_downloaded(root: Path) -> None:
    for name, body in OBJECTS.items():
        assert (root / FOLDER / name.removeprefix("llama/")).read_bytes() == body


def test_workload_identity_tokens_are_refreshed_and_each_file_checked(gcs: GCS, tmp_path: Path) -> None:
    gcs.cut_after = 1 << 20
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authorizing requests with the pod's token from the GKE metadata server" in result.stdout
    assert_downloaded(tmp_path)
    assert "model.safetensors: 2097152 bytes, checked: md5 from the object's MD5" in result.stdout
    # The body cut at 1 MiB was asked for again from there, with a fresh token.
    assert gcs.ranges == [f"bytes={1 << 20}-"]
    assert gcs.refused == [] and len(gcs.tokens) >= 4
    # google-auth's Compute Engine credentials: found by its ping, asked for the read-only scope.
    assert gcs.pings >= 1
    query, client = gcs.metadata_tokens[0]
    assert query.get("scopes") == SCOPE
    assert "auth/" in client and "cred-type/mds" in client, client  # google-auth's x-goog-api-client


def test_a_token_is_refreshed_before_it_expires_and_the_download_goes_on(gcs: GCS, tmp_path: Path) -> None:
    gcs.lifetime = 225 + 3  # fresh for google-auth for 3 s, then inside its refresh margin
    gcs.delay_media = 3.5  # the first file takes longer than that
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_downloaded(tmp_path)
    assert gcs.used["token-0"] >= 2, gcs.used  # a fresh token is used as it is (two list pages)
    assert len(gcs.tokens) >= 2 and gcs.used["token-1"] >= 1, gcs.used  # then a new one, unrefused
    assert gcs.refused == []


def test_a_refused_token_is_replaced_once_and_the_download_goes_on(gcs: GCS, tmp_path: Path) -> None:
    gcs.lifetime = 3600
    gcs.revoke_at = 3  # the first file's download: revoked before it expires
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_downloaded(tmp_path)
    assert len(gcs.refused) == 1 and "alt=media" in gcs.refused[0]
    assert gcs.tokens == ["token-0", "token-1"]  # no other token than the one the 401 asked for
    assert gcs.used["token-1"] == 3  # the refused request again, and the two other files


def service_account_key(tmp_path: Path, gcs: GCS, trusted: bool = True) -> Path:
    """A service-account key file (as the IAM console downloads it) whose token_uri is the OAuth
    stand-in; the stand-in trusts its public key, or another one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    gcs.key = (
        key if trusted else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ).public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "123456789",
        "token_uri": f"http://127.0.0.1:{gcs.server_address[1]}/token",
    }
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    return path


@pytest.mark.parametrize("where", ["GOOGLE_APPLICATION_CREDENTIALS", "gcloud"])
def test_a_service_account_key_file_signs_for_a_token_and_the_bucket_takes_it(
    gcs: GCS, tmp_path: Path, where: str
) -> None:
    gcs.lifetime = 3600
    key = service_account_key(tmp_path, gcs)
    env = env_for(gcs, tmp_path)
    if where == "gcloud":  # gcloud's application default credentials, in the step's HOME
        adc = Path(env["HOME"]) / ".config" / "gcloud" / "application_default_credentials.json"
        adc.parent.mkdir(parents=True)
        key.rename(adc)
        origin = "gcloud's application default credentials"
    else:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
        origin = f"GOOGLE_APPLICATION_CREDENTIALS ({key})"
    result = run_step(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"authorizing requests with the key of service account {EMAIL} from {origin}" in result.stdout
    assert_downloaded(tmp_path)
    assert len(gcs.assertions) == 1 and gcs.tokens == ["token-0"] and gcs.refused == []
    assert gcs.used["token-0"] == 5  # two list pages, three files
    # The chain stopped at the key file: the metadata server was not asked.
    assert gcs.pings == 0 and gcs.metadata_tokens == []


def test_a_key_the_token_endpoint_refuses_stops_the_step_with_what_to_check(gcs: GCS, tmp_path: Path) -> None:
    key = service_account_key(tmp_path, gcs, trusted=False)
    result = run_step(env_for(gcs, tmp_path) | {"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
    assert result.returncode == 1
    assert "gave no access token" in result.stderr and "Invalid JWT Signature" in result.stderr
    assert "check that the key is not deleted or disabled" in result.stderr
    assert gcs.tokens == [] and gcs.storage_requests == 0


def test_workload_identity_federation_exchanges_the_subject_token(gcs: GCS, tmp_path: Path) -> None:
    gcs.lifetime = 3600
    subject = tmp_path / "token"
    subject.write_text(SUBJECT_TOKEN)
    config = {
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"http://127.0.0.1:{gcs.server_address[1]}/v1/token",
        "credential_source": {"file": str(subject)},
    }
    path = tmp_path / "federation.json"
    path.write_text(json.dumps(config))
    # GOOGLE_CLOUD_PROJECT: google.auth.default() does not ask Cloud Resource Manager for the
    # pool's project (docs/model-sources.md).
    env = env_for(gcs, tmp_path) | {
        "GOOGLE_APPLICATION_CREDENTIALS": str(path),
        "GOOGLE_CLOUD_PROJECT": "acme",
    }
    result = run_step(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authorizing requests with workload identity federation from GOOGLE_APPLICATION" in result.stdout
    assert_downloaded(tmp_path)
    assert len(gcs.exchanges) == 1 and gcs.exchanges[0]["scope"] == SCOPE
    assert gcs.tokens == ["token-0"] and gcs.refused == [] and gcs.pings == 0


def test_a_missing_key_file_stops_the_step_instead_of_going_anonymous(gcs: GCS, tmp_path: Path) -> None:
    env = env_for(gcs, tmp_path) | {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nowhere.json")}
    result = run_step(env)
    assert result.returncode == 1
    assert f"GOOGLE_APPLICATION_CREDENTIALS names {tmp_path / 'nowhere.json'}" in result.stderr
    assert "anonymous" not in result.stdout and gcs.storage_requests == 0


def test_without_any_credentials_requests_are_anonymous_and_a_private_bucket_says_so(
    gcs: GCS, tmp_path: Path
) -> None:
    env = env_for(gcs, tmp_path) | {"GCE_METADATA_HOST": "127.0.0.1:9"}  # nothing answers there
    result = run_step(env)
    assert result.returncode == 1
    assert "no Google credentials found" in result.stdout and "anonymous requests" in result.stdout
    assert "the bucket is not public and the pod has no Google identity" in result.stderr
    assert "spec.pod.serviceAccountName" in result.stderr
    assert gcs.refused and gcs.tokens == []


def test_a_wrong_md5_stops_the_step(gcs: GCS, tmp_path: Path) -> None:
    gcs.md5["llama/tokenizer.json"] = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    result = run_step(env_for(gcs, tmp_path))
    assert result.returncode == 1
    assert "tokenizer.json: checksum mismatch" in result.stderr
    assert not (tmp_path / FOLDER / "tokenizer.json").exists()
