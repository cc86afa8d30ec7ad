"""One operator process, built from its OperatorConfig: the watch cache, the work queue, the
Reconciler, leader election, and the event handlers that feed them.

    run(Operator(config), servers)

`run` installs the process-wide hooks and starts kopf with the Operator as every handler's memo;
the kopf handlers (controller/handlers.py) and the direct route from kopf's streams
(controller/kopfwatch.py) call the same methods of it. The state lives in the Operator instance:
nothing is kept at module or class level.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

import kopf

from llmstage import __version__
from llmstage.benchmark.store import RESULT_LABEL_SELECTOR
from llmstage.controller import allocator, apiserver, kubeconfig, metrics
from llmstage.controller.cache import ServiceKey, WatchCache
from llmstage.controller.config import OperatorConfig
from llmstage.controller.kopfwatch import EventHandler, Routes
from llmstage.controller.kube import KINDS, USER_AGENT, ApiError, Kube, RetryPolicy
from llmstage.controller.leader import Campaign, ElectionThread, Leadership, NotLeaderError
from llmstage.controller.reconciler import Reconciler, Settings
from llmstage.controller.watches import CHILD_KINDS, OPTIONAL_KINDS, WATCHES, Watch
from llmstage.controller.workqueue import WorkQueue
from llmstage.kubeapi.credentials import Auth, Credentials, in_cluster
from llmstage.kubeapi.credentials import load as load_credentials
from llmstage.render.labels import APP_NAME, MANAGED_BY_LABEL, MANAGER, NAME_LABEL
from llmstage.resolve.resolved import ClusterFacts
from llmstage.resolve.tenancy import TenancyPolicy

log = logging.getLogger(__name__)


class Operator:
    """What the handlers share, for one process. The client, cache and queue are made in `start`
    (kopf's startup), which kopf may retry; the handlers run only after it succeeded."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.leadership = Leadership(elected=config.leader_election is not None)
        self.election: ElectionThread | None = None
        self.kube: Kube
        self.cache: WatchCache
        self.queue: WorkQueue[ServiceKey]
        # /readyz: the caches are filled (startup done) and the operator is not stopping.
        self.ready = False
        # Watch events handled so far: the allocator trims only after some (controller/allocator.py).
        self.events_seen = 0
        self.trimmer: asyncio.Task[None] | None = None
        self.handlers: dict[Watch, EventHandler] = {
            watch: self.llmservice_event if watch.service else functools.partial(self.child_event, watch)
            for watch in WATCHES
        }
        # How watch events reach the handlers: straight from kopf's streams once `run` hooked
        # them, else through kopf's own workers (controller/handlers.py).
        self.routes = Routes()
        for watch, handler in self.handlers.items():
            self.routes.add(watch.group, watch.version, watch.plural, watch.labels, handler)

    # ------------------------------------------------------------------------- start and stop
    async def start(self) -> None:
        config = self.config
        # Every write of the reconciler passes the fence: a standby, or a leader that could not
        # renew its lease in time, sends none.
        fence = self.leadership.check if config.leader_election is not None else None
        self.kube = await connect(
            config, config.concurrency + 8, f"{USER_AGENT} ({config.identity})", fence=fence
        )
        self.cache = WatchCache()
        await self._wait_for_api_server()
        try:
            facts = await detect_facts(self.kube, config.monitoring_namespace)
            await prefill(self.kube, self.cache, list(config.namespaces) or None, facts)
        except ApiError as err:
            # The API server went away between the wait and here: one line, and kopf tries again.
            raise kopf.TemporaryError(f"start-up: {apiserver.cause(err)}", delay=10) from None
        reconciler = Reconciler(
            self.kube,
            self.cache,
            facts,
            Settings(
                unschedulable_grace=config.unschedulable_grace,
                tenancy=config.tenancy or TenancyPolicy(),
                serving_defaults=config.serving_defaults,
            ),
        )
        self.queue = WorkQueue(
            reconciler,
            concurrency=config.concurrency,
            expected_errors=(ApiError,),
            abandon_errors=(NotLeaderError,),
            active=config.leader_election is None,
        )
        for kind in self.cache.counts():  # read at scrape time, never stale
            metrics.MANAGED.labels(kind=kind).set_function(self._cache_count(kind))
        metrics.QUEUE_DEPTH.set_function(lambda: float(self.queue.depth))
        metrics.IN_FLIGHT.set_function(lambda: float(self.queue.in_flight))
        if config.leader_election is None:
            metrics.LEADER.set(1)
        else:
            self._start_election()
        self.trimmer = asyncio.create_task(allocator.trim_after_activity(lambda: self.events_seen))
        self.ready = True
        log.info("llmstage ready: %s", self.cache.counts())

    async def _wait_for_api_server(self) -> None:
        """Before the first list: GET /version with one attempt per try, logged in one line each."""
        probe_client = await connect(self.config, 1, USER_AGENT, retry=RetryPolicy(attempts=1))
        try:
            await apiserver.wait_until_reachable(
                lambda: probe_client.discover("/version"), log, probe_client.server
            )
        finally:
            await probe_client.close()

    def _start_election(self) -> None:
        """The elector runs in a thread of its own (see ElectionThread) with its own client: its
        own connection pool, one attempt per request (it retries every retry period), its user
        agent."""
        config = self.config
        assert config.leader_election is not None

        async def election_client() -> Kube:
            agent = f"llmstage-leader-election/{__version__} ({config.identity})"
            return await connect(config, 2, agent, retry=RetryPolicy(attempts=1))

        def started() -> None:
            # Everything in the cache once: the standby saw the events but did not act on them.
            self.queue.activate(list(self.cache.services))

        self.election = ElectionThread(
            election_client,
            self.leadership,
            Campaign(
                config.leader_election, config.identity, on_started=started, on_stopped=self.queue.deactivate
            ),
        )
        self.election.start()

    def _cache_count(self, kind: str) -> Callable[[], float]:
        return lambda: float(self.cache.counts()[kind])

    async def stop(self) -> None:
        self.ready = False
        if self.trimmer is not None:
            self.trimmer.cancel()
        if self.election is not None:
            # Stop leading first (running reconciles are cancelled, the fence closes), then hand
            # the Lease over so that a standby takes over at its next try.
            await self.election.stop()
        await self.queue.stop()
        await self.kube.close()

    def login(self, **kwargs: Any) -> kopf.ConnectionInfo | None:
        """kopf's watches use the same credentials as our client (credentials_of); kopf calls
        this again when the API server answers 401, which renews an expired token."""
        return kubeconfig.connection_info(Auth(credentials_of(self.config)))

    def health(self) -> dict[str, Any]:
        """What /healthz and /readyz answer (llmstage.controller.health)."""
        from llmstage.controller.leader import describe

        cache = getattr(self, "cache", None)
        elector = self.election.elector if self.election is not None else None
        return {
            "ready": self.ready,
            "cache": cache.counts() if cache is not None else None,
            **(
                describe(elector)
                if elector is not None
                else {
                    "leaderElection": self.leadership.elected,
                    "leader": not self.leadership.elected,
                }
            ),
        }

    # ------------------------------------------------------------------------- watch events
    def _count_event(self, plural: str) -> None:
        self.events_seen += 1
        metrics.WATCH_EVENTS.labels(kind=plural, changed=str(self.cache.changed).lower()).inc()

    def llmservice_event(self, event: dict[str, Any]) -> None:
        body = event["object"]
        deleted = _deleted(event)
        key = self.cache.put_service(dict(body), deleted=deleted)
        self._count_event("llmservices")
        if deleted:
            self.queue.forget(key)
            metrics.CONDITIONS.forget(*key)
            return
        metrics.CONDITIONS.observe(*key, (body.get("status") or {}).get("conditions") or [])
        if self.cache.changed:
            self.queue.add(key)

    def child_event(self, watch: Watch, event: dict[str, Any]) -> None:
        """Feed the cache; mark the owning service dirty."""
        put: Callable[..., ServiceKey | None] = getattr(self.cache, watch.put)
        owner = put(dict(event["object"]), deleted=_deleted(event))
        self._count_event(watch.plural)
        if owner is not None and self.cache.changed and owner in self.cache.services:
            self.queue.add(owner)


async def connect(
    config: OperatorConfig,
    pool_size: int,
    user_agent: str,
    *,
    retry: RetryPolicy | None = None,
    fence: Callable[[], None] | None = None,
) -> Kube:
    """A client with the configured credentials (each user its own pool and user agent)."""
    return await Kube.open(credentials_of(config), pool_size, user_agent, retry=retry, fence=fence)


def credentials_of(config: OperatorConfig) -> Credentials:
    """The kubeconfig given to `llmstage run` (or $KUBECONFIG, ~/.kube/config), else the pod's
    ServiceAccount; in a pod with neither flag given, the ServiceAccount."""
    if config.in_cluster and not config.kubeconfig and not config.context:
        return in_cluster()
    return load_credentials(config.kubeconfig, config.context)


def _deleted(event: dict[str, Any]) -> bool:
    return event.get("type") == "DELETED"


async def prefill(kube: Kube, cache: WatchCache, namespaces: list[str] | None, facts: ClusterFacts) -> None:
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


async def detect_facts(kube: Kube, monitoring_namespace: str | None) -> ClusterFacts:
    crds = KINDS[("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
    try:
        found = await kube.get(crds, None, "podmonitors.monitoring.coreos.com") is not None
    except ApiError as err:  # no permission to read CRDs: assume absent, say so
        log.warning("cannot check for the PodMonitor CRD (%s); not rendering PodMonitors", err)
        found = False
    served = {
        field: await detect_kind(kube, api_version, kind, crd)
        for (api_version, kind), (crd, field) in OPTIONAL_KINDS.items()
    }
    return ClusterFacts(pod_monitor_crd=found, monitoring_namespace=monitoring_namespace or None, **served)


async def detect_kind(kube: Kube, api_version: str, kind: str, crd: str) -> bool:
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


def _quiet_shutdown_noise(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """kopf's watch generators can fail to close cleanly when the loop stops on SIGTERM; that
    is shutdown noise (nothing is lost), so it is logged at debug instead of as a traceback."""
    if str(context.get("message", "")).startswith(
        "an error occurred during closing of asynchronous generator"
    ):
        log.debug("at shutdown: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


async def _operate(operator: Coroutine[Any, Any, None], servers: list[Any]) -> None:
    asyncio.get_running_loop().set_exception_handler(_quiet_shutdown_noise)
    for server in servers:
        await server.start()
    try:
        await operator
    finally:
        for server in servers:
            await server.stop()


def run(operator: Operator, servers: list[Any]) -> None:
    """Until stopped: kopf with `operator` as every handler's memo, the servers (health, metrics)
    around it. The process-wide hooks are installed first."""
    from llmstage.controller import handlers
    from llmstage.controller.fastjson import use_for_kopf_watches
    from llmstage.controller.kopfwatch import hook_watch_streams
    from llmstage.controller.tls import shrink_read_buffers

    config = operator.config
    shrink_read_buffers()
    use_for_kopf_watches()
    hook_watch_streams(operator.routes)
    if config.kubeconfig:
        # kopf's own login reads the same kubeconfig as our client.
        os.environ["KUBECONFIG"] = config.kubeconfig
    asyncio.run(
        _operate(
            kopf.operator(
                standalone=True,
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                liveness_endpoint=None,  # ours: /healthz and /readyz (llmstage.controller.health)
                identity=config.identity,  # type: ignore[arg-type]
                memo=handlers.memo_for(operator),
            ),
            servers,
        )
    )
