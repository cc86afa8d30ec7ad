"""Prometheus metrics of the operator (served by `llmstage run --metrics-port`).

Every replica serves them. The per-service condition series come from the watch cache, which
standbys keep warm too, so they do not jump when the leader changes; aggregate them with
`max by (namespace, name, type, status)` (charts/llmstage/files/prometheus-rules.yaml does).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from llmstage import __version__

RECONCILES = Counter("llmstage_reconciles_total", "Reconciles of LLMServices by result", ["result"])
RECONCILE_SECONDS = Histogram(
    "llmstage_reconcile_duration_seconds",
    "Time one reconcile took",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
APPLIES = Counter("llmstage_applies_total", "Server-side applies of child objects", ["kind"])
DELETES = Counter(
    "llmstage_prunes_total", "Child objects deleted because they are no longer desired", ["kind"]
)
RENDERS = Counter(
    "llmstage_renders_total",
    "Renders of an LLMService's desired objects; a reconcile whose inputs did not change reuses the last one",
)
STATUS_WRITES = Counter("llmstage_status_writes_total", "Status patches of LLMServices")
API_ERRORS = Counter("llmstage_api_errors_total", "API errors that survived retries", ["status"])
WATCH_EVENTS = Counter(
    "llmstage_watch_events_total",
    "Watch events the handlers processed, by kind and whether they changed what a reconcile reads",
    ["kind", "changed"],
)
DIRECT_EVENTS = Counter(
    "llmstage_watch_events_direct_total",
    "Watch events handed to the handlers straight from kopf's stream (controller/kopfwatch.py), by kind; "
    "llmstage_watch_events_total minus these went through kopf's own workers",
    ["kind"],
)
MANAGED = Gauge("llmstage_managed_objects", "Objects in the operator's watch cache", ["kind"])

# The work queue (controller-runtime's workqueue_* metrics, for one queue).
QUEUE_DEPTH = Gauge("llmstage_workqueue_depth", "LLMServices waiting for a reconcile to start")
QUEUE_SECONDS = Histogram(
    "llmstage_workqueue_queue_duration_seconds",
    "Time from an LLMService being marked dirty to its reconcile starting",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    "llmstage_workqueue_retries_total", "Reconciles that failed and were scheduled again with backoff"
)
IN_FLIGHT = Gauge("llmstage_reconciles_in_flight", "Reconciles running now")

# Leader election.
LEADER = Gauge("llmstage_leader", "1 while this replica is the leader (reconciles and writes), else 0")
LEADER_TRANSITIONS = Counter("llmstage_leader_acquisitions_total", "Times this replica became the leader")
LEADER_RENEW_FAILURES = Counter(
    "llmstage_leader_renew_failures_total",
    "Lease renewals that failed (the leader retries until its deadline)",
)

BUILD_INFO = Gauge(
    "llmstage_build_info",
    "Always 1; the labels say which llmstage, Python, kopf and aiohttp (its HTTP client) run",
    ["version", "python_version", "kopf_version", "aiohttp_version"],
)


def _version_of(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(
    version=__version__,
    python_version=platform.python_version(),
    kopf_version=_version_of("kopf"),
    aiohttp_version=_version_of("aiohttp"),
).set(1)


class ConditionSeries(Collector):
    """llmstage_llmservice_condition, in step with the LLMServices' status: one series per service
    and condition type, labelled with the current status; a changed status replaces its series,
    a deleted service removes all of its series.

    A collector, not a labelled Gauge: the series are made at scrape time from one small tuple per
    service, where a Gauge child per series holds a lock, a value and label tuples per series
    (what that costs per service: docs/benchmarks.md)."""

    NAME = "llmstage_llmservice_condition"
    HELP = (
        "1 for each condition of each LLMService, with its current status (the series goes with the service)"
    )

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self._seen: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        if registry is not None:
            registry.register(self)

    def observe(self, namespace: str, name: str, conditions: Iterable[dict[str, Any]]) -> None:
        # One series per type, as the conditions list has (a repeated type: the last one counts).
        by_type = {
            sys.intern(str(c["type"])): sys.intern(str(c.get("status", "Unknown")))
            for c in conditions
            if c.get("type")
        }
        now = tuple(by_type.items())
        if now:
            self._seen[(namespace, name)] = now
        else:
            self._seen.pop((namespace, name), None)

    def forget(self, namespace: str, name: str) -> None:
        self._seen.pop((namespace, name), None)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.NAME, self.HELP, labels=["namespace", "name", "type", "status"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for (namespace, name), conditions in list(self._seen.items()):
            for ctype, status in conditions:
                family.add_metric([namespace, name, ctype, status], 1)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()


CONDITIONS = ConditionSeries()
