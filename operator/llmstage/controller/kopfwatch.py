"""The operator's two hooks on kopf's watch streams: events of our kinds go straight to their
handlers, and a watched kind whose CRD goes away does not stop the operator.

kopf stays the watch layer: it lists, watches, keeps the resourceVersion, reconnects, restarts
on 410 Gone, pauses and follows namespaces and CRDs. Both hooks wrap the one generator kopf
reconnects through (`continuous_watch`); kopf is pinned, and tests/unit/test_kopfwatch.py fails
if a new kopf no longer calls it by that name or without the keywords read here (`resource`,
`namespace`). Events delivered this way are counted in llmstage_watch_events_direct_total, and a
stream kopf opens without `resource=` logs a warning: its events would otherwise take kopf's
slower path unnoticed.

Direct delivery (`Routes`). Every handler of ours only feeds the watch cache and marks an
LLMService dirty: microseconds, no I/O. kopf's path to a handler is a worker task per object, a
queue, a batching window, cause detection and handler invocation: in the N=1000 profile about a
quarter of the operator's CPU and a worker's memory per busy object (docs/benchmarks.md). A routed
event is handed to its handlers in stream order, inside the watcher's task, and never reaches
kopf's per-object machinery. The same functions stay registered with kopf (that is what makes kopf
watch the kind), so without the hook they are still called, through kopf.

Vanished kinds. The operator watches KEDA's ScaledObjects when KEDA is installed. When someone
uninstalls KEDA (or its CRD is deleted), the API server ends the ScaledObject watch and kopf
reconnects after `settings.watching.reconnect_backoff`; the new request gets 404, and kopf 1.45
treats any error of a watcher as fatal: the whole operator exits, unless kopf's CRD observation
cancelled that watcher first. That is a race the operator can lose, and with exact namespaces kopf
does not observe CRDs at all. A 404 ends that stream quietly after a pause, and kopf's own loop
tries again later. If the CRD comes back, the watch resumes; if kopf's observation drops the kind,
the watcher is cancelled as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from llmstage.controller import metrics

log = logging.getLogger(__name__)

# How long a watcher of a vanished kind waits before kopf asks again: one request per this many
# seconds per namespace while the CRD is gone, instead of one per reconnect backoff (0.1 s).
VANISHED_RETRY_SECONDS = 10.0

# kopf's event types that carry an object (None: from the initial listing). BOOKMARK carries only
# a resourceVersion, which kopf's stream has already taken.
_OBJECT_EVENTS = frozenset({None, "ADDED", "MODIFIED", "DELETED"})

EventHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Route:
    """`labels` as kopf takes them: a value, kopf.PRESENT or kopf.ABSENT per key."""

    labels: Mapping[str, Any]
    handler: EventHandler

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, want in self.labels.items():
            if want is kopf.ABSENT:
                if key in labels:
                    return False
            elif want is kopf.PRESENT:
                if key not in labels:
                    return False
            elif labels.get(key) != want:
                return False
        return True


@dataclass
class Routes:
    """Handlers by (group, version, plural), each with the labels an object must carry."""

    by_resource: dict[tuple[str, str, str], list[Route]] = field(default_factory=dict)

    def add(self, group: str, version: str, plural: str, labels: Mapping[str, Any], fn: EventHandler) -> None:
        if any(callable(v) for v in labels.values()):
            raise ValueError("routes take label values, kopf.PRESENT or kopf.ABSENT, not callables")
        self.by_resource.setdefault((group, version, plural), []).append(Route(dict(labels), fn))

    def of(self, resource: Any) -> list[Route] | None:
        """The routes of a kopf Resource (anything with group, version, plural)."""
        return self.by_resource.get((resource.group, resource.version, resource.plural))

    @staticmethod
    def deliver(routes: list[Route], event: dict[str, Any]) -> None:
        body = event.get("object") or {}
        labels = (body.get("metadata") or {}).get("labels") or {}
        for route in routes:
            if not route.matches(labels):
                continue
            try:
                route.handler(event)
            except Exception:  # as kopf does for event handlers: log, go on with the next event
                meta = body.get("metadata") or {}
                log.exception(
                    "handling a %s event of %s %s/%s failed",
                    event.get("type") or "listed",
                    body.get("kind", "object"),
                    meta.get("namespace", ""),
                    meta.get("name", ""),
                )


def hooked(
    continuous_watch: Callable[..., AsyncIterator[Any]],
    routes: Routes,
    pause: float = VANISHED_RETRY_SECONDS,
) -> Callable[..., AsyncIterator[Any]]:
    """kopf's `continuous_watch` with both hooks (module docstring)."""
    from kopf._cogs.clients.errors import APINotFoundError

    async def continuous_watch_llmstage(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        resource: Any = kwargs.get("resource")
        resource_routes = routes.of(resource) if resource is not None else None
        # The routes and the counter of what they deliver, for a kind we route.
        routed = (
            (resource_routes, metrics.DIRECT_EVENTS.labels(kind=resource.plural)) if resource_routes else None
        )
        if resource is None and routes.by_resource:
            log.warning(
                "kopf opened a watch stream without resource=...: its events go through kopf's "
                "workers, not the direct route (a kopf upgrade changed continuous_watch's call?)"
            )
        try:
            async for event in continuous_watch(*args, **kwargs):
                if routed is not None and isinstance(event, dict) and event.get("type") in _OBJECT_EVENTS:
                    Routes.deliver(routed[0], event)
                    routed[1].inc()
                    continue
                yield event  # kopf's bookmarks, and kinds we do not route (kopf's own peering, ...)
        except APINotFoundError:
            resource, namespace = kwargs.get("resource"), kwargs.get("namespace")
            log.warning(
                "%s is not served any more%s (its CRD was deleted?); watching it again in %.0f s",
                resource,
                f" in namespace {namespace}" if namespace else "",
                pause,
            )
            await asyncio.sleep(pause)

    return continuous_watch_llmstage


def hook_watch_streams(routes: Routes) -> None:
    """Before kopf starts watching; idempotent (a second call replaces the routes)."""
    from kopf._cogs.clients import watching

    current = watching.continuous_watch
    original = getattr(current, "__wrapped__", current)
    wrapper = hooked(original, routes)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(watching, "continuous_watch", wrapper)  # noqa: B010 (kopf's module)
