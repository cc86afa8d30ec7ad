"""`llmstage benchmark` against a real Ollama on the real node: GuideLLM really runs in the
benchmark Job's pod (images/benchmark, pushed to the local registry), drives the service through
its Service's DNS name, and the result is stored and reported. Short on purpose (two levels of
30 s, small prompts): it checks the plumbing end to end, not the speed of a 2-CPU node, so it
asks for answers at the first level only: on a busy node a level can end before a request does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit import wait_until
from testkit.realnode import SCHEDULING, Cluster, dev_service, images_push

LEVELS = "1,2"
DURATION = 30
# The Job's own deadline for these options (benchmark/job.py deadline_seconds: 300 s to start,
# then DURATION + 60 s per level) and a minute for the CLI around it.
BENCHMARK_SECONDS = 300 + 2 * (DURATION + 60) + 60


@pytest.fixture(scope="module")
def benchmark_image(real_node: str) -> str:
    # Pushed before the tests by `hack/cluster.py images` (hack/realnode TEST_IMAGES): a cache hit.
    reference: str = images_push("benchmark")["benchmark"]["reference"]
    return reference


def llmstage(
    kubeconfig: Path, *argv: str, timeout: float = BENCHMARK_SECONDS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmstage.cli", *argv, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Ollama Ready (its 300 s wait), the benchmark, the status and the cleanup waits below.
@pytest.mark.timeout(300 + BENCHMARK_SECONDS + 60 + 60 + 120)
def test_a_short_benchmark_of_the_real_ollama_is_stored_and_reported(
    cluster: Cluster,
    kubeconfig: Path,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
    benchmark_image: str,
    tmp_path: Path,
) -> None:
    ns = new_namespace("bench")
    cluster.apply(ns, dev_service("smol", images))
    cluster.wait_ready("smol", ns, "ollama")
    (label, value) = next(iter(SCHEDULING["nodeSelector"].items()))
    chart = tmp_path / "smol.svg"
    res = llmstage(
        kubeconfig,
        "benchmark", "smol", "-n", ns, "--levels", LEVELS, "--duration", str(DURATION),
        "--prompt-tokens", "32", "--output-tokens", "8", "--image", benchmark_image,
        "--node-selector", f"{label}={value}", "--toleration", SCHEDULING["tolerations"][0]["key"],
        "--chart", str(chart),
    )  # fmt: skip
    print(res.stderr)
    print(res.stdout)
    assert res.returncode == 0, res.stderr

    # Progress while it ran, then a row per level and the knee.
    assert f"level 1/2: 1 concurrent user(s) for {DURATION} s" in res.stderr
    assert "level 2/2: 2 user(s): " in res.stderr
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines() if line[:1].isdigit()}
    assert set(rows) == {"1", "2"}
    assert float(rows["1"][2]) > 0, "output tokens/s with one user"
    assert all(row[-1] == "0" for row in rows.values()), "no errors at any level"
    assert any(line.startswith(("knee at ", "no knee up to ")) for line in res.stdout.splitlines())
    assert ET.parse(chart).getroot().tag == "{http://www.w3.org/2000/svg}svg"

    # Stored in the cluster and reported by the operator in its pod.
    cm = json.loads(cluster.kubectl("get", "configmap", "smol-benchmark", "-n", ns, "-o", "json"))
    result = json.loads(cm["data"]["result.json"])
    assert [lv["concurrency"] for lv in result["levels"]] == [1, 2]
    assert result["service"]["runtime"] == "ollama" and result["settings"]["tool"] == "guidellm 0.3.1"
    assert result["levels"][0]["requests"]["completed"] > 0

    def reported() -> dict | None:  # type: ignore[type-arg]
        return cluster.get("llmservice", "smol", ns).get("status", {}).get("benchmark")

    summary = wait_until(reported, timeout=60, interval=1, what="status.benchmark")
    assert summary["levels"] == [1, 2] and summary["runtime"] == "ollama" and summary["stage"] == "dev"
    table = llmstage(kubeconfig, "status", "-n", ns, timeout=60)
    assert "on ollama/dev" in next(line for line in table.stdout.splitlines() if line.startswith("smol "))

    # The Job cleaned up after itself, with its pod.
    def gone() -> bool:
        jobs = json.loads(cluster.kubectl("get", "jobs", "-n", ns, "-o", "json"))["items"]
        pods = cluster.pods(ns, "app.kubernetes.io/name=llmstage-benchmark")
        return not jobs and not pods

    wait_until(gone, timeout=120, interval=1, what="the benchmark Job and its pod deleted")
