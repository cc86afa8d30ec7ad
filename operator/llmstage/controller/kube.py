"""Thin async access to the Kubernetes API over aiohttp, as kopf's own watches.

Only what the reconciler needs: server-side apply, get, list, delete, status merge-patch, Events
and one watch, with retries for the errors that fix themselves (409 on non-apply writes, 429,
5xx, timeouts). Credentials come from llmstage.kubeapi (kubeconfig or ServiceAccount, exec
plugins, rotated tokens); the generated kubernetes client is not used (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from llmstage import __version__
from llmstage.controller import fastjson
from llmstage.kubeapi import credentials
from llmstage.kubeapi.credentials import Auth
from llmstage.kubeapi.errors import ApiError, HttpError
from llmstage.kubeapi.kinds import KINDS, Kind, kind_of

__all__ = ["KINDS", "USER_AGENT", "ApiError", "Http", "Kind", "Kube", "RetryPolicy", "kind_of"]

log = logging.getLogger(__name__)

FIELD_MANAGER = "llmstage"
# The API server's audit log tells the operator's requests apart by this (idle-write tests); the
# identity of the replica follows in parentheses (leader-election tests tell replicas apart).
USER_AGENT = f"llmstage/{__version__}"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
T = TypeVar("T")


RETRYABLE = {409, 429, 500, 502, 503, 504}


def fenced_request_class(fence: Callable[[], None]) -> type[aiohttp.ClientRequest]:
    """An aiohttp request class that calls `fence()` (which raises to refuse) right before it
    sends a write: after the connection is ready, before the first byte goes out. Checking any
    earlier leaves a window (connection set-up, a paused process) in which a replica that just
    lost its lease could still send a write it had decided on before."""

    class FencedRequest(aiohttp.ClientRequest):
        async def send(self, conn: Any) -> aiohttp.ClientResponse:
            if self.method in WRITE_METHODS:
                fence()
            return await super().send(conn)

    return FencedRequest


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 10.0
    # 409 is retried only for writes that are not server-side apply: apply has no
    # resourceVersion precondition, so a conflict there is a field-ownership fight.
    retry_conflicts: bool = True


class Http:
    """One aiohttp session to one API server, with the credentials kept fresh: an exec plugin is
    run again before its credential expires and once more on a 401, a token file is re-read."""

    def __init__(self, auth: Auth, session: aiohttp.ClientSession) -> None:
        self.auth, self.session = auth, session
        self.server = auth.credentials.server

    @classmethod
    async def open(
        cls, auth: Auth, pool_size: int, user_agent: str, fence: Callable[[], None] | None = None
    ) -> Http:
        await asyncio.to_thread(auth.refresh)
        session_args: dict[str, Any] = {}
        if fence is not None:
            session_args["request_class"] = fenced_request_class(fence)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            # trust_env makes aiohttp look for ~/.netrc in a worker thread before every request
            # (docs/benchmarks.md); it is needed only to honour proxy variables.
            trust_env=any(os.environ.get(v) for v in PROXY_ENV),
            **session_args,
        )
        return cls(auth, session)

    async def close(self) -> None:
        await self.session.close()

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: Any,
        content_type: str,
        timeout: aiohttp.ClientTimeout | None,
    ) -> aiohttp.ClientResponse:
        for attempt in (1, 2):
            if self.auth.stale():
                await asyncio.to_thread(self.auth.refresh)
            c = self.auth.credentials
            headers = self.auth.headers()
            data = None
            if body is not None:
                headers["Content-Type"] = content_type
                data = json.dumps(body, separators=(",", ":")).encode()
            extra: dict[str, Any] = {}
            if timeout is not None:
                extra["timeout"] = timeout
            if c.tls_server_name:
                extra["server_hostname"] = c.tls_server_name
            resp = await self.session.request(
                method.upper(),
                self.server + path,
                params=params,
                data=data,
                headers=headers,
                ssl=self.auth.ssl_context() or True,
                proxy=c.proxy_url,
                **extra,
            )
            if resp.status == 401 and attempt == 1 and self.auth.refreshable:
                resp.release()  # an expired credential: renew it once and ask again
                await asyncio.to_thread(self.auth.refresh, True)
                continue
            if resp.status >= 400:
                raw = await resp.read()
                resp.release()
                raise HttpError(resp.status, dict(resp.headers), raw)
            return resp
        raise AssertionError("unreachable")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        resp = await self._send(method, path, params, body, content_type, None)
        try:
            raw = await resp.read()
            return fastjson.loads(raw) if raw else {}
        finally:
            resp.release()

    async def lines(self, path: str, params: dict[str, str], timeout: float) -> AsyncIterator[bytes]:
        """A streamed GET (a watch), line by line, until the server ends it."""
        resp = await self._send("get", path, params, None, "", aiohttp.ClientTimeout(total=timeout))
        try:
            async for line in resp.content:
                yield line
        finally:
            resp.release()


def _params(**given: Any) -> dict[str, str]:
    """Query parameters: None left out, booleans as the API server spells them."""
    return {
        k: ("true" if v is True else "false" if v is False else str(v))
        for k, v in given.items()
        if v is not None
    }


class Kube:
    """One shared connection pool; every call retried per RetryPolicy."""

    def __init__(
        self,
        http: Http,
        retry: RetryPolicy | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self.http = http
        self.retry = retry or RetryPolicy()
        # Raises to refuse a write (leader election); also checked before each attempt.
        self.fence = fence
        # Counted for the metrics endpoint and for tests that assert idle behaviour.
        self.write_count = 0

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        pool_size: int = 64,
        user_agent: str = USER_AGENT,
        *,
        fence: Callable[[], None] | None = None,
        retry: RetryPolicy | None = None,
        context: str | None = None,
    ) -> Kube:
        """The kubeconfig's context (the one named, else $KUBECONFIG's or ~/.kube/config's
        current one), else the pod's ServiceAccount. Raises ConfigError naming what is wrong."""
        found = credentials.load(kubeconfig, context)
        return await cls.open(found, pool_size, user_agent, fence=fence, retry=retry)

    @classmethod
    async def open(
        cls,
        found: credentials.Credentials,
        pool_size: int = 64,
        user_agent: str = USER_AGENT,
        *,
        fence: Callable[[], None] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Kube:
        http = await Http.open(Auth(found), pool_size, user_agent, fence)
        return cls(http, retry, fence)

    @property
    def server(self) -> str:
        return self.http.server

    async def close(self) -> None:
        await self.http.close()

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], *, conflicts: bool) -> T:
        delay = self.retry.base_delay
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await fn()
            except HttpError as err:
                error = err.api_error()
                retryable = (
                    error.status in RETRYABLE
                    and (error.status != 409 or conflicts)
                    and not error.rejected_object
                )
                if not retryable or attempt == self.retry.attempts:
                    raise error from None
                retry_after = err.headers.get("Retry-After") if error.status == 429 else None
                wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            # Connection refused and resets are OSErrors; a connection the API server closes
            # mid-request (it is restarting) is aiohttp's ServerDisconnectedError, which is not.
            except (TimeoutError, OSError, aiohttp.ClientConnectionError) as err:
                if attempt == self.retry.attempts:
                    raise ApiError(0, "Unreachable", f"{what}: {err!r}") from err
                wait = delay
            log.debug("retrying %s in %.2fs (attempt %d)", what, wait, attempt)
            await asyncio.sleep(wait * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.retry.max_delay)
        raise AssertionError("unreachable")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        conflicts: bool = True,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if method != "get":
            self.write_count += 1

        async def go() -> dict[str, Any]:
            if method != "get" and self.fence is not None:
                self.fence()
            data: dict[str, Any] = await self.http.request(
                method, path, params=params, body=body, content_type=content_type
            )
            return data

        return await self._call(f"{method.upper()} {path}", go, conflicts=conflicts)

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply with field manager "llmstage". Force takes fields back from other
        managers that changed what we own (drift repair); fields we do not set stay theirs."""
        k = kind_of(obj)
        meta = obj["metadata"]
        return await self._request(
            "patch",
            k.path(meta.get("namespace"), meta["name"]),
            body=obj,
            conflicts=False,
            content_type="application/apply-patch+yaml",
            params=_params(fieldManager=FIELD_MANAGER, force=force),
        )

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("get", kind.path(namespace, name))
        except ApiError as err:
            if err.not_found:
                return None
            raise

    async def discover(self, path: str) -> dict[str, Any]:
        """An API discovery document, e.g. /apis/keda.sh/v1alpha1 (an APIResourceList)."""
        return await self._request("get", path)

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        data = await self._request(
            "get",
            kind.path(namespace),
            params=_params(labelSelector=label_selector, fieldSelector=field_selector),
        )
        items: list[dict[str, Any]] = data.get("items", [])
        return items

    async def delete(self, kind: Kind, namespace: str | None, name: str, *, uid: str | None = None) -> bool:
        """Delete in the background; a uid precondition keeps us from deleting a newer object of
        the same name. Returns False when it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request("delete", kind.path(namespace, name), body=body)
            return True
        except ApiError as err:
            if err.not_found or err.status == 409:  # 409: precondition failed, it's another object now
                return False
            raise

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._request(
            "patch",
            kind.path(namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
            params=_params(fieldManager=FIELD_MANAGER),
        )

    async def create(self, kind: Kind, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._request("post", kind.path(namespace), body=obj, conflicts=False)

    async def replace(
        self, kind: Kind, namespace: str | None, name: str, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """PUT: the object's resourceVersion makes it conditional (409 if it changed)."""
        return await self._request("put", kind.path(namespace, name), body=obj, conflicts=False)

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        field_selector: str | None = None,
        timeout_seconds: int = 240,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events ({"type": ..., "object": {...}}) until the server ends the watch."""
        params = _params(watch=True, fieldSelector=field_selector, timeoutSeconds=timeout_seconds)
        async for line in self.http.lines(kind.path(namespace), params, timeout_seconds + 30):
            if line.strip():
                yield json.loads(line)
