"""Where a benchmark's result lives in the cluster: the ConfigMap NAME-benchmark beside the service.

    config_map(result, owner_uid) -> dict        what the CLI creates (or replaces)
    read_result(config_map) -> BenchmarkResult   what the CLI and the operator read back
    summary(result, name) -> dict                status.benchmark, as the operator writes it

The ConfigMap is owned by the LLMService (deleted with it) but not by the operator: the operator
only lists and watches it (label selector below) to report status.benchmark; the CLI writes it.
It holds result.json (llmstage.benchmark.result) and chart.svg (llmstage.benchmark.chart), and
one result at a time: the next benchmark replaces it.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

from llmstage.api.constants import API_VERSION, KIND
from llmstage.api.validation import validation_message
from llmstage.benchmark.chart import svg_chart
from llmstage.benchmark.knee import NoCurve, find_knee
from llmstage.benchmark.result import BenchmarkResult

RESULT_KEY = "result.json"
CHART_KEY = "chart.svg"
# The benchmark's own objects (the Job, its pod, this ConfigMap) are named apart from the serving
# stack's (app.kubernetes.io/name llmstage), whose pods and children the operator watches.
APP_NAME = "llmstage-benchmark"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
RESULT_COMPONENT = "result"
# What the operator lists and watches.
RESULT_SELECTOR = {NAME_LABEL: APP_NAME, COMPONENT_LABEL: RESULT_COMPONENT}
RESULT_LABEL_SELECTOR = ",".join(f"{k}={v}" for k, v in sorted(RESULT_SELECTOR.items()))


class StoredResultError(ValueError):
    """A ConfigMap NAME-benchmark whose result cannot be read."""


def config_map_name(service: str) -> str:
    return f"{service}-benchmark"


def labels(service: str, component: str) -> dict[str, str]:
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: service, COMPONENT_LABEL: component}


def owner_reference(service: str, uid: str) -> dict[str, Any]:
    """Garbage-collected with the service. Not a controller reference: the operator does not
    manage (prune, apply) these objects."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": service, "uid": uid}


def config_map(result: BenchmarkResult, owner_uid: str) -> dict[str, Any]:
    service = result.service
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(service.name),
            "namespace": service.namespace,
            "labels": labels(service.name, RESULT_COMPONENT),
            "ownerReferences": [owner_reference(service.name, owner_uid)],
        },
        "data": {
            RESULT_KEY: result.model_dump_json(indent=1) + "\n",
            CHART_KEY: svg_chart(result),
        },
    }


def read_result(obj: dict[str, Any]) -> BenchmarkResult:
    name = obj.get("metadata", {}).get("name", "?")
    text = (obj.get("data") or {}).get(RESULT_KEY)
    if not text:
        raise StoredResultError(f"ConfigMap {name} has no {RESULT_KEY}")
    try:
        result = BenchmarkResult.model_validate(json.loads(text))
    except ValueError as err:  # JSON syntax; pydantic's ValidationError is a ValueError too
        detail = validation_message(err) if isinstance(err, pydantic.ValidationError) else str(err)
        raise StoredResultError(f"ConfigMap {name} {RESULT_KEY}: {detail}") from None
    try:
        find_knee(result.levels)
    except NoCurve as err:
        raise StoredResultError(f"ConfigMap {name} {RESULT_KEY}: {err}") from None
    return result


def summary(result: BenchmarkResult, config_map: str) -> dict[str, Any]:
    """status.benchmark (api.models.BenchmarkSummary), in its wire form."""
    knee = find_knee(result.levels)
    return {
        "configMap": config_map,
        "finishedAt": result.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stage": result.service.stage.value,
        "runtime": result.service.runtime.value,
        "generation": result.service.generation,
        "readyReplicas": result.service.ready_replicas,
        "levels": [lv.concurrency for lv in result.levels],
        "knee": knee.concurrency,
        "peakOutputTokensPerSecond": round(max(lv.output_tokens_per_second for lv in result.levels), 1),
        "message": knee.message,
    }
