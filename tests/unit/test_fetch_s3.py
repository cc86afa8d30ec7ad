"""The s3 download step (llmstage.fetch, run as the Deployment renders it) against a real S3 server:
versitygw from its Go module (hack/tools/versitygw), which checks every SigV4 signature, serves
ETags, checksums, Range and If-Match like S3, and whose accounts can be added and revoked.

What is not a real service here: the STS that IRSA calls (versitygw's STS fetches the identity
provider's keys only from non-private addresses, so it cannot be pointed at a test issuer) and EKS
Pod Identity's agent (a loopback endpoint speaking its protocol). Both hand out keys of the real
server's accounts, and botocore's own providers (AssumeRoleWithWebIdentityProvider,
ContainerProvider) fetch and refresh them.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import botocore.exceptions
import pytest
from llmstage.resolve.resolved import BucketSource, Resolved

from testkit.fetchstep import HOSTNAME, run_step, step, step_env
from testkit.render_fixtures import PRODUCTION_VLLM_LORA_SOURCES, PRODUCTION_VLLM_SOURCE_S3
from testkit.s3server import CutOnce, S3Server, free_port

MiB = 2**20
SECRET = "models-s3"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server.started(tmp_path_factory.mktemp("versitygw")) as server:
        yield server


MODEL = {
    "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "tokenizer.json": b"{}",
    "model-00001-of-00002.safetensors": random.Random(1).randbytes(3 * MiB),
    "model-00002-of-00002.safetensors": random.Random(2).randbytes(MiB + 7),
    "sub dir/notes+1.txt": b"spaces and plus signs in a key",
}


def model_files() -> dict[str, bytes]:
    """A model directory as vLLM reads it (the weights are random bytes: nothing loads them)."""
    return dict(MODEL)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    """A bucket with the model under llama/ (the first weights file with a SHA-256 checksum, the
    config with a CRC32, the rest with their ETags only), a folder marker and a sibling prefix."""
    name = f"models-{uuid.uuid4().hex[:8]}"
    client = s3.client()
    client.create_bucket(Bucket=name)
    for relative, body in model_files().items():
        algorithm = {"model-00001-of-00002.safetensors": "SHA256", "config.json": "CRC32"}.get(relative)
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        client.put_object(Bucket=name, Key=f"llama/{relative}", Body=body, **extra)
    client.put_object(Bucket=name, Key="llama/", Body=b"")  # a folder marker, as consoles make them
    client.put_object(Bucket=name, Key="llama-v2/config.json", Body=b"a sibling prefix: never downloaded")
    return name


def resolved_for(bucket: str, secret: str | None = SECRET, prefix: str = "llama") -> Resolved:
    base = PRODUCTION_VLLM_SOURCE_S3
    source = BucketSource(
        kind="s3",
        bucket=bucket,
        prefix=prefix,
        endpoint="http://minio.storage.svc:9000",  # replaced by the test's address
        region="us-east-1",
        virtual_host=False,
        credentials_secret=secret,
    )
    return replace(base, model=replace(base.model, source=source))


def env_for(s3: S3Server, resolved: Resolved, root: Path, endpoint: str | None = None) -> dict[str, str]:
    keys = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    return step_env(resolved, "download-model", root, endpoint or s3.endpoint, keys)


def target(root: Path, bucket: str, prefix: str = "llama") -> Path:
    return root / "models" / "s3" / bucket / prefix


def files_under(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(path).parts
    }


def test_the_step_runs_in_llmstages_image_with_the_secret_by_reference() -> None:
    rendered = step(resolved_for("models"), "download-model")
    assert rendered["command"] == ["python", "-m", "llmstage.fetch"]
    assert rendered["image"].startswith("ghcr.io/llmstage/llmstage:")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in rendered["env"] if "valueFrom" in e}
    assert refs["LLMSTAGE_SOURCE_ACCESS_KEY_ID"] == {"name": SECRET, "key": "AWS_ACCESS_KEY_ID"}


def test_the_prefix_is_downloaded_checked_and_a_restart_reads_nothing(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    resolved = resolved_for(bucket)
    env = env_for(s3, resolved, tmp_path)
    result = run_step(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert files_under(target(tmp_path, bucket)) == model_files()
    assert not (tmp_path / "models" / "s3" / bucket / "llama-v2").exists()
    out = result.stdout
    assert (
        "model-00001-of-00002.safetensors: 3145728 bytes, checked: sha256 from x-amz-checksum-sha256" in out
    )
    assert "model-00002-of-00002.safetensors: 1048583 bytes, checked: md5 from the ETag" in out
    assert "config.json: 39 bytes, checked: crc32 from x-amz-checksum-crc32" in out
    assert "signing requests with the Secret of credentialsSecretRef" in out
    # Where vLLM is told to read.
    served = next(c for c in _containers(resolved) if c["name"] == "server")["args"][0]
    assert Path(str(tmp_path) + served) == target(tmp_path, bucket)

    # A restart (or a second pod on a shared cache) lists the bucket and downloads nothing.
    again = run_step(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("is in the cache") == 5
    assert "bytes, checked" not in again.stdout  # nothing was downloaded


def _containers(resolved: Resolved) -> list[dict[str, Any]]:
    from llmstage.render import render_deployment

    spec = render_deployment(resolved)["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = spec["containers"]
    return containers


def test_a_multipart_object_is_checked_against_its_etag(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    body = os.urandom(11 * MiB + 5)
    upload = client.create_multipart_upload(Bucket=bucket, Key="big/model.safetensors")
    parts = []
    for number, start in enumerate(range(0, len(body), 5 * MiB), start=1):
        part = client.upload_part(
            Bucket=bucket,
            Key="big/model.safetensors",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body[start : start + 5 * MiB],
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big/model.safetensors",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    result = run_step(env_for(s3, resolved_for(bucket, prefix="big"), tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked: s3-multipart-md5 from the ETag of a 3-part upload" in result.stdout
    assert (target(tmp_path, bucket, "big") / "model.safetensors").read_bytes() == body


def test_a_checksum_mismatch_stops_the_step_and_keeps_nothing(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    # The store's copy goes bad behind its back (same size, one byte changed): it still serves the
    # ETag it recorded at upload.
    stored = s3.object_path(bucket, "llama/model-00002-of-00002.safetensors")
    data = bytearray(stored.read_bytes())
    data[MiB // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    result = run_step(env_for(s3, resolved_for(bucket), tmp_path))
    assert result.returncode == 1, result.stdout
    assert "model-00002-of-00002.safetensors: checksum mismatch: md5 is" in result.stdout  # the first try
    assert "downloading it again" in result.stdout
    assert "again on a second download: the store serves other bytes than it recorded" in result.stderr
    weights = target(tmp_path, bucket) / "model-00002-of-00002.safetensors"
    assert not weights.exists()
    assert not list(weights.parent.glob("model-00002-of-00002.safetensors.partial-*"))


def test_a_body_cut_mid_file_resumes_with_a_range_request(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    relay = CutOnce((s3.host, s3.port), after=MiB)
    try:
        result = run_step(env_for(s3, resolved_for(bucket), tmp_path, endpoint=relay.endpoint))
    finally:
        relay.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert relay.cuts == 1
    # The cut fell in the first big file; the rest of it was asked for from where it broke, pinned
    # to the same object version.
    assert "model-00001-of-00002.safetensors: the connection broke" in result.stdout
    resumed = [line for line in result.stdout.splitlines() if "resuming at byte" in line]
    assert len(resumed) == 1, result.stdout
    offset = int(resumed[0].split("resuming at byte ")[1].split()[0])
    assert 0 < offset < 3 * MiB
    requests = relay.requests().lower()
    assert f"range: bytes={offset}-" in requests and "if-match:" in requests
    assert files_under(target(tmp_path, bucket)) == model_files()


def test_a_restarted_step_resumes_its_own_partial_file(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    env = env_for(s3, resolved_for(bucket), tmp_path)
    first = run_step(env)
    assert first.returncode == 0, first.stderr
    weights = target(tmp_path, bucket) / "model-00001-of-00002.safetensors"
    body = weights.read_bytes()
    # What a step killed mid-file leaves: the file's first part beside it, under this pod's name and
    # the object's version, and no record of it.
    etag = s3.client().head_object(Bucket=bucket, Key="llama/model-00001-of-00002.safetensors")["ETag"]
    import hashlib

    partial = weights.with_name(
        f"{weights.name}.partial-{HOSTNAME}-{hashlib.sha256(etag.encode()).hexdigest()[:12]}"
    )
    partial.write_bytes(body[: 2 * MiB])
    weights.unlink()
    (target(tmp_path, bucket) / ".cache" / "llmstage" / f"{weights.name}.json").unlink()
    again = run_step(env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"model-00001-of-00002.safetensors: resuming at byte {2 * MiB} of {3 * MiB}" in again.stdout
    assert "checked: sha256 from x-amz-checksum-sha256" in again.stdout  # over the kept part too
    assert weights.read_bytes() == body and not partial.exists()


def test_an_object_replaced_in_the_bucket_is_downloaded_again(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = env_for(s3, resolved_for(bucket), tmp_path)
    assert run_step(env).returncode == 0
    # Same size, new content: a size check alone would keep the old file.
    s3.client().put_object(Bucket=bucket, Key="llama/tokenizer.json", Body=b"[]")
    again = run_step(env)
    assert again.returncode == 0, again.stderr
    assert "downloading tokenizer.json (2 bytes)" in again.stdout
    assert (target(tmp_path, bucket) / "tokenizer.json").read_bytes() == b"[]"


def test_files_an_older_step_left_are_checked_once_not_downloaded(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = env_for(s3, resolved_for(bucket), tmp_path)
    assert run_step(env).returncode == 0
    # The step before this one kept no records (it compared sizes only).
    (target(tmp_path, bucket) / ".cache").rename(tmp_path / "records")
    again = run_step(env)
    assert again.returncode == 0, again.stderr
    assert "model-00001-of-00002.safetensors is in the cache (checked: sha256" in again.stdout
    assert "tokenizer.json is in the cache (checked: md5 from the ETag)" in again.stdout
    assert "bytes, checked" not in again.stdout  # nothing downloaded


def test_a_restart_without_the_store_starts_from_a_complete_cache(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = env_for(s3, resolved_for(bucket), tmp_path)
    nowhere = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    # Nothing complete in the cache yet: the step stops and says where it could not reach.
    first = run_step(env | {"LLMSTAGE_SOURCE_ENDPOINT": nowhere})
    assert first.returncode == 1
    assert f"the list of s3://{bucket}/llama/" in first.stderr and "check the endpoint and the network" in (
        first.stderr
    )
    assert run_step(env).returncode == 0
    # The store is gone (an outage, a network policy) while the pod restarts: vLLM still gets its files.
    again = run_step(env | {"LLMSTAGE_SOURCE_ENDPOINT": nowhere})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the cache holds the 5 files of the last complete download: starting from them" in again.stdout
    # A file gone from the cache: nothing to start from.
    (target(tmp_path, bucket) / "tokenizer.json").unlink()
    assert run_step(env | {"LLMSTAGE_SOURCE_ENDPOINT": nowhere}).returncode == 1


def test_a_wrong_secret_stops_the_step_with_what_to_check(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    env = env_for(s3, resolved_for(bucket), tmp_path) | {"LLMSTAGE_SOURCE_SECRET_ACCESS_KEY": "wrong"}
    result = run_step(env)
    assert result.returncode == 1
    assert "HTTP 403 SignatureDoesNotMatch" in result.stderr
    assert "check the Secret of credentialsSecretRef (keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)" in (
        result.stderr
    )


def test_without_any_credentials_the_step_says_how_to_give_the_pod_some(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    result = run_step(env_for(s3, resolved_for(bucket, secret=None), tmp_path))
    assert result.returncode == 1
    assert "no credentials found: unsigned requests" in result.stdout
    assert "the bucket is not public and the pod has no credentials: set spec.pod.serviceAccountName" in (
        result.stderr
    )


def test_an_empty_prefix_stops_the_step(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    result = run_step(env_for(s3, resolved_for(bucket, prefix="nothing-here"), tmp_path))
    assert result.returncode == 1
    assert f"no objects under s3://{bucket}/nothing-here/: check spec.model.source's url" in result.stderr


def test_an_adapter_from_a_bucket_lands_where_vllm_is_told(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket="adapters")
    client.put_object(Bucket="adapters", Key="legal-v3/adapter_config.json", Body=b'{"r": 16}')
    client.put_object(Bucket="adapters", Key="legal-v3/adapter_model.safetensors", Body=b"w" * 512)
    keys = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    env = step_env(PRODUCTION_VLLM_LORA_SOURCES, "download-lora-2", tmp_path, s3.endpoint, keys)
    result = run_step(env)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "models" / "lora" / "s3" / "adapters" / "legal-v3"
    assert files_under(folder) == {
        "adapter_config.json": b'{"r": 16}',
        "adapter_model.safetensors": b"w" * 512,
    }
    assert "warning" not in result.stdout


# ---------------------------------------------------------------- credentials without static keys


class CredentialEndpoint(ThreadingHTTPServer):
    """Hands out accounts of the S3 server, a new one on every call, and revokes the one before."""

    def __init__(
        self,
        s3: S3Server,
        token: str,
        handler: type[BaseHTTPRequestHandler],
        lifetime: datetime.timedelta = datetime.timedelta(minutes=11),
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.s3 = s3
        self.token = token
        self.lifetime = lifetime  # the Expiration handed out with each account
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.refused = 0
        self.seen: list[dict[str, Any]] = []

    def next_account(self) -> tuple[str, str]:
        access, secret = f"gen{len(self.issued)}{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        self.s3.create_user(access, secret)
        if self.issued:
            self.expire_current()
        self.issued.append(access)
        return access, secret

    def expire_current(self) -> None:
        """The last account handed out is expired: the server refuses it from now on."""
        if self.issued[-1] not in self.revoked:
            self.s3.delete_user(self.issued[-1])
            self.revoked.add(self.issued[-1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serving(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


class PodIdentityAgent(BaseHTTPRequestHandler):
    """EKS Pod Identity's agent as botocore's ContainerProvider calls it: GET with the projected
    token in Authorization, JSON credentials with their expiry back."""

    server: CredentialEndpoint

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.server.token:
            self.server.refused += 1
            self.send_response(403)
            self.end_headers()
            return
        access, secret = self.server.next_account()
        # 11 minutes by default: inside botocore's 15-minute advisory window, so it refreshes before
        # each request it signs (RefreshableCredentials), and outside the 10-minute mandatory one.
        expiry = datetime.datetime.now(datetime.UTC) + self.server.lifetime
        body = json.dumps(
            {
                "AccessKeyId": access,
                "SecretAccessKey": secret,
                "Token": "",  # versitygw's own accounts take no session token
                "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_expiring_pod_identity_credentials_are_refreshed_before_each_request(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text("projected-service-account-token")
    agent = CredentialEndpoint(s3, "projected-service-account-token", PodIdentityAgent)
    serving(agent)
    try:
        # The variables EKS Pod Identity's webhook puts into every container of the pod.
        env = env_for(s3, resolved_for(bucket, secret=None), tmp_path) | {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{agent.url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        result = run_step(env)
    finally:
        agent.shutdown()
        agent.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signing requests with the pod's credentials (container-role)" in result.stdout
    assert files_under(target(tmp_path, bucket)) == model_files()
    assert agent.refused == 0
    # A list, a HEAD and a GET per file at least: each signed with credentials fetched anew, while
    # the ones before were revoked at the server.
    assert len(agent.issued) >= 1 + 2 * 5, agent.issued
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        s3.client(agent.issued[0], "revoked").list_objects(Bucket=bucket)


def test_credentials_that_expire_mid_file_are_fetched_anew_and_the_body_resumes(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """The pod's credentials expire at the store in the middle of a file while botocore still holds
    them for valid (their Expiration is an hour ahead: a clock skew, a session revoked early): the
    request that resumes the broken body is refused, the step asks the pod's chain once for new
    credentials and goes on from the byte where the body broke."""
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text("projected-service-account-token")
    agent = CredentialEndpoint(
        s3, "projected-service-account-token", PodIdentityAgent, lifetime=datetime.timedelta(hours=1)
    )
    serving(agent)
    # The body breaks in the first big file, and its credentials expire at the server right then.
    relay = CutOnce((s3.host, s3.port), after=MiB, on_cut=agent.expire_current)
    try:
        env = env_for(s3, resolved_for(bucket, secret=None), tmp_path, endpoint=relay.endpoint) | {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{agent.url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        result = run_step(env)
    finally:
        relay.close()
        agent.shutdown()
        agent.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert relay.cuts == 1 and agent.refused == 0
    assert len(agent.issued) == 2, agent.issued  # at the start, and once after the refusal
    assert (
        "the store refused the pod's credentials (container-role) (InvalidAccessKeyId): asking the "
        "pod's credential chain again"
    ) in result.stdout
    # Both tries after the cut (refused, then with the new credentials) resume at the same byte.
    resumed = {
        line.split("resuming at byte ")[1].split()[0]
        for line in result.stdout.splitlines()
        if "resuming at byte" in line
    }
    assert len(resumed) == 1 and 0 < int(resumed.pop()) < 3 * MiB, result.stdout
    assert files_under(target(tmp_path, bucket)) == model_files()
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        s3.client(agent.issued[0], "expired").list_objects(Bucket=bucket)


def test_credentials_refused_again_after_a_renewal_stop_the_step_with_what_to_check(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """New credentials that the store refuses too are not an expiry: the step stops once, naming the
    role to check, instead of asking the chain in a loop."""
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text("projected-service-account-token")
    agent = CredentialEndpoint(
        s3, "projected-service-account-token", PodIdentityAgent, lifetime=datetime.timedelta(hours=1)
    )
    # Every account is gone at the server as soon as it was handed out: a role that lost its keys.
    issue = agent.next_account

    def issue_revoked() -> tuple[str, str]:
        account = issue()
        agent.expire_current()
        return account

    agent.next_account = issue_revoked  # type: ignore[method-assign]
    serving(agent)
    try:
        env = env_for(s3, resolved_for(bucket, secret=None), tmp_path) | {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{agent.url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        result = run_step(env)
    finally:
        agent.shutdown()
        agent.server_close()
    assert result.returncode == 1, result.stdout
    assert len(agent.issued) == 2, agent.issued  # asked again once, not in a loop
    assert "HTTP 403 InvalidAccessKeyId" in result.stderr
    hint = "check the pod's credentials (container-role): the role of spec.pod.serviceAccountName"
    assert hint in result.stderr


class WebIdentitySTS(BaseHTTPRequestHandler):
    """AssumeRoleWithWebIdentity as STS answers it (a stand-in; see the module's docstring)."""

    server: CredentialEndpoint

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        form = {
            k: v[0]
            for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
        }
        self.server.seen.append(form)
        if (
            form.get("Action") != "AssumeRoleWithWebIdentity"
            or form.get("WebIdentityToken") != self.server.token
        ):
            self.server.refused += 1
            self.send_response(400)
            self.end_headers()
            return
        access, secret = self.server.next_account()
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        body = (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            f"<AccessKeyId>{access}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken></SessionToken><Expiration>{expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
            "</Credentials></AssumeRoleWithWebIdentityResult>"
            "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_irsa_assumes_the_role_with_the_projected_token(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    token_file = tmp_path / "eks.amazonaws.com" / "token"
    token_file.parent.mkdir()
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected.token")
    sts = CredentialEndpoint(s3, "eyJhbGciOiJSUzI1NiJ9.projected.token", WebIdentitySTS)
    serving(sts)
    try:
        # What EKS's pod identity webhook sets for a ServiceAccount annotated with
        # eks.amazonaws.com/role-arn; the STS endpoint is the stand-in's.
        env = env_for(s3, resolved_for(bucket, secret=None), tmp_path) | {
            "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/models-reader",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ENDPOINT_URL_STS": sts.url,
        }
        result = run_step(env)
    finally:
        sts.shutdown()
        sts.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signing requests with the pod's credentials (assume-role-with-web-identity)" in result.stdout
    assert sts.refused == 0 and len(sts.issued) == 1  # valid for an hour: asked once
    assert sts.seen[0]["RoleArn"] == "arn:aws:iam::111122223333:role/models-reader"
    assert files_under(target(tmp_path, bucket)) == model_files()
