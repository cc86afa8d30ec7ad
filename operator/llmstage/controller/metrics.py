"""Prometheus metrics of the operator (served by `llmstage run --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
STATUS_WRITES = Counter("llmstage_status_writes_total", "Status patches of LLMServices")
API_ERRORS = Counter("llmstage_api_errors_total", "API errors that survived retries", ["status"])
MANAGED = Gauge("llmstage_managed_objects", "Objects in the operator's watch cache", ["kind"])
