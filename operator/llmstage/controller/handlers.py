"""Every kopf decorator of the operator, and nothing else: each handler hands what kopf delivers to
the process's Operator (controller/operator.py), which kopf passes to every handler as its memo.
Watch events feed the watch cache and mark the owning LLMService dirty; the work happens in the
Reconciler, driven by the WorkQueue.

Handlers are async on purpose: sync ones would run in kopf's thread pool, away from the event
loop the work queue lives on. Only `on.event` handlers are used, also on purpose: kopf then
stores no progress or diff-base annotations and adds no finalizer, so the operator writes
nothing kopf-specific, deleting an LLMService never waits for the operator, and the garbage
collector removes the children.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import kopf

from llmstage.controller.watches import WATCHES, Watch

if TYPE_CHECKING:
    from llmstage.controller.operator import Operator


def memo_for(operator: Operator) -> kopf.Memo:
    """What `kopf.operator(memo=...)` gets: kopf hands (a shallow copy of) it to every handler."""
    return kopf.Memo(operator=operator)


def operator_of(memo: Any) -> Operator:
    operator: Operator = memo.operator
    return operator


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps a diff-base only for on.create/on.update/on.field handlers; we have none. The
    default storage deep-copies every body on every watch event to build it anyway, a measurable
    share of the operator's CPU (docs/benchmarks.md)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """kopf records handler progress only for on.create/on.update/on.resume handlers; we have
    none. The default storages still deep-copy and scan an (empty) essence twice per watch event
    (about 3% of the operator's CPU at N=1000, docs/benchmarks.md)."""

    def fetch(self, *, key: Any, body: kopf.Body) -> Any:
        return None

    def store(self, *, key: Any, record: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


@kopf.on.login()
def login(memo: Any, **kwargs: Any) -> kopf.ConnectionInfo | None:
    return operator_of(memo).login(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    operator = operator_of(memo)
    # Our own Events say what changed; kopf's per-handler Events would be writes at every event.
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [0.5, 1, 2, 5, 10]
    # kopf keeps a worker task per object for idle_timeout after its last event (default 5 s).
    # Our handlers only feed the cache, so a short-lived worker costs nothing and frees its
    # memory sooner (peak RSS, docs/benchmarks.md).
    settings.queueing.idle_timeout = 1.0
    namespaces = operator.config.namespaces
    if namespaces and not any(ch in n for n in namespaces for ch in "*?["):
        # Exact namespaces need no cluster-wide scan of CRDs and namespaces; skipping it is what
        # lets the namespaced install (Roles only) start without 403s.
        settings.scanning.disabled = True
    await operator.start()


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    await operator_of(memo).stop()


def _register(watch: Watch) -> None:
    """An event handler for `watch` with kopf, which is what makes kopf watch the kind. With the
    direct route installed (controller/kopfwatch.py), kopf never calls it: the route delivers the
    events to the same Operator handler."""

    async def via_kopf(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
        operator_of(memo).handlers[watch](dict(event))

    kopf.on.event(watch.group, watch.version, watch.plural, labels=dict(watch.labels), id=watch.handler_id)(
        via_kopf
    )


for _watch in WATCHES:
    _register(_watch)
