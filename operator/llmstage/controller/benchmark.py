"""status.benchmark and the benchmark's FollowsBestPractices findings, from the stored result (pure).

The CLI stores a benchmark's result in the ConfigMap NAME-benchmark (llmstage.benchmark.store);
the watch cache keeps its result.json (WatchCache.put_benchmark). The operator only reads it:
the status summary and the findings are recomputed from it at each reconcile, so a result and
the service's spec (expected users, latency target, runtime) are always judged together.
"""

from __future__ import annotations

from typing import Any

from llmstage.benchmark.advice import findings
from llmstage.benchmark.store import RESULT_KEY, StoredResultError, read_result, summary
from llmstage.resolve.resolved import Finding, Resolved


def benchmark_step(
    resolved: Resolved, stored: tuple[str, str] | None
) -> tuple[dict[str, Any] | None, list[Finding]]:
    """(status.benchmark or None, findings) for the stored (ConfigMap name, result.json)."""
    if stored is None:
        return None, []
    name, text = stored
    try:
        result = read_result({"metadata": {"name": name}, "data": {RESULT_KEY: text}})
    except StoredResultError as err:
        return None, [
            Finding(
                "BenchmarkResultUnreadable",
                f"{err}; run `llmstage benchmark {resolved.name} -n {resolved.namespace}` to replace it",
            )
        ]
    found = findings(
        result, resolved.runtime, resolved.stage, resolved.expected_concurrency, resolved.latency_target
    )
    return summary(result, name), found
