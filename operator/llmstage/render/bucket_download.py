"""The download step of spec.model.source (and spec.lora.adapters[].source) s3 and gcs: a bucket
prefix into the model cache.

Not imported by the operator: render/source.py reads this file's text, and the vLLM Deployment
runs it as `python3 -c` in the vLLM image. The image has no S3 or GCS client (vLLM 0.12.0's wheel
requires neither boto3 nor google-cloud-storage; only its optional `runai` extra would), so this is
standard library only: S3's REST API (ListObjects and GetObject) signed with AWS Signature
Version 4, which S3-compatible stores (MinIO, Ceph RGW) and GCS's XML API (with HMAC keys) accept
too. Without keys: unsigned requests on S3 (a public bucket), an access token from the GKE metadata
server on GCS (Workload Identity).

Everything under the prefix is fetched into LLMSTAGE_SOURCE_DIR, keeping the keys' relative paths.
A file already there with the object's size is not fetched again, so a restart resumes and pods
sharing the cache skip what another pod finished; each file is written beside its final name and
renamed, so a reader never sees half of one. Settings arrive through LLMSTAGE_SOURCE_* variables;
HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE work as usual for urllib.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping
from typing import cast

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHUNK = 1 << 20
ATTEMPTS = 4
GCE_METADATA_TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"
# The field that names this bucket, for the messages: spec.lora.adapters[N].source for an adapter.
FIELD = os.environ.get("LLMSTAGE_SOURCE_FIELD", "spec.model.source")


def log(message: str) -> None:
    print(f"llmstage: {message}", flush=True)


def quote(text: str, safe: str = "") -> str:
    """URI-encode as SigV4 wants: everything but A-Z a-z 0-9 - _ . ~ (and `safe`)."""
    return urllib.parse.quote(text, safe=safe + "~")


def sigv4_headers(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    region: str,
    session_token: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, str]:
    """Headers of a signed request with an empty body (AWS Signature Version 4, service s3)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if session_token:
        headers["x-amz-security-token"] = session_token
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/"),
            "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items())),
            "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)),
            signed,
            EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    del headers["host"]  # urllib sends it from the URL, exactly as signed
    return headers


class Bucket:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.kind = env["LLMSTAGE_SOURCE_KIND"]
        self.bucket = env["LLMSTAGE_SOURCE_BUCKET"]
        prefix = env.get("LLMSTAGE_SOURCE_PREFIX", "")
        # The URL names a folder: llama-3.1 must not also match llama-3.1-v2/.
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        endpoint = urllib.parse.urlsplit(env["LLMSTAGE_SOURCE_ENDPOINT"])
        self.scheme = endpoint.scheme
        self.virtual_host = env.get("LLMSTAGE_SOURCE_VIRTUAL_HOST") == "1"
        self.host = f"{self.bucket}.{endpoint.netloc}" if self.virtual_host else endpoint.netloc
        self.region = env.get("LLMSTAGE_SOURCE_REGION", "us-east-1")
        self.access_key = env.get("LLMSTAGE_SOURCE_ACCESS_KEY_ID") or None
        self.secret_key = env.get("LLMSTAGE_SOURCE_SECRET_ACCESS_KEY") or None
        self.session_token = env.get("LLMSTAGE_SOURCE_SESSION_TOKEN") or None
        self.metadata_host = env.get("GCE_METADATA_HOST", "metadata.google.internal")
        self.token: str | None = None
        self.url = f"{self.kind if self.kind == 's3' else 'gs'}://{self.bucket}/{self.prefix}"

    def path(self, key: str = "") -> str:
        return f"/{key}" if self.virtual_host else f"/{self.bucket}/{key}"

    def headers(self, path: str, query: Mapping[str, str]) -> dict[str, str]:
        if self.access_key and self.secret_key:
            return sigv4_headers(
                "GET",
                self.host,
                path,
                query,
                access_key=self.access_key,
                secret_key=self.secret_key,
                region=self.region,
                session_token=self.session_token,
            )
        if self.kind == "gcs":
            return {"Authorization": f"Bearer {self.workload_identity_token()}"}
        return {}  # a public bucket

    def workload_identity_token(self) -> str:
        if self.token is None:
            request = urllib.request.Request(
                f"http://{self.metadata_host}{GCE_METADATA_TOKEN}", headers={"Metadata-Flavor": "Google"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self.token = str(json.load(response)["access_token"])
        return self.token

    def get(self, key: str, query: Mapping[str, str] | None = None) -> urllib.request.Request:
        query = query or {}
        path = self.path(key)
        encoded = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items()))
        url = f"{self.scheme}://{self.host}{quote(path, safe='/')}" + (f"?{encoded}" if encoded else "")
        return urllib.request.Request(url, headers=self.headers(path, query))

    def objects(self) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under the prefix: ListObjects (version 1, which S3, MinIO
        and GCS's XML API all serve), page by page."""
        marker = ""
        while True:
            query = {"prefix": self.prefix}
            if marker:
                query["marker"] = marker
            page = functools.partial(self.get, "", dict(query))
            root = ElementTree.fromstring(fetch(page, f"the list of {self.url}"))
            keys = []
            for item in root:
                if _tag(item) == "Contents":
                    fields = {_tag(f): f.text or "" for f in item}
                    keys.append(fields["Key"])
                    yield fields["Key"], int(fields.get("Size") or 0)
            truncated = next((e.text for e in root if _tag(e) == "IsTruncated"), "false") == "true"
            if not truncated or not keys:
                return
            marker = next((e.text or "" for e in root if _tag(e) == "NextMarker"), "") or keys[-1]


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]  # S3 and GCS use different XML namespaces


Requester = Callable[[], urllib.request.Request]


def fetch(make_request: Requester, what: str) -> bytes:
    with open_with_retries(make_request, what) as response:
        return response.read()


def open_with_retries(make_request: Requester, what: str) -> http.client.HTTPResponse:
    """urlopen with retries on network errors and 5xx; a 4xx ends the step with what to check."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # A new request each time: the signature's date must be fresh.
            return cast(http.client.HTTPResponse, urllib.request.urlopen(make_request(), timeout=60))
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == ATTEMPTS:
                detail = error.read(2000).decode(errors="replace")
                hint = (
                    "check the Secret of credentialsSecretRef (keys AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY) and the bucket's permissions"
                    if error.code in (401, 403)
                    else f"check {FIELD}"
                )
                sys.exit(f"llmstage: {what}: HTTP {error.code}: {hint}\n{detail}")
        except (urllib.error.URLError, OSError) as error:
            if attempt == ATTEMPTS:
                sys.exit(f"llmstage: {what}: {error}: check the endpoint and the network (proxy, NO_PROXY)")
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def download(bucket: Bucket, target: str) -> int:
    count = 0
    root = os.path.realpath(target)
    for key, size in bucket.objects():
        relative = key[len(bucket.prefix) :]
        if not relative or key.endswith("/"):
            continue  # the folder itself, or a folder marker
        path = os.path.realpath(os.path.join(root, relative))
        if not path.startswith(root + os.sep):
            sys.exit(f"llmstage: object {key!r} would be written outside {target}; refusing")
        count += 1
        if os.path.isfile(path) and os.path.getsize(path) == size:
            log(f"{relative} is in the cache")
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.partial-{socket.gethostname()}"
        log(f"downloading {relative} ({size} bytes)")
        written = 0
        what = f"{bucket.url}{relative}"
        with (
            open_with_retries(functools.partial(bucket.get, key), what) as response,
            open(partial, "wb") as out,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
        if written != size:
            os.unlink(partial)
            sys.exit(f"llmstage: {relative}: got {written} of {size} bytes; the step restarts and retries")
        os.replace(partial, path)
    return count


def main() -> None:
    bucket = Bucket(os.environ)
    target = os.environ["LLMSTAGE_SOURCE_DIR"]
    log(f"downloading {bucket.url} into {target}")
    os.makedirs(target, exist_ok=True)
    count = download(bucket, target)
    if count == 0:
        sys.exit(f"llmstage: no objects under {bucket.url}: check {FIELD}'s url")
    # config.json for a model, adapter_config.json for a LoRA adapter (PEFT).
    expected = os.environ.get("LLMSTAGE_SOURCE_EXPECTED", "config.json")
    if not os.path.isfile(os.path.join(target, expected)):
        log(f"warning: no {expected} under {bucket.url}: vLLM will not find what it needs there")
    log(f"{count} files of {bucket.url} are in the cache")


if __name__ == "__main__":
    main()
