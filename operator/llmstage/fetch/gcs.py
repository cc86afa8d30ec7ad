"""Google Cloud Storage through its JSON API, with google-auth's standard credential chain.

google.auth.default() is the chain Google's own libraries use, first found wins:
GOOGLE_APPLICATION_CREDENTIALS (a service-account key file, or an external-account file for
workload identity federation from a cluster outside Google Cloud), gcloud's application default
credentials, then the metadata server: GKE Workload Identity, the pod's Kubernetes ServiceAccount
bound to a Google service account (GCE_METADATA_HOST moves it). google-auth fetches and renews the
access token; it is refreshed before a request once google-auth no longer calls it fresh (3 min 45 s
before it expires) and once more on a 401. Without any credentials the requests are anonymous, as
for a public bucket.

google-auth is not in the venv's site-packages but in <venv>/fetch-gcs (requirements/gcs.txt), and
only this module puts that directory on sys.path: the kubernetes client imports google.auth
whenever it can (kubernetes/config/kube_config.py), and with it cryptography, which the operator
keeps out of its memory.

The listing carries each object's size, generation and md5Hash (none for composite objects), so
no request per object is needed before its download; the download is pinned to the generation.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
import requests.exceptions

from llmstage.fetch.settings import Source
from llmstage.fetch.transfer import CHUNK, Changed, FetchError, RemoteObject, Transient, Unreachable
from llmstage.fetch.verify import md5_from_base64

# Where the image (/opt/llmstage/fetch-gcs) and `make venv` (.venv/fetch-gcs) install google-auth.
FETCH_GCS_DIR = os.path.join(sys.prefix, "fetch-gcs")
if os.path.isdir(FETCH_GCS_DIR) and FETCH_GCS_DIR not in sys.path:
    sys.path.insert(0, FETCH_GCS_DIR)  # ahead of site-packages: the locked release, whatever else is there

try:
    import google.auth
    import google.auth.compute_engine
    import google.auth.exceptions
    import google.auth.external_account
    import google.auth.transport.requests
    import google.oauth2.service_account
    from google.auth.credentials import Credentials, TokenState
except ImportError as err:  # llmstage installed without the image's or `make venv`'s step for it
    raise FetchError(
        f"google-auth is not installed in {FETCH_GCS_DIR} ({err}): install requirements/gcs.txt there "
        f"(pip install --require-hashes --no-deps --target {FETCH_GCS_DIR} -r requirements/gcs.txt)"
    ) from None

SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
TIMEOUT = (10, 60)  # connect, read (seconds)
LIST_ATTEMPTS = 4
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the body broke mid-stream
    OSError,
)


@dataclass(frozen=True)
class Identity:
    """The credentials google.auth.default() found, and what the messages say about them."""

    credentials: Credentials
    what: str  # what the requests are authorized with (the log says)
    issuer: str  # what hands out the access tokens
    no_token: str  # what to check when it gives none
    refused: str  # what to check on a 401 or 403 of the bucket


def _origin() -> str:
    """Where google.auth.default() found a credentials file."""
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    return (
        f"GOOGLE_APPLICATION_CREDENTIALS ({key_file})"
        if key_file
        else "gcloud's application default credentials"
    )


def identity_of(credentials: Credentials) -> Identity:
    email = getattr(credentials, "service_account_email", None)
    if isinstance(credentials, google.auth.compute_engine.Credentials):
        return Identity(
            credentials,
            what="the pod's token from the GKE metadata server (Workload Identity)",
            issuer="the GKE metadata server",
            no_token="bind the Kubernetes ServiceAccount of spec.pod.serviceAccountName to a Google "
            "service account (Workload Identity)",
            refused="check the Google service account that spec.pod.serviceAccountName is bound to "
            "(Workload Identity) and its access to the bucket (roles/storage.objectViewer)",
        )
    origin = _origin()
    principal = f"service account {email}" if email else f"the identity of {origin}"
    refused = f"check the access of {principal} to the bucket (roles/storage.objectViewer)"
    if isinstance(credentials, google.oauth2.service_account.Credentials):
        return Identity(
            credentials,
            what=f"the key of service account {email} from {origin}",
            issuer=f"the token endpoint of the key of {origin}",
            no_token="check that the key is not deleted or disabled, nor its service account",
            refused=refused,
        )
    if isinstance(credentials, google.auth.external_account.Credentials):
        return Identity(
            credentials,
            what=f"workload identity federation from {origin}" + (f", as {email}" if email else ""),
            issuer=f"workload identity federation from {origin}",
            no_token="check the workload identity pool's provider, the subject token (file or URL) the "
            "configuration names, and the service account it impersonates",
            refused=refused,
        )
    return Identity(  # an authorized_user (gcloud's login), an impersonated service account, ...
        credentials,
        what=origin,
        issuer=origin,
        no_token=f"check {origin}",
        refused=refused,
    )


def default_identity(request: google.auth.transport.requests.Request) -> Identity | None:
    """google.auth.default()'s credentials, or None where there are none (anonymous requests)."""
    # google-auth pings GCE_METADATA_IP to tell whether there is a metadata server at all, and asks
    # GCE_METADATA_HOST for tokens: GCE_METADATA_HOST alone moves both.
    host = os.environ.get("GCE_METADATA_HOST")
    if host and not os.environ.get("GCE_METADATA_IP"):
        os.environ["GCE_METADATA_IP"] = host
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    try:
        credentials, _ = google.auth.default(scopes=[SCOPE], request=request)
    except google.auth.exceptions.DefaultCredentialsError as err:
        if key_file:  # named but unusable: never anonymous in its place
            raise FetchError(
                f"GOOGLE_APPLICATION_CREDENTIALS names {key_file}, which google-auth cannot use: {err}: "
                "check the file (a service-account key or an external-account configuration) and the "
                "volume that mounts it (spec.pod.volumes, spec.pod.volumeMounts)"
            ) from None
        return None
    except google.auth.exceptions.GoogleAuthError as err:
        # With an external-account file google.auth.default() already fetches a token here, to ask
        # Cloud Resource Manager for the pool's project (not when GOOGLE_CLOUD_PROJECT is set).
        raise FetchError(
            f"{_origin()}: {err}: check the file; where the pod can reach only GCS and STS, set "
            "GOOGLE_CLOUD_PROJECT (spec.vllm.env)"
        ) from None
    return identity_of(credentials)


class GCSStore:
    def __init__(self, source: Source, log: Callable[[str], None]) -> None:
        self.source = source
        self.url = source.url
        self.prefix = source.prefix
        self.objects_url = f"{source.endpoint}/storage/v1/b/{urllib.parse.quote(source.bucket, safe='')}/o"
        self.http = requests.Session()
        # google-auth's token requests go through the same session: the same proxy and CA bundle.
        self.auth_request = google.auth.transport.requests.Request(self.http)
        self.identity = default_identity(self.auth_request)
        if self.identity:
            log(f"authorizing requests with {self.identity.what}")
        else:
            log(
                "no Google credentials found (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application "
                "default credentials, a GKE metadata server): anonymous requests"
            )

    def _refresh(self, identity: Identity) -> None:
        try:
            identity.credentials.refresh(self.auth_request)
        except google.auth.exceptions.GoogleAuthError as err:
            transient = (
                isinstance(err, google.auth.exceptions.TransportError)
                or isinstance(err.__cause__, google.auth.exceptions.TransportError)
                or err.retryable
            )
            if transient:
                raise Transient(f"{identity.issuer}: {err}") from None
            raise FetchError(f"{identity.issuer} gave no access token: {err}: {identity.no_token}") from None

    def _failure(self, response: requests.Response, what: str) -> Exception:
        detail = f"{what}: HTTP {response.status_code}"
        if response.status_code >= 500 or response.status_code == 429:
            return Transient(detail)
        if response.status_code in (401, 403):
            hint = (
                self.identity.refused
                if self.identity
                else "the bucket is not public and the pod has no Google identity: set "
                "spec.pod.serviceAccountName to a ServiceAccount with Workload Identity, "
                "GOOGLE_APPLICATION_CREDENTIALS (spec.vllm.env) to a key or workload identity federation "
                f"file mounted with spec.pod.volumes, or {self.source.field}.gcs.credentialsSecretRef "
                "(an HMAC key)"
            )
            return FetchError(f"{detail}: {hint}\n{response.text[:2000]}")
        return FetchError(f"{detail}: check {self.source.field}'s url\n{response.text[:2000]}")

    def _get(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        for attempt in (1, 2):
            sent = dict(headers or {})
            if self.identity:
                if self.identity.credentials.token_state is not TokenState.FRESH:
                    self._refresh(self.identity)
                self.identity.credentials.apply(sent)
            try:
                response = self.http.get(url, headers=sent, timeout=TIMEOUT, **kwargs)
            except TRANSIENT as err:
                raise Transient(str(err)) from None
            if response.status_code == 401 and self.identity and attempt == 1:
                response.close()
                self._refresh(self.identity)  # revoked or expired early: once more with a new one
                continue
            return response
        raise AssertionError("unreachable")

    def objects(self) -> Iterator[RemoteObject]:
        token = ""
        while True:
            params = {"prefix": self.prefix, "fields": "items(name,size,generation,md5Hash),nextPageToken"}
            if token:
                params["pageToken"] = token
            page = self._list_page(params)
            for item in page.get("items", []):
                md5 = item.get("md5Hash")
                yield RemoteObject(
                    item["name"],
                    int(item.get("size", 0)),
                    str(item.get("generation", "")),
                    md5_from_base64(md5) if md5 else None,
                )
            token = page.get("nextPageToken", "")
            if not token:
                return

    def _list_page(self, params: dict[str, str]) -> dict[str, Any]:
        what = f"the list of {self.url}"
        for attempt in range(1, LIST_ATTEMPTS + 1):
            try:
                response = self._get(self.objects_url, params=params)
                if response.status_code == 200:
                    page: dict[str, Any] = response.json()
                    return page
                failure = self._failure(response, what)
                if not isinstance(failure, Transient):
                    raise failure
            except Transient as err:
                failure = err
            if attempt == LIST_ATTEMPTS:
                raise Unreachable(f"{failure}: check the endpoint and the network (proxy, NO_PROXY)")
            time.sleep(2**attempt)
        raise AssertionError("unreachable")

    def expected(self, obj: RemoteObject) -> None:
        return None  # the listing said all there is (RemoteObject.expected)

    def read(self, obj: RemoteObject, start: int) -> Iterator[bytes]:
        url = f"{self.objects_url}/{urllib.parse.quote(obj.key, safe='')}"
        params = {"alt": "media"}
        if obj.version:
            params["ifGenerationMatch"] = obj.version
        headers = {"Range": f"bytes={start}-"} if start else {}
        response = self._get(url, headers, params=params, stream=True)
        try:
            if response.status_code in (404, 412):
                raise Changed(f"HTTP {response.status_code}: the generation was {obj.version}")
            if response.status_code not in (200, 206):
                raise self._failure(response, f"{self.url}{obj.key[len(self.prefix) :]}")
            if start and response.status_code != 206:
                raise FetchError(f"{self.url}: the store ignored a Range request; it cannot resume")
            try:
                yield from response.iter_content(CHUNK)
            except TRANSIENT as err:
                raise Transient(f"the connection broke: {err}") from None
        finally:
            response.close()
