"""The operator's Prometheus endpoint: HTTPS, and only for callers the API server vouches for.

As controller-runtime's secure metrics (pkg/metrics/filters WithAuthenticationAndAuthorization):
the bearer token of each request is checked with a TokenReview, the user it names with a
SubjectAccessReview for `get` on the non-resource URL /metrics, both answered by the API server.
No token: 401; a token the API server rejects: 401; a user without the right: 403; the API
server unreachable: 500 (nothing is served on doubt). Decisions are cached as controller-runtime
caches them: an authenticated token for 1 minute, an allowed user for 5 minutes, a denied one
for 30 seconds, so a scrape every 30 s costs no API request most of the time.

The operator needs `create` on tokenreviews and subjectaccessreviews for this (the chart's
<fullname>-metrics-auth ClusterRole), and the scraper a role with `get` on /metrics (the chart's
<fullname>-metrics-reader). On a loopback address (tests, a local run) metrics may be served plain
instead: only processes of the same host reach them (`llmstage run --metrics-secure` decides).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from llmstage.controller.kube import ApiError, Kind, Kube

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
TOKEN_REVIEW = Kind("authentication.k8s.io/v1", "TokenReview", "tokenreviews", namespaced=False)
ACCESS_REVIEW = Kind(
    "authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews", namespaced=False
)
# controller-runtime v0.2x pkg/metrics/filters/filters.go: CacheTTL, AllowCacheTTL, DenyCacheTTL.
AUTHENTICATED_TTL, ALLOWED_TTL, DENIED_TTL = 60.0, 300.0, 30.0
MAX_CACHED = 1024


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 401, 403 or 500
    reason: str


class Reviewer:
    """Asks the API server who a token belongs to and whether that user may GET /metrics."""

    def __init__(
        self, connect: Callable[[], Awaitable[Kube]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._connect, self._clock = connect, clock
        self._kube: Kube | None = None
        self._lock = asyncio.Lock()
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}  # token digest -> user
        self._access: dict[str, tuple[float, bool]] = {}  # user name -> allowed

    async def _client(self) -> Kube:
        async with self._lock:
            if self._kube is None:
                self._kube = await self._connect()
            return self._kube

    async def close(self) -> None:
        if self._kube is not None:
            await self._kube.close()

    def _cached(self, cache: dict[str, tuple[float, Any]], key: str) -> tuple[bool, Any]:
        entry = cache.get(key)
        if entry is None or entry[0] < self._clock():
            cache.pop(key, None)
            return False, None
        return True, entry[1]

    def _remember(self, cache: dict[str, tuple[float, Any]], key: str, value: Any, ttl: float) -> None:
        if len(cache) >= MAX_CACHED:
            cache.clear()  # a flood of distinct tokens must not grow memory
        cache[key] = (self._clock() + ttl, value)

    async def _user(self, token: str) -> dict[str, Any] | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        hit, user = self._cached(self._users, digest)
        if hit:
            return user  # type: ignore[no-any-return]
        kube = await self._client()
        review = await kube.create(
            TOKEN_REVIEW,
            None,
            {"apiVersion": TOKEN_REVIEW.api_version, "kind": TOKEN_REVIEW.kind, "spec": {"token": token}},
        )
        status = review.get("status") or {}
        user = status.get("user") if status.get("authenticated") else None
        # Rejections are cached too, briefly: a flood of bad tokens must not become one API request each.
        self._remember(self._users, digest, user, AUTHENTICATED_TTL if user is not None else DENIED_TTL)
        return user

    async def _allowed(self, user: dict[str, Any]) -> bool:
        name = user.get("username", "")
        hit, allowed = self._cached(self._access, name)
        if hit:
            return bool(allowed)
        kube = await self._client()
        spec = {
            "user": name,
            "uid": user.get("uid"),
            "groups": user.get("groups") or [],
            "extra": user.get("extra") or {},
            "nonResourceAttributes": {"path": METRICS_PATH, "verb": "get"},
        }
        review = await kube.create(
            ACCESS_REVIEW,
            None,
            {"apiVersion": ACCESS_REVIEW.api_version, "kind": ACCESS_REVIEW.kind, "spec": spec},
        )
        allowed = bool((review.get("status") or {}).get("allowed"))
        self._remember(self._access, name, allowed, ALLOWED_TTL if allowed else DENIED_TTL)
        return allowed

    async def decide(self, authorization: str | None) -> Decision:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Decision(401, "Unauthorized: send a ServiceAccount token as Authorization: Bearer")
        try:
            user = await self._user(token.strip())
            if user is None:
                return Decision(401, "Unauthorized")
            if not await self._allowed(user):
                return Decision(403, f"Authorization denied for user {user.get('username', '')}")
        except ApiError as err:
            log.warning("metrics: could not review a scrape's credentials: %s", err)
            return Decision(500, "Authentication failed")
        return Decision(200, "")


class MetricsServer:
    """GET /metrics on a socket bound beforehand; TLS and the reviewer when given."""

    def __init__(
        self, sock: socket.socket, context: ssl.SSLContext | None, reviewer: Reviewer | None
    ) -> None:
        self.sock, self.context, self.reviewer = sock, context, reviewer
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.reviewer is not None:
            decision = await self.reviewer.decide(request.headers.get("Authorization"))
            if decision.status != 200:
                return web.Response(status=decision.status, text=decision.reason + "\n")
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get(METRICS_PATH, self._metrics)])
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock, ssl_context=self.context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.reviewer is not None:
            await self.reviewer.close()
