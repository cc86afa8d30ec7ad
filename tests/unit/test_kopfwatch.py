"""controller/kopfwatch.py: events of routed kinds go to their handlers in stream order and never
reach kopf's per-object workers; a watched kind whose CRD is deleted ends its stream quietly
instead of stopping the operator (kopf treats any watcher error as fatal)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import watching
from kopf._cogs.clients.errors import APIForbiddenError, APINotFoundError
from llmstage.controller import kopfwatch
from llmstage.controller.kopfwatch import Routes

PODS = SimpleNamespace(group="", version="v1", plural="pods")
SCALED_OBJECTS = SimpleNamespace(group="keda.sh", version="v1alpha1", plural="scaledobjects")


def pod(name: str, kind: str | None = "ADDED", **labels: str) -> dict[str, Any]:
    return {"type": kind, "object": {"kind": "Pod", "metadata": {"name": name, "labels": labels}}}


def source(events: list[Any], error: Exception | None = None) -> Any:
    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event
        if error is not None:
            raise error

    return continuous_watch


async def drain(gen: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in gen]


def test_a_404_ends_the_stream_after_a_pause_and_keeps_what_came_before() -> None:
    first = {"type": "ADDED", "object": {"metadata": {"name": "chat"}}}
    watch = kopfwatch.hooked(
        source([first], APINotFoundError("404 page not found", status=404, headers={})), Routes(), pause=0.01
    )
    assert asyncio.run(drain(watch(resource=SCALED_OBJECTS, namespace="team"))) == [first]


def test_other_errors_stay_kopfs_to_handle() -> None:
    watch = kopfwatch.hooked(
        source([], APIForbiddenError("forbidden", status=403, headers={})), Routes(), pause=0.01
    )
    with pytest.raises(APIForbiddenError):
        asyncio.run(drain(watch(resource=SCALED_OBJECTS, namespace="team")))


def test_routed_events_reach_their_handlers_in_order_and_not_kopf() -> None:
    seen: list[tuple[str, str | None]] = []
    routes = Routes()
    routes.add(
        "", "v1", "pods", {"app": "llm"}, lambda e: seen.append((e["object"]["metadata"]["name"], e["type"]))
    )
    events = [
        pod("a", None, app="llm"),  # from the initial listing
        watching.Bookmark.LISTED,
        pod("b", "ADDED", app="llm"),
        pod("other", "ADDED", app="web"),  # not ours: no handler, and not kopf's either
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
        pod("a", "MODIFIED", app="llm"),
        pod("b", "DELETED", app="llm"),
    ]
    watch = kopfwatch.hooked(source(events), routes)
    to_kopf = asyncio.run(drain(watch(resource=PODS, namespace="team")))
    assert seen == [("a", None), ("b", "ADDED"), ("a", "MODIFIED"), ("b", "DELETED")]
    # kopf still gets its listing bookmark (readiness) and the API server's bookmarks.
    assert to_kopf == [watching.Bookmark.LISTED, events[4]]


def test_kinds_without_routes_pass_through_untouched() -> None:
    routes = Routes()
    routes.add("", "v1", "pods", {}, lambda e: pytest.fail("not a pod stream"))
    events = [{"type": "ADDED", "object": {"metadata": {"name": "so"}}}]
    watch = kopfwatch.hooked(source(events), routes)
    assert asyncio.run(drain(watch(resource=SCALED_OBJECTS, namespace="team"))) == events


def test_labels_select_as_kopf_does() -> None:
    names: list[str] = []
    routes = Routes()
    routes.add(
        "",
        "v1",
        "pods",
        {"app": "llm", "owner": kopf.ABSENT, "tier": kopf.PRESENT},
        lambda e: names.append(e["object"]["metadata"]["name"]),
    )
    events = [
        pod("match", app="llm", tier="x"),
        pod("owned", app="llm", tier="x", owner="y"),
        pod("no-tier", app="llm"),
        pod("wrong-app", app="web", tier="x"),
    ]
    asyncio.run(drain(kopfwatch.hooked(source(events), routes)(resource=PODS, namespace=None)))
    assert names == ["match"]
    with pytest.raises(ValueError, match="callables"):
        routes.add("", "v1", "pods", {"app": lambda value, **_: True}, lambda e: None)


def test_a_failing_handler_is_logged_and_the_stream_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    names: list[str] = []

    def handler(event: dict[str, Any]) -> None:
        if event["object"]["metadata"]["name"] == "bad":
            raise KeyError("status")
        names.append(event["object"]["metadata"]["name"])

    routes = Routes()
    routes.add("", "v1", "pods", {}, handler)
    with caplog.at_level(logging.ERROR, logger=kopfwatch.__name__):
        asyncio.run(
            drain(kopfwatch.hooked(source([pod("bad"), pod("good")]), routes)(resource=PODS, namespace="t"))
        )
    assert names == ["good"]
    assert "handling a ADDED event of Pod /bad failed" in caplog.text


def test_kopf_reconnects_through_the_wrapped_name() -> None:
    """If a kopf upgrade stops calling continuous_watch by its module name, this fails."""
    assert "continuous_watch(" in inspect.getsource(watching.infinite_watch)
    original = watching.continuous_watch
    try:
        kopfwatch.hook_watch_streams(Routes())
        kopfwatch.hook_watch_streams(Routes())  # idempotent: wraps kopf's original once
        wrapped = watching.continuous_watch
        assert wrapped.__name__ == "continuous_watch_llmstage"
        assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    finally:
        setattr(watching, "continuous_watch", original)  # noqa: B010


def test_every_operator_handler_is_routed() -> None:
    """The kinds the operator's kopf handlers watch are the kinds routed, one route per handler."""
    from llmstage.controller import handlers  # noqa: F401 (registers the kopf handlers)
    from llmstage.controller.config import OperatorConfig
    from llmstage.controller.operator import Operator

    registry = kopf.get_default_registry()
    kopf_handlers = [
        (h.selector.group or "", h.selector.version, h.selector.any_name, dict(h.labels or {}))
        for h in registry._watching.get_all_handlers()  # kopf keeps its registry private
    ]
    operator_routes = Operator(OperatorConfig()).routes
    routed = [(*key, dict(r.labels)) for key, routes in operator_routes.by_resource.items() for r in routes]
    assert sorted(map(repr, routed)) == sorted(map(repr, kopf_handlers))
    assert len(routed) == 14  # LLMServices, 10 child kinds, slices, pods, claims per pod


def test_without_the_hook_kopf_calls_the_same_handlers() -> None:
    """The handlers registered with kopf deliver to the same functions as the routes do."""
    from llmstage.controller import handlers
    from llmstage.controller.cache import WatchCache
    from llmstage.controller.config import OperatorConfig
    from llmstage.controller.operator import Operator

    class Queue:
        added: list[Any] = []

        def add(self, key: Any) -> None:
            self.added.append(key)

    cache, queue = WatchCache(), Queue()
    operator = Operator(OperatorConfig())
    operator.cache, operator.queue = cache, queue  # type: ignore[assignment]
    by_id = {str(h.id): h for h in kopf.get_default_registry()._watching.get_all_handlers()}
    service: dict[str, Any] = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"namespace": "team", "name": "chat", "uid": "u1", "resourceVersion": "1"},
    }
    via_kopf: Any = by_id["llmservice_event"].fn  # kopf passes many more keyword arguments
    asyncio.run(via_kopf(event={"type": "ADDED", "object": service}, memo=handlers.memo_for(operator)))
    assert ("team", "chat") in cache.services and queue.added == [("team", "chat")]


def test_kopf_passes_the_keywords_the_hook_reads() -> None:
    """The hook finds the routes by `resource=` and names the namespace by `namespace=`: if a kopf
    upgrade passed them positionally or renamed them, every event would silently take kopf's path."""
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(watching.infinite_watch)))
    (call,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "continuous_watch"
    ]
    assert not call.args
    assert {"resource", "namespace"} <= {k.arg for k in call.keywords}


def test_events_on_the_direct_route_are_counted_and_a_stream_it_cannot_route_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llmstage.controller import metrics

    seen: list[str] = []
    routes = Routes()
    routes.add("", "v1", "pods", {}, lambda e: seen.append(e["object"]["metadata"]["name"]))
    counter = metrics.DIRECT_EVENTS.labels(kind="pods")
    before = counter._value.get()  # prometheus_client keeps the value private
    events = [pod("a"), {"type": "BOOKMARK", "object": {}}, pod("b", kind="DELETED")]
    passed = asyncio.run(drain(kopfwatch.hooked(source(events), routes)(resource=PODS, namespace=None)))
    assert seen == ["a", "b"] and passed == [events[1]]
    assert counter._value.get() - before == 2

    with caplog.at_level(logging.WARNING, logger=kopfwatch.__name__):
        passed = asyncio.run(drain(kopfwatch.hooked(source(events), routes)()))
    assert passed == events and seen == ["a", "b"]
    assert "without resource=" in caplog.text
