"""Thin async access to the Kubernetes API on the official client's asyncio transport.

Only what the reconciler needs: server-side apply, get, list, delete, status merge-patch and
Events, with retries for the errors that fix themselves (409 on non-apply writes, 429, 5xx,
timeouts). Paths come from a static table instead of API discovery: the operator touches a
fixed set of kinds, and discovery would cost requests and memory on every start.
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
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio.dynamic import DynamicClient
from kubernetes.aio.dynamic.exceptions import DynamicApiError

from llmstage import __version__
from llmstage.controller import fastjson

log = logging.getLogger(__name__)

FIELD_MANAGER = "llmstage"
# The API server's audit log tells the operator's requests apart by this (idle-write tests); the
# identity of the replica follows in parentheses (leader-election tests tell replicas apart).
USER_AGENT = f"llmstage/{__version__}"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in [
        Kind("llmstage.io/v1alpha1", "LLMService", "llmservices"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("v1", "Service", "services"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "Event", "events"),
        Kind("v1", "Node", "nodes", namespaced=False),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
        Kind("coordination.k8s.io/v1", "Lease", "leases"),
        Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors"),
        Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
        Kind("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "leaderworkersets"),
        Kind("inference.networking.k8s.io/v1", "InferencePool", "inferencepools"),
        Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
        Kind(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            namespaced=False,
        ),
    ]
}


def kind_of(obj: dict[str, Any]) -> Kind:
    try:
        return KINDS[(obj["apiVersion"], obj["kind"])]
    except KeyError as err:
        raise ValueError(f"llmstage does not manage {obj.get('apiVersion')}/{obj.get('kind')}") from err


class ApiError(Exception):
    """A Kubernetes API error that retries did not resolve (or that retrying cannot fix)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def rejected_object(self) -> bool:
        """Server-side apply of an object whose fields have the wrong type (e.g. an affinity
        that is a string) fails with 500 "failed to create typed patch object", not 422: the
        object is wrong, retrying cannot help."""
        return self.status == 500 and "failed to create typed patch object" in self.message


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


def _as_api_error(err: DynamicApiError) -> ApiError:
    message, reason = str(err.reason), str(err.reason)
    try:
        body = json.loads(err.body) if err.body else {}
        message = body.get("message", message)
        reason = body.get("reason", reason)
    except (ValueError, TypeError):
        pass
    return ApiError(int(err.status or 0), reason, message)


class Kube:
    """One shared connection pool; every call retried per RetryPolicy."""

    def __init__(
        self,
        api: aio_client.ApiClient,
        retry: RetryPolicy | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.dyn = DynamicClient(api)  # type: ignore[no-untyped-call]
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
        configuration = aio_client.Configuration()
        try:
            await aio_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except aio_config.ConfigException:
            aio_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = pool_size
        session: dict[str, Any] = {}
        if not any(os.environ.get(v) for v in PROXY_ENV):
            # trust_env makes aiohttp look for ~/.netrc in a worker thread before every request
            # (docs/benchmarks.md); it is needed only to honour proxy variables.
            session["trust_env"] = False
        if fence is not None:
            session["request_class"] = fenced_request_class(fence)
        if session:
            configuration.client_session_kwargs = session
        api = aio_client.ApiClient(configuration)
        api.user_agent = user_agent
        return cls(api, retry, fence)

    async def close(self) -> None:
        await self.api.close()  # type: ignore[no-untyped-call]

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], *, conflicts: bool) -> T:
        delay = self.retry.base_delay
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await fn()
            except DynamicApiError as err:
                error = _as_api_error(err)
                retryable = (
                    error.status in RETRYABLE
                    and (error.status != 409 or conflicts)
                    and not error.rejected_object
                )
                if not retryable or attempt == self.retry.attempts:
                    raise error from None
                retry_after = (err.headers or {}).get("Retry-After") if error.status == 429 else None
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
        self, method: str, path: str, *, body: Any = None, conflicts: bool = True, **params: Any
    ) -> dict[str, Any]:
        if method != "get":
            self.write_count += 1

        async def go() -> dict[str, Any]:
            if method != "get" and self.fence is not None:
                self.fence()
            resp = await self.dyn.request(method, path, body=body, serialize=False, **params)
            data: dict[str, Any] = await resp.json(loads=fastjson.loads)
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
            field_manager=FIELD_MANAGER,
            force_conflicts=force,
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
            "get", kind.path(namespace), label_selector=label_selector, field_selector=field_selector
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
            field_manager=FIELD_MANAGER,
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
        resp = await self.dyn.request(
            "get",
            kind.path(namespace),
            serialize=False,
            watch=True,
            field_selector=field_selector,
            timeout_seconds=timeout_seconds,
            _request_timeout=timeout_seconds + 30,
        )
        try:
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)
        finally:
            resp.release()
