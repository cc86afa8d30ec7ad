"""hack/benchmark_side_by_side.py's table for docs/benchmarks.md, from what `llmstage benchmark
-o json` prints, and the two services it measures, as `llmstage render` takes them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from llmstage.api.constants import Runtime
from llmstage.api.models import LLMService
from llmstage.cli.benchmark import result_document
from llmstage.resolve import resolve

from testkit.benchmark_fixtures import OLLAMA_CURVE, VLLM_CURVE, stored_result

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))
_spec = importlib.util.spec_from_file_location("side_by_side", REPO / "hack" / "benchmark_side_by_side.py")
assert _spec and _spec.loader
side_by_side = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(side_by_side)


def documents() -> dict[str, dict[str, Any]]:
    ollama = stored_result(OLLAMA_CURVE[:4], runtime="ollama")  # levels 1-8
    vllm = stored_result(VLLM_CURVE[:5], runtime="vllm")  # levels 1-16
    return {
        "ollama": result_document(ollama, "smol-ollama-benchmark"),
        "vllm": result_document(vllm, "smol-vllm-benchmark"),
    }


def test_the_table_holds_the_articles_rows_and_every_level_side_by_side() -> None:
    lines = side_by_side.table(documents()).splitlines()
    assert lines[0] == "| | ollama | vllm |"
    assert lines[2] == "| peak throughput | 41.0 tokens/s at 8 users | 240.0 tokens/s at 16 users |"
    assert lines[3] == "| P99 TTFT at peak | 1800 ms | 112 ms |"
    assert lines[5] == "| scaling | flat beyond 4 users | climbing to 16 users (no knee) |"
    rows = [line for line in lines if line[2:3].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 1", "| 2", "| 4", "| 8", "| 16"]
    assert rows[0] == "| 1 | 12.0 | 100 / 200 | 40.0 | 0 | 15.0 | 41 / 82 | 40.0 | 0 |"
    # A level only one runtime was measured at: empty cells for the other.
    sixteen = rows[-1]
    assert sixteen.startswith("| 16 |  | | | ") and sixteen.endswith("| 240.0 | 56 / 112 | 40.0 | 0 |")


def test_the_two_services_resolve_to_the_runtime_each_is_measured_on() -> None:
    services = side_by_side.services({"smollm2-hf": "10.88.0.1:25050/llmstage/smollm2-hf:abc"})
    for runtime, body in services.items():
        body = {**body, "metadata": {**body["metadata"], "namespace": "llm-bench"}}
        resolved = resolve(LLMService.from_object(body))  # SpecError if refused
        assert resolved.runtime is Runtime(runtime)
        assert body["spec"]["resources"]["cpu"] == "1"  # two fit on the 2-CPU node with the benchmark pod
