"""Every kopf decorator of the operator, and nothing else: each handler feeds the watch cache and
marks the owning LLMService dirty. The work happens in Reconciler, driven by the WorkQueue.

Handlers are async on purpose: sync ones would run in kopf's thread pool, away from the event
loop the work queue lives on. Only `on.event` handlers are used, also on purpose: kopf then
stores no progress or diff-base annotations and adds no finalizer, so the operator writes
nothing kopf-specific, deleting an LLMService never waits for the operator, and the garbage
collector removes the children.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
from collections.abc import Callable
from typing import Any

import kopf

from llmstage import __version__
from llmstage.benchmark.store import RESULT_LABEL_SELECTOR, RESULT_SELECTOR
from llmstage.controller import allocator, kubeconfig, metrics
from llmstage.controller.cache import ServiceKey, WatchCache
from llmstage.controller.kopfwatch import Routes
from llmstage.controller.kube import KINDS, USER_AGENT, ApiError, Kube, RetryPolicy
from llmstage.controller.leader import ElectionThread, Leadership, NotLeaderError, Timing
from llmstage.controller.reconciler import Reconciler, Settings
from llmstage.controller.workqueue import WorkQueue
from llmstage.render.labels import APP_NAME, CACHE, COMPONENT_LABEL, MANAGED_BY_LABEL, MANAGER, NAME_LABEL
from llmstage.resolve.resolved import ClusterFacts

KEDA_API_VERSION = "keda.sh/v1alpha1"
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"
HTTP_ROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
# Kinds of optional add-ons: the CRD that serves each, and the ClusterFacts field that says it does.
OPTIONAL_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    (KEDA_API_VERSION, "ScaledObject"): ("scaledobjects.keda.sh", "keda_crd"),
    (LWS_API_VERSION, "LeaderWorkerSet"): ("leaderworkersets.leaderworkerset.x-k8s.io", "lws_crd"),
    (INFERENCE_POOL_API_VERSION, "InferencePool"): (
        "inferencepools.inference.networking.k8s.io",
        "inference_pool_crd",
    ),
    (HTTP_ROUTE_API_VERSION, "HTTPRoute"): ("httproutes.gateway.networking.k8s.io", "http_route_crd"),
}

log = logging.getLogger(__name__)

OURS = {MANAGED_BY_LABEL: MANAGER}
CHILD_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    # Watched so that a ScaledObject is pruned when spec.autoscaling.autoscaler goes back to hpa.
    # Without KEDA's CRD kopf logs one "unresolved resources" warning and watches the rest; the
    # same for the kinds below (LeaderWorkerSet, the inference extension's, Gateway API's).
    (KEDA_API_VERSION, "ScaledObject"),
    (LWS_API_VERSION, "LeaderWorkerSet"),
    (INFERENCE_POOL_API_VERSION, "InferencePool"),
    (HTTP_ROUTE_API_VERSION, "HTTPRoute"),
]


class OperatorState:
    """What the handlers share; built in `startup` from the options `llmstage run` stored."""

    options: dict[str, Any] = {}
    kube: Kube
    cache: WatchCache
    queue: WorkQueue[ServiceKey]
    leadership: Leadership = Leadership(elected=False)
    election: ElectionThread | None = None
    # /readyz: the caches are filled (startup done) and the operator is not stopping.
    ready: bool = False
    # Watch events handled so far: the allocator trims only after some (controller/allocator.py).
    events_seen: int = 0
    trimmer: asyncio.Task[None] | None = None


async def _prefill(kube: Kube, cache: WatchCache, namespaces: list[str] | None, facts: ClusterFacts) -> None:
    """Load the children before the first reconcile: a reconcile with a half-empty cache would
    see no Service and could switch a cutover's Service to pods that are not ready yet."""
    # Namespace patterns (kopf accepts globs) are listed cluster-wide and filtered here.
    patterns = [n for n in namespaces or [] if any(ch in n for ch in "*?[")]
    scopes: list[str | None] = [n for n in namespaces or [] if n not in patterns]
    if not namespaces or patterns:
        scopes.append(None)

    def wanted(item: dict[str, Any]) -> bool:
        ns = item["metadata"].get("namespace", "")
        return not patterns or ns in (namespaces or []) or any(fnmatch.fnmatch(ns, p) for p in patterns)

    ours = f"{MANAGED_BY_LABEL}={MANAGER}"
    sources: list[tuple[str, str, str, Any]] = [
        (api_version, kind, ours, cache.put_child)
        for api_version, kind in CHILD_KINDS
        # No CRD, nothing to list.
        if (api_version, kind) not in OPTIONAL_KINDS or getattr(facts, OPTIONAL_KINDS[(api_version, kind)][1])
    ]
    sources += [
        ("discovery.k8s.io/v1", "EndpointSlice", ours, cache.put_slice),
        ("v1", "Pod", f"{NAME_LABEL}={APP_NAME}", cache.put_pod),
        ("v1", "ConfigMap", RESULT_LABEL_SELECTOR, cache.put_benchmark),
    ]
    for ns in scopes:
        for api_version, kind, selector, put in sources:
            for item in await kube.list(KINDS[(api_version, kind)], ns, label_selector=selector):
                if wanted(item):
                    put({**item, "apiVersion": api_version, "kind": kind})


async def _detect_facts(kube: Kube) -> ClusterFacts:
    crds = KINDS[("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
    try:
        found = await kube.get(crds, None, "podmonitors.monitoring.coreos.com") is not None
    except ApiError as err:  # no permission to read CRDs: assume absent, say so
        log.warning("cannot check for the PodMonitor CRD (%s); not rendering PodMonitors", err)
        found = False
    served = {
        field: await _detect_kind(kube, api_version, kind, crd)
        for (api_version, kind), (crd, field) in OPTIONAL_KINDS.items()
    }
    return ClusterFacts(pod_monitor_crd=found, **served)


async def _detect_kind(kube: Kube, api_version: str, kind: str, crd: str) -> bool:
    """An add-on's CRD (KEDA's ScaledObject, LeaderWorkerSet, ...), read like the PodMonitor's;
    where CRDs are not readable (namespaced RBAC), API discovery (readable by every authenticated
    user) says whether the kind is served."""
    crds = KINDS[("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
    try:
        return await kube.get(crds, None, crd) is not None
    except ApiError:
        pass
    try:
        group = await kube.discover(f"/apis/{api_version}")
    except ApiError as err:
        if not err.not_found:
            log.warning("cannot check whether %s is served (%s); assuming it is not", kind, err)
        return False
    plural = KINDS[(api_version, kind)].plural
    return any(r.get("name") == plural for r in group.get("resources") or [])


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
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's watches use the same credentials as our client: the kubeconfig given to
    `llmstage run` (or $KUBECONFIG, ~/.kube/config), else the pod's service account.
    Explicit, because kopf's client-library login reads $KUBECONFIG only at import time."""
    opts = OperatorState.options
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not opts.get("kubeconfig") and not opts.get("context"):
        return kopf.login_with_service_account(**kwargs)
    if opts.get("context"):
        # kopf's kubeconfig login reads current-context only.
        return kubeconfig.connection_info(opts.get("kubeconfig"), opts["context"])
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    opts = OperatorState.options
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
    # ConfigMaps are filtered by the API server, not after the fact as kopf does for the other
    # kinds: a cluster's ConfigMaps are many and large, and only benchmark results are read.
    settings.watching.label_selectors["v1", "configmaps"] = RESULT_LABEL_SELECTOR
    namespaces = opts.get("namespaces") or []
    if namespaces and not any(ch in n for n in namespaces for ch in "*?["):
        # Exact namespaces need no cluster-wide scan of CRDs and namespaces; skipping it is what
        # lets the namespaced install (Roles only) start without 403s.
        settings.scanning.disabled = True
    identity = opts.get("identity") or "llmstage"
    election: dict[str, Any] | None = opts.get("leader_election")
    OperatorState.leadership = Leadership(elected=election is not None)
    # Every write of the reconciler passes the fence: a standby, or a leader that could not
    # renew its lease in time, sends none.
    OperatorState.kube = await Kube.connect(
        opts.get("kubeconfig"),
        context=opts.get("context"),
        pool_size=opts.get("concurrency", 32) + 8,
        user_agent=f"{USER_AGENT} ({identity})",
        fence=OperatorState.leadership.check if election is not None else None,
    )
    OperatorState.cache = WatchCache()
    facts = await _detect_facts(OperatorState.kube)
    await _prefill(OperatorState.kube, OperatorState.cache, opts.get("namespaces"), facts)
    reconciler = Reconciler(
        OperatorState.kube,
        OperatorState.cache,
        facts,
        Settings(unschedulable_grace=opts.get("unschedulable_grace", 120.0)),
    )
    OperatorState.queue = WorkQueue(
        reconciler,
        concurrency=opts.get("concurrency", 32),
        expected_errors=(ApiError,),
        abandon_errors=(NotLeaderError,),
        active=election is None,
    )
    for kind in OperatorState.cache.counts():  # read at scrape time, never stale
        metrics.MANAGED.labels(kind=kind).set_function(_cache_count(kind))
    metrics.QUEUE_DEPTH.set_function(lambda: float(OperatorState.queue.depth))
    metrics.IN_FLIGHT.set_function(lambda: float(OperatorState.queue.in_flight))
    if election is None:
        metrics.LEADER.set(1)
    else:
        await _start_election(election, identity)
    OperatorState.trimmer = asyncio.create_task(
        allocator.trim_after_activity(lambda: OperatorState.events_seen)
    )
    OperatorState.ready = True
    log.info("llmstage ready: %s", OperatorState.cache.counts())


async def _start_election(election: dict[str, Any], identity: str) -> None:
    """The elector runs in a thread of its own (see ElectionThread) with its own client: its own
    connection pool, one attempt per request (it retries every retry period), its user agent."""
    timing: Timing = election["timing"]
    kubeconfig = OperatorState.options.get("kubeconfig")

    async def connect() -> Kube:
        return await Kube.connect(
            kubeconfig,
            context=OperatorState.options.get("context"),
            pool_size=2,
            user_agent=f"llmstage-leader-election/{__version__} ({identity})",
            retry=RetryPolicy(attempts=1),
        )

    def started() -> None:
        # Everything in the cache once: the standby saw the events but did not act on them.
        OperatorState.queue.activate(list(OperatorState.cache.services))

    OperatorState.election = ElectionThread(
        connect,
        OperatorState.leadership,
        namespace=election["namespace"],
        name=election["name"],
        identity=identity,
        timing=timing,
        on_started=started,
        on_stopped=OperatorState.queue.deactivate,
    )
    OperatorState.election.start()


def _cache_count(kind: str) -> Callable[[], float]:
    return lambda: float(OperatorState.cache.counts()[kind])


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    OperatorState.ready = False
    if OperatorState.trimmer is not None:
        OperatorState.trimmer.cancel()
    if OperatorState.election is not None:
        # Stop leading first (running reconciles are cancelled, the fence closes), then hand the
        # Lease over so that a standby takes over at its next try.
        await OperatorState.election.stop()
    await OperatorState.queue.stop()
    await OperatorState.kube.close()


def health() -> dict[str, Any]:
    """What /healthz and /readyz answer (llmstage.controller.health)."""
    from llmstage.controller.leader import describe

    cache = getattr(OperatorState, "cache", None)
    elector = OperatorState.election.elector if OperatorState.election is not None else None
    return {
        "ready": OperatorState.ready,
        "cache": cache.counts() if cache is not None else None,
        **(
            describe(elector)
            if elector is not None
            else {
                "leaderElection": OperatorState.leadership.elected,
                "leader": not OperatorState.leadership.elected,
            }
        ),
    }


def _count_event(plural: str) -> None:
    OperatorState.events_seen += 1
    metrics.WATCH_EVENTS.labels(kind=plural, changed=str(OperatorState.cache.changed).lower()).inc()


def _deleted(event: dict[str, Any]) -> bool:
    return event.get("type") == "DELETED"


# How watch events reach the handlers below: straight from kopf's streams (kopfwatch, installed
# by `llmstage run`), or through kopf's own workers where that hook is not installed.
ROUTES = Routes()


def _on_event(
    group: str,
    version: str,
    plural: str,
    fn: Callable[[dict[str, Any]], None],
    *,
    labels: dict[str, Any],
    handler_id: str,
) -> None:
    """Registers `fn(event)` with kopf (which is what makes kopf watch the kind) and on the direct
    route from kopf's stream. With the route installed, kopf never sees these events."""

    async def via_kopf(event: kopf.RawEvent, **_: Any) -> None:
        fn(dict(event))

    ROUTES.add(group, version, plural, labels, fn)
    kopf.on.event(group, version, plural, labels=labels, id=handler_id)(via_kopf)


def llmservice_event(event: dict[str, Any]) -> None:
    body = event["object"]
    key = OperatorState.cache.put_service(dict(body), deleted=_deleted(event))
    _count_event("llmservices")
    if _deleted(event):
        OperatorState.queue.forget(key)
        metrics.CONDITIONS.forget(*key)
        return
    metrics.CONDITIONS.observe(*key, (body.get("status") or {}).get("conditions") or [])
    if OperatorState.cache.changed:
        OperatorState.queue.add(key)


_on_event(
    "llmstage.io", "v1alpha1", "llmservices", llmservice_event, labels={}, handler_id="llmservice_event"
)


def _watch_children(
    group: str,
    version: str,
    plural: str,
    labels: dict[str, Any],
    put: Callable[..., ServiceKey | None],
    handler_id: str | None = None,
) -> None:
    """One event handler per watched child kind: feed the cache, mark the owning service dirty."""

    def child_event(event: dict[str, Any]) -> None:
        owner = put(dict(event["object"]), deleted=_deleted(event))
        _count_event(plural)
        if owner is not None and OperatorState.cache.changed and owner in OperatorState.cache.services:
            OperatorState.queue.add(owner)

    _on_event(group, version, plural, child_event, labels=labels, handler_id=handler_id or f"{plural}-event")


# The cache methods are looked up at event time: OperatorState.cache is created in `startup`.
for _api_version, _kind in CHILD_KINDS:
    _group, _, _version = _api_version.rpartition("/")
    _watch_children(
        _group,
        _version,
        KINDS[(_api_version, _kind)].plural,
        OURS,
        lambda body, deleted: OperatorState.cache.put_child(body, deleted),
    )
# EndpointSlices carry our Service's labels; pods carry our pod-template labels.
_watch_children(
    "discovery.k8s.io",
    "v1",
    "endpointslices",
    OURS,
    lambda body, deleted: OperatorState.cache.put_slice(body, deleted),
)
_watch_children(
    "", "v1", "pods", {NAME_LABEL: APP_NAME}, lambda body, deleted: OperatorState.cache.put_pod(body, deleted)
)
# `llmstage benchmark` results: ConfigMaps the CLI writes (read for status.benchmark, never written).
_watch_children(
    "",
    "v1",
    "configmaps",
    dict(RESULT_SELECTOR),
    lambda body, deleted: OperatorState.cache.put_benchmark(body, deleted),
    handler_id="benchmark-results-event",
)
# Claims per pod (spec.cache mode PerPod) carry our labels but not managed-by: the pod owns them.
# kopf filters labels on its side: the PVC watch above is the only one.
_watch_children(
    "",
    "v1",
    "persistentvolumeclaims",
    {NAME_LABEL: APP_NAME, COMPONENT_LABEL: CACHE, MANAGED_BY_LABEL: kopf.ABSENT},
    lambda body, deleted: OperatorState.cache.put_pod_claim(body, deleted),
    handler_id="pod-claims-event",
)
