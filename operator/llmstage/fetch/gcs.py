"""Google Cloud Storage through its JSON API, with google-auth's credentials.

google.auth.default() is the chain Google's libraries use: GOOGLE_APPLICATION_CREDENTIALS (a key
file, or an external-account file for workload identity federation from another cloud's
cluster), then the metadata server (GKE Workload Identity: the pod's Kubernetes ServiceAccount is
bound to a Google service account; GCE_METADATA_HOST moves it). AuthorizedSession refreshes the
access token before it expires and once more on a 401. Without any credentials the requests are
anonymous, as for a public bucket.

The listing carries each object's size, generation and md5Hash (none for composite objects), so
no request per object is needed before its download; the download is pinned to the generation.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import google.auth
import google.auth.exceptions
import requests
import requests.exceptions
from google.auth.transport.requests import AuthorizedSession

from llmstage.fetch.settings import Source
from llmstage.fetch.transfer import CHUNK, Changed, FetchError, RemoteObject, Transient, Unreachable
from llmstage.fetch.verify import md5_from_base64

SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
TIMEOUT = (10, 60)  # connect, read (seconds)
LIST_ATTEMPTS = 4
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the body broke mid-stream
    google.auth.exceptions.TransportError,  # the metadata server did not answer
    OSError,
)


class GCSStore:
    def __init__(self, source: Source, log: Callable[[str], None]) -> None:
        self.source = source
        self.url = source.url
        self.prefix = source.prefix
        self.objects_url = f"{source.endpoint}/storage/v1/b/{urllib.parse.quote(source.bucket, safe='')}/o"
        try:
            credentials, _ = google.auth.default(scopes=[SCOPE])
        except google.auth.exceptions.DefaultCredentialsError:
            credentials = None
        except google.auth.exceptions.GoogleAuthError as err:
            raise FetchError(f"{self.url}: the pod's Google credentials: {err}") from None
        if credentials is None:
            self.identity = ""
            self.http: requests.Session = requests.Session()
            log("no Google credentials found: anonymous requests")
        else:
            self.identity = f"the pod's Google credentials ({type(credentials).__module__})"
            self.http = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
            log(f"authorizing requests with {self.identity}")

    def _failure(self, response: requests.Response, what: str) -> Exception:
        detail = f"{what}: HTTP {response.status_code}"
        if response.status_code >= 500 or response.status_code == 429:
            return Transient(detail)
        if response.status_code in (401, 403):
            hint = (
                f"check {self.identity}: the Google service account that spec.pod.serviceAccountName is "
                "bound to (Workload Identity) and its access to the bucket (roles/storage.objectViewer)"
                if self.identity
                else "the bucket is not public and the pod has no Google credentials: set "
                "spec.pod.serviceAccountName to a ServiceAccount with Workload Identity, or "
                f"{self.source.field}.gcs.credentialsSecretRef (an HMAC key)"
            )
            return FetchError(f"{detail}: {hint}\n{response.text[:2000]}")
        return FetchError(f"{detail}: check {self.source.field}'s url\n{response.text[:2000]}")

    def _get(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.get(url, timeout=TIMEOUT, **kwargs)
        except google.auth.exceptions.RefreshError as err:
            raise FetchError(f"{self.url}: no access token from {self.identity}: {err}") from None
        except TRANSIENT as err:
            raise Transient(str(err)) from None

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
        response = self._get(url, params=params, headers=headers, stream=True)
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
