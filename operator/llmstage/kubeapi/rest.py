"""A small synchronous client for the CLI's one-shot calls, on httpx: raw JSON in and out, the
credentials of llmstage.kubeapi.credentials (renewed once on a 401), ApiError for an answer of
400 or more, httpx.TransportError when the API server cannot be reached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from llmstage import __version__
from llmstage.kubeapi.credentials import Auth, Credentials
from llmstage.kubeapi.errors import ApiError, HttpError
from llmstage.kubeapi.kinds import Kind

REQUEST_TIMEOUT = 30.0


class RestClient:
    def __init__(self, found: Credentials, timeout: float = REQUEST_TIMEOUT) -> None:
        self.auth = Auth(found)
        self.auth.refresh()
        self._extensions = {"sni_hostname": found.tls_server_name} if found.tls_server_name else None
        self.client = httpx.Client(
            base_url=found.server,
            verify=self.auth.ssl_context() or True,
            timeout=timeout,
            proxy=found.proxy_url,
            headers={"User-Agent": f"llmstage-cli/{__version__}", "Accept": "application/json"},
        )

    def close(self) -> None:
        self.client.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None,
        body: Any,
        stream: bool = False,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        for attempt in (1, 2):
            headers = self.auth.headers()
            content = None
            if body is not None:
                headers["Content-Type"] = "application/json"
                content = json.dumps(body).encode()
            request = self.client.build_request(
                method,
                path,
                params=params,
                content=content,
                headers=headers,
                extensions=self._extensions,
                timeout=timeout or self.client.timeout,
            )
            resp = self.client.send(request, stream=stream)
            if resp.status_code == 401 and attempt == 1 and self.auth.refreshable:
                resp.close()
                self.auth.refresh(force=True)
                continue
            if resp.status_code >= 400:
                raw = resp.read()
                resp.close()
                raise HttpError(resp.status_code, dict(resp.headers), raw).api_error()
            return resp
        raise AssertionError("unreachable")

    def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        return self._send(method, path, params=params, body=body).json()

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.request("GET", kind.path(namespace, name))
        except ApiError as err:
            if err.not_found:
                return None
            raise
        return found

    def list(
        self, kind: Kind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = (
            self.request("GET", kind.path(namespace), params=params).get("items") or []
        )
        return items

    def create(self, kind: Kind, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.request("POST", kind.path(namespace), body=obj)
        return created

    def replace(self, kind: Kind, namespace: str | None, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        replaced: dict[str, Any] = self.request("PUT", kind.path(namespace, name), body=obj)
        return replaced

    def delete(
        self, kind: Kind, namespace: str | None, name: str, body: dict[str, Any] | None = None
    ) -> bool:
        """False when it was already gone."""
        try:
            self.request("DELETE", kind.path(namespace, name), body=body)
        except ApiError as err:
            if err.not_found:
                return False
            raise
        return True

    def text(self, path: str, params: dict[str, str] | None = None) -> str:
        return self._send("GET", path, params=params, body=None).text

    def lines(self, path: str, params: dict[str, str] | None = None) -> Iterator[str]:
        """A streamed GET (a followed log), line by line, with no read timeout."""
        forever = httpx.Timeout(REQUEST_TIMEOUT, read=None)
        resp = self._send("GET", path, params=params, body=None, stream=True, timeout=forever)
        try:
            yield from resp.iter_lines()
        finally:
            resp.close()
