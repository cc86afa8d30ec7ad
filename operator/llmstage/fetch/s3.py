"""S3 and S3-compatible stores (MinIO, Ceph RGW, versitygw), and GCS's XML API with HMAC keys,
through botocore.

Credentials: the Secret's keys when credentialsSecretRef names one; otherwise botocore's default
chain (botocore/credentials.py create_credential_resolver): AWS_* variables, AssumeRoleWithWebIdentity
from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA: EKS's webhook sets both in every container
of a pod whose ServiceAccount is annotated with eks.amazonaws.com/role-arn), the container provider
from AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod
Identity's agent), then the instance's role (IMDS). Temporary credentials are refreshed by botocore
before they expire (15 minutes ahead; RefreshableCredentials), and every request, a resumed Range
request too, is signed with the current ones. Where the store still refuses them as expired or
unknown before botocore's clock says so (a clock skew, a session revoked or rotated early), the
chain is asked once for new ones and the request made again; a body resumes where it broke. When
the chain finds nothing the requests go unsigned, as for a public bucket.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import botocore.session
import urllib3.exceptions
from botocore import UNSIGNED
from botocore.config import Config

from llmstage.fetch.settings import Source
from llmstage.fetch.transfer import CHUNK, Changed, FetchError, RemoteObject, Transient, Unreachable
from llmstage.fetch.verify import MULTIPART_ETAG, Expected, from_etag, md5_from_base64

# botocore's own retries of a request (not of a body that breaks: the transfer resumes those).
RETRIES = {"mode": "standard", "total_max_attempts": 5}
TRANSIENT: tuple[type[BaseException], ...] = (
    botocore.exceptions.HTTPClientError,  # connection closed, read timeout, a body cut mid-stream
    botocore.exceptions.ConnectionError,  # connect timeout, endpoint unreachable
    botocore.exceptions.IncompleteReadError,  # the body ended before its Content-Length
    urllib3.exceptions.HTTPError,
    OSError,
)
# Full-object checksums S3 returns with ChecksumMode ENABLED that the standard library computes.
CHECKSUMS = (("ChecksumSHA256", "sha256"), ("ChecksumSHA1", "sha1"), ("ChecksumCRC32", "crc32"))
KMS = ("aws:kms", "aws:kms:dsse")
# What S3 answers for credentials that are no longer valid: an expired or malformed session token
# (400 ExpiredToken, InvalidToken; botocore's TokenRefreshRequired), a key that was revoked or
# rotated out (403 InvalidAccessKeyId). Error codes from S3's ErrorResponses reference.
EXPIRED = ("ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidAccessKeyId")


class S3Store:
    def __init__(self, source: Source, log: Callable[[str], None], session: Any = None) -> None:
        self.source = source
        self.url = source.url
        self.prefix = source.prefix
        self.log = log
        self.identity = ""
        # Set when new credentials were fetched after a refusal, until a request with them succeeds:
        # a second refusal in a row is the role's or the bucket's doing, not an expiry.
        self._renewed = False
        self.client = self._connect(session or botocore.session.Session())
        signed = bool(self.identity)
        log(f"signing requests with {self.identity}" if signed else "no credentials found: unsigned requests")

    def _connect(self, session: Any) -> Any:
        """A client with the Secret's keys or the credentials the session's chain finds now."""
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            session.set_config_variable("region", self.source.region)  # STS's regional endpoint (IRSA)
        keys: dict[str, str | None] = {}
        if self.source.keys is not None:
            self.identity = "the Secret of credentialsSecretRef"
            keys = {
                "aws_access_key_id": self.source.keys.access_key,
                "aws_secret_access_key": self.source.keys.secret_key,
                "aws_session_token": self.source.keys.session_token,
            }
        else:
            try:
                credentials = session.get_credentials()
            except botocore.exceptions.BotoCoreError as err:
                raise FetchError(f"{self.url}: the pod's credentials: {err}") from None
            self.identity = "" if credentials is None else f"the pod's credentials ({credentials.method})"
        config = Config(
            region_name=self.source.region,
            signature_version=None if self.identity else UNSIGNED,
            s3={"addressing_style": "virtual" if self.source.virtual_host else "path"},
            retries=RETRIES,
            connect_timeout=10,
            read_timeout=60,
            # No checksum headers botocore would add by itself: GCS's XML API does not take them,
            # and the transfer checks the content itself (verify.py).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            user_agent_extra="llmstage-fetch",
        )
        return session.create_client("s3", endpoint_url=self.source.endpoint, config=config, **keys)

    def _renew(self, err: botocore.exceptions.ClientError) -> bool:
        """New credentials from the pod's chain where the store refused the current ones as expired;
        False where that cannot help (the Secret's keys, no credentials, refused right after a renewal)."""
        code = err.response.get("Error", {}).get("Code", "")
        if code not in EXPIRED or self.source.keys is not None or not self.identity or self._renewed:
            return False
        self.log(f"the store refused {self.identity} ({code}): asking the pod's credential chain again")
        # A new session: botocore's keeps the credentials it resolved, so only a new one asks again
        # (the web identity token file is read anew, the container endpoint called again).
        self.client = self._connect(botocore.session.Session())
        self._renewed = True
        return True

    def _failure(self, err: botocore.exceptions.ClientError, what: str) -> Exception:
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        detail = f"{what}: HTTP {status} {code}" + (f" ({message})" if message else "")
        if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
            return Transient(detail)
        if status in (401, 403):
            if self.source.keys is not None:
                hint = (
                    "check the Secret of credentialsSecretRef (keys AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY) and the bucket's permissions"
                )
            elif self.identity:
                hint = (
                    f"check {self.identity}: the role of spec.pod.serviceAccountName (IRSA: its "
                    "eks.amazonaws.com/role-arn annotation; EKS Pod Identity: its association) and the "
                    "bucket's policy"
                )
            else:
                hint = (
                    "the bucket is not public and the pod has no credentials: set "
                    "spec.pod.serviceAccountName to a ServiceAccount with a role (IRSA, EKS Pod "
                    "Identity), or "
                    f"{self.source.field}.{self.source.kind}.credentialsSecretRef"
                )
            return FetchError(f"{detail}: {hint}")
        if code == "NoSuchBucket":
            return FetchError(f"{detail}: check {self.source.field}'s url (the bucket)")
        return FetchError(f"{detail}: check {self.source.field}")

    def objects(self) -> Iterator[RemoteObject]:
        try:
            listed = self._list()
        except botocore.exceptions.ClientError as err:
            if not self._renew(err):
                failure = self._failure(err, f"the list of {self.url}")
                raise (Unreachable(str(failure)) if isinstance(failure, Transient) else failure) from None
            return self.objects()
        except TRANSIENT as err:
            raise Unreachable(
                f"the list of {self.url}: {err}: check the endpoint and the network (proxy, NO_PROXY)"
            ) from None
        self._renewed = False
        return iter(listed)

    def _list(self) -> list[RemoteObject]:
        # ListObjects version 1, which S3, S3-compatible stores and GCS's XML API all serve.
        pages = self.client.get_paginator("list_objects").paginate(
            Bucket=self.source.bucket, Prefix=self.prefix
        )
        return [
            RemoteObject(item["Key"], int(item.get("Size", 0)), item.get("ETag", ""))
            for page in pages
            for item in page.get("Contents", [])
        ]

    def _head(self, key: str, **extra: Any) -> dict[str, Any]:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.source.bucket, Key=key, **extra)
        except botocore.exceptions.ClientError as err:
            if self._renew(err):
                return self._head(key, **extra)
            raise self._failure(err, f"{self.source.url}{key[len(self.prefix) :]}") from None
        self._renewed = False
        return head

    def expected(self, obj: RemoteObject) -> Expected | None:
        if self.source.kind == "gcs":
            # x-goog-hash: crc32c=...,md5=... (no md5 for a composite object).
            headers = self._head(obj.key)["ResponseMetadata"].get("HTTPHeaders", {})
            hashes = dict(
                part.strip().split("=", 1)
                for part in headers.get("x-goog-hash", "").split(",")
                if "=" in part
            )
            return md5_from_base64(hashes["md5"]) if "md5" in hashes else None
        head = self._head(obj.key, ChecksumMode="ENABLED")
        if head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            for field, algorithm in CHECKSUMS:
                value = head.get(field)
                if value and "-" not in value:
                    return Expected(algorithm, value, f"x-amz-checksum-{algorithm}")
        encrypted = head.get("ServerSideEncryption") in KMS or bool(head.get("SSECustomerAlgorithm"))
        etag = str(head.get("ETag", "")).strip('"').lower()
        multipart = MULTIPART_ETAG.match(etag)
        if multipart and not encrypted:
            parts = int(multipart[2])
            first = int(self._head(obj.key, PartNumber=1)["ContentLength"])
            return Expected(
                "s3-multipart-md5",
                etag,
                f"the ETag of a {parts}-part upload",
                part_size=first,
                part_sizes=lambda: [
                    int(self._head(obj.key, PartNumber=n)["ContentLength"]) for n in range(1, parts + 1)
                ],
            )
        return from_etag(etag, encrypted)

    def read(self, obj: RemoteObject, start: int) -> Iterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.source.bucket, "Key": obj.key}
        if obj.version:
            request["IfMatch"] = obj.version
        if start:
            request["Range"] = f"bytes={start}-"
        what = f"{self.url}{obj.key[len(self.prefix) :]}"
        try:
            response = self.client.get_object(**request)
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "NoSuchKey", "412"):
                raise Changed(f"{code}: the version was {obj.version}") from None
            if self._renew(err):
                raise Transient(f"{code}: asking again with new credentials") from None
            raise self._failure(err, what) from None
        except TRANSIENT as err:
            raise Transient(str(err)) from None
        self._renewed = False
        body = response["Body"]
        if start and not response.get("ContentRange"):
            body.close()
            raise FetchError(f"{what}: the store ignored a Range request; it cannot resume")
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        except TRANSIENT as err:
            raise Transient(f"the connection broke: {err}") from None
        finally:
            body.close()
