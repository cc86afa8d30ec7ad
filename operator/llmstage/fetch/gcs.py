"""Google Cloud Storage through its JSON API, with the pod's Workload Identity.

On GKE with Workload Identity the metadata server (GCE_METADATA_HOST, default
metadata.google.internal) hands the pod an access token of the Google service account its
Kubernetes ServiceAccount is bound to: GET /computeMetadata/v1/instance/service-accounts/default/token
with `Metadata-Flavor: Google` gives {access_token, expires_in}, the call google-auth's
compute_engine credentials make. The token is fetched again five minutes before it expires
(google-auth refreshes 3 min 45 s ahead) and once more on a 401. Where no metadata server answers,
the requests are anonymous, as for a public bucket.

The listing carries each object's size, generation and md5Hash (none for composite objects), so
no request per object is needed before its download; the download is pinned to the generation.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import requests
import requests.exceptions

from llmstage.fetch.settings import Source
from llmstage.fetch.transfer import CHUNK, Changed, FetchError, RemoteObject, Transient, Unreachable
from llmstage.fetch.verify import md5_from_base64

METADATA_TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"
REFRESH_MARGIN_SECONDS = 300
TIMEOUT = (10, 60)  # connect, read (seconds)
METADATA_TIMEOUT = 3  # google-auth's default for the metadata server
METADATA_ATTEMPTS = 3
LIST_ATTEMPTS = 4
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the body broke mid-stream
    OSError,
)


class MetadataToken:
    """The pod's access token from the GKE metadata server, fetched again before it expires."""

    def __init__(self, http: requests.Session, host: str) -> None:
        self.http = http
        self.url = f"http://{host}{METADATA_TOKEN}"
        self.token = ""
        self.expires = 0.0

    def fetch(self) -> None:
        for attempt in range(1, METADATA_ATTEMPTS + 1):
            try:
                response = self.http.get(
                    self.url, headers={"Metadata-Flavor": "Google"}, timeout=METADATA_TIMEOUT
                )
                break
            except TRANSIENT:
                if attempt == METADATA_ATTEMPTS:
                    raise
        if response.status_code != 200:
            raise FetchError(
                f"the GKE metadata server gave no access token (HTTP {response.status_code}): bind the "
                "Kubernetes ServiceAccount of spec.pod.serviceAccountName to a Google service account "
                "(Workload Identity)\n" + response.text[:2000]
            )
        body = response.json()
        self.token = str(body["access_token"])
        self.expires = time.monotonic() + float(body.get("expires_in", 0))

    def header(self) -> str:
        if not self.token or time.monotonic() > self.expires - REFRESH_MARGIN_SECONDS:
            try:
                self.fetch()
            except TRANSIENT as err:
                raise Transient(f"the GKE metadata server: {err}") from None
        return f"Bearer {self.token}"

    def invalidate(self) -> None:
        self.token = ""


class GCSStore:
    def __init__(self, source: Source, log: Callable[[str], None]) -> None:
        self.source = source
        self.url = source.url
        self.prefix = source.prefix
        self.objects_url = f"{source.endpoint}/storage/v1/b/{urllib.parse.quote(source.bucket, safe='')}/o"
        self.http = requests.Session()
        self.token: MetadataToken | None = MetadataToken(
            self.http, os.environ.get("GCE_METADATA_HOST") or "metadata.google.internal"
        )
        try:
            self.token.fetch()
            log("authorizing requests with the pod's token from the GKE metadata server (Workload Identity)")
        except TRANSIENT:
            self.token = None
            log("no GKE metadata server answered: anonymous requests")

    def _failure(self, response: requests.Response, what: str) -> Exception:
        detail = f"{what}: HTTP {response.status_code}"
        if response.status_code >= 500 or response.status_code == 429:
            return Transient(detail)
        if response.status_code in (401, 403):
            hint = (
                "check the Google service account that spec.pod.serviceAccountName is bound to (Workload "
                "Identity) and its access to the bucket (roles/storage.objectViewer)"
                if self.token
                else "the bucket is not public and the pod has no Google identity: set "
                "spec.pod.serviceAccountName to a ServiceAccount with Workload Identity, or "
                f"{self.source.field}.gcs.credentialsSecretRef (an HMAC key)"
            )
            return FetchError(f"{detail}: {hint}\n{response.text[:2000]}")
        return FetchError(f"{detail}: check {self.source.field}'s url\n{response.text[:2000]}")

    def _get(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        for attempt in (1, 2):
            sent = dict(headers or {})
            if self.token:
                sent["Authorization"] = self.token.header()
            try:
                response = self.http.get(url, headers=sent, timeout=TIMEOUT, **kwargs)
            except TRANSIENT as err:
                raise Transient(str(err)) from None
            if response.status_code == 401 and self.token and attempt == 1:
                response.close()
                self.token.invalidate()  # revoked or expired early: once more with a new one
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
