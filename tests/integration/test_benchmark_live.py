"""`llmstage benchmark` against the local cluster's API server, with the operator running.

What is real here: the API server admitting the Job as rendered (its pod's security context, the
secretKeyRef, the ownerReference), the Job controller making its pod, the scheduler placing it
with the nodeSelector given, the Job deleted with its pod, the ConfigMap written and owned by the
service and garbage-collected with it, the operator watching it and writing status.benchmark and
FollowsBestPractices, and the commands that read it (`status`, `benchmark --last`,
`promote --require-benchmark`) as subprocesses.

What is not: kwok nodes run no container, so no GuideLLM runs and no log exists; the pod's log
is the real benchmark pod's output of tests/unit/fixtures/benchmark/sweep.log (a real GuideLLM
run against a real Ollama, hack/benchmark_fixture.py), handed to the CLI's flow in place of the
log stream. tests/realnode/test_guidellm_benchmark.py runs the whole of it on the real node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from llmstage.benchmark.job import Options
from llmstage.benchmark.runner import Pacing, measured_service, run, store, target_for
from llmstage.cli.kubeclient import KubeCluster, client_for

from testkit import OperatorProcess, wait_until
from testkit.benchmark_fixtures import sweep_lines

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"


def llmstage(kubeconfig: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmstage.cli", *argv, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "smollm2:135m"}, **spec},
    }


def get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def create_ready(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, manifest(name, namespace, **spec)
    )

    def ready() -> dict[str, Any] | None:
        obj = get(api, namespace, name)
        conditions = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
        return obj if conditions.get("Ready") == "True" else None

    return wait_until(ready, timeout=90, interval=0.5, what=f"{namespace}/{name} Ready")


class RecordingCluster(KubeCluster):
    """The real cluster; the pod's log is the fixture's (kwok serves none). While "following the
    log" it records the Job and the pod as the API server has them."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(client_for(str(kubeconfig), None)[0])  # the CLI's own client
        self.seen: dict[str, Any] = {}

    def follow_log(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        self.seen["job"] = self.get_job(namespace, pod.rsplit("-", 1)[0])
        self.seen["pod"] = self.get_pod(namespace, pod)
        return iter(sweep_lines())

    def read_log(self, namespace: str, pod: str, container: str) -> str:
        return "\n".join(self.follow_log(namespace, pod, container))


def benchmark_in_process(
    api: client.ApiClient, kubeconfig: Path, namespace: str, name: str, **options: Any
) -> Any:
    """The CLI's flow (cli/benchmark.py) on the real cluster, with the fixture as the pod's log."""
    cluster = RecordingCluster(kubeconfig)
    svc = get(api, namespace, name)
    target = target_for(svc, options.pop("api_key", None))
    progress: list[str] = []
    result = run(
        cluster,
        target,
        measured_service(svc),
        Options(levels=(1, 2, 4, 8), duration_seconds=20, **options),
        progress.append,
        pacing=Pacing(poll=0.2),
    )
    store(cluster, result, target.uid)
    return cluster, result, progress


def test_the_job_runs_in_the_services_namespace_and_the_result_reaches_status(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path, operator: OperatorProcess
) -> None:
    svc = create_ready(api_client, namespace, "smol", expectedConcurrency=2)
    cluster, result, progress = benchmark_in_process(
        api_client,
        kubeconfig,
        namespace,
        "smol",
        node_selector={"type": "kwok"},
        tolerations=("nvidia.com/gpu",),
    )
    # The Job and its pod, as the API server admitted them.
    job, pod = cluster.seen["job"], cluster.seen["pod"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 600
    assert pod["spec"]["nodeSelector"] == {"type": "kwok"}
    assert pod["spec"]["nodeName"], "the scheduler placed the pod"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["containers"][0]["args"][:4] == [
        "--target",
        f"http://smol.{namespace}.svc:8000/v1",
        "--model",
        "smollm2:135m",
    ]
    assert any(p.startswith("level 4/4: 8 user(s): ") for p in progress)
    # Cleaned up: the Job is deleted with its pod.
    wait_until(
        lambda: cluster.get_job(namespace, "smol-benchmark") is None, timeout=30, what="the Job deleted"
    )
    wait_until(lambda: not cluster.job_pods(namespace, "smol-benchmark"), timeout=60, what="its pod deleted")

    # Stored, owned by the service; the operator reports it.
    cm = client.CoreV1Api(api_client).read_namespaced_config_map("smol-benchmark", namespace)
    assert cm.metadata.owner_references[0].uid == svc["metadata"]["uid"]
    assert set(cm.data) == {"result.json", "chart.svg"}

    def reported() -> dict[str, Any] | None:
        status = get(api_client, namespace, "smol").get("status") or {}
        return status if status.get("benchmark") else None

    status = wait_until(reported, timeout=30, interval=0.5, what="status.benchmark")
    assert status["benchmark"]["knee"] == 1 and status["benchmark"]["levels"] == [1, 2, 4, 8]
    assert status["benchmark"]["runtime"] == "ollama" and status["benchmark"]["stage"] == "dev"
    assert status["benchmark"]["generation"] == svc["metadata"]["generation"]
    practices = next(c for c in status["conditions"] if c["type"] == "FollowsBestPractices")
    assert practices["status"] == "False" and practices["reason"] == "ExpectedUsersAboveKnee"
    assert "dev measured a knee at 1 concurrent users on ollama" in practices["message"]

    # What a user reads back.
    table = llmstage(kubeconfig, "status", "-n", namespace)
    row = next(line for line in table.stdout.splitlines() if line.startswith("smol "))
    assert "knee 1 on ollama/dev 2026-12-06" in row
    last = llmstage(kubeconfig, "benchmark", "smol", "-n", namespace, "--last", "-o", "json")
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["levels"] == json.loads(result.model_dump_json())["levels"]

    # The service goes, its result with it.
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "smol"
    )

    def collected() -> bool:
        try:
            client.CoreV1Api(api_client).read_namespaced_config_map("smol-benchmark", namespace)
        except client.exceptions.ApiException as err:
            return err.status == 404
        return False

    wait_until(collected, timeout=60, interval=0.5, what="the ConfigMap garbage-collected with the service")


def test_the_pod_reads_a_production_key_by_reference(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path, operator: OperatorProcess
) -> None:
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "chat-key"}, "stringData": {"api-key": "s3cret"}}
    )
    create_ready(
        api_client,
        namespace,
        "chat",
        stage="production",
        replicas=1,
        resources={"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}},
        vllm={"apiKeySecretRef": {"name": "chat-key"}},
        model={"name": "llama3.1:8b"},
    )
    cluster, _, _ = benchmark_in_process(api_client, kubeconfig, namespace, "chat")
    env = cluster.seen["pod"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "LLMSTAGE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "chat-key", "key": "api-key"}}}
    ]
    assert "s3cret" not in json.dumps(cluster.seen)


def test_promote_require_benchmark_checks_the_stored_result(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path, operator: OperatorProcess, tmp_path: Path
) -> None:
    create_ready(api_client, namespace, "smol", stage="staging", expectedConcurrency=2)
    file = tmp_path / "smol.yaml"
    file.write_text(yaml.safe_dump(manifest("smol", namespace, stage="staging", expectedConcurrency=2)))
    promote = [
        "promote",
        "-f",
        str(file),
        "--to",
        "production",
        "--cpu",
        "--api-key-secret",
        "k",
        "--dry-run",
    ]

    none = llmstage(kubeconfig, *promote, "--require-benchmark")
    assert none.returncode == 2
    assert none.stderr.strip().splitlines()[-1] == (
        f"llmstage promote: error: --require-benchmark: {namespace}/smol has no stored benchmark (ConfigMap "
        f"smol-benchmark): run `llmstage benchmark smol -n {namespace}` before promoting to production"
    )

    benchmark_in_process(api_client, kubeconfig, namespace, "smol")
    measured = llmstage(
        kubeconfig, "recommend", "--users", "50", "--stage", "production", "--gpu", "NVIDIA-L4",
        "--benchmark", "smol", "-n", namespace,
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    assert "staging measured a knee at 1 concurrent users on ollama" in measured.stdout
    assert "beyond the knee ollama showed (1): that is what the switch to vllm is for" in measured.stdout
    ok = llmstage(kubeconfig, *promote, "--require-benchmark")
    assert ok.returncode == 0, ok.stderr
    assert "note: benchmark: staging measured a knee at 1 concurrent users on ollama" in ok.stderr

    # A target the measured latency misses (time to first token p99 is seconds on this CPU).
    targeted = yaml.safe_load(file.read_text())
    targeted["spec"]["latencyTarget"] = {"timeToFirstTokenP99Ms": 100}
    file.write_text(yaml.safe_dump(targeted))
    missed = llmstage(kubeconfig, *promote, "--require-benchmark")
    assert missed.returncode == 2
    assert "missing spec.latencyTarget of stage production" in missed.stderr

    # The spec changed since it was measured.
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "smol", {"spec": {"expectedConcurrency": 3}}
    )
    stale = llmstage(kubeconfig, *promote, "--require-benchmark")
    assert stale.returncode == 2 and "(its spec changed since): run `llmstage benchmark smol" in stale.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown", "no LLMService nope in namespace {ns}: `llmstage status -n {ns}` lists them"),
        ("not-ready", "{ns}/waiting is not Ready (Unschedulable: vllm pods cannot be scheduled"),
        ("production-open", "{ns}/open is in stage production but has no API key Secret to send"),
        ("level-zero", "argument --levels: level 0: a level is a number of concurrent users, from 1 to 1000"),
    ],
)
def test_bad_input_is_one_line(
    case: str,
    message: str,
    api_client: client.ApiClient,
    namespace: str,
    kubeconfig: Path,
    operator: OperatorProcess,
) -> None:
    name = {"unknown": "nope", "not-ready": "waiting", "production-open": "open", "level-zero": "nope"}[case]
    if case == "not-ready":
        client.CoreV1Api(api_client).create_namespaced_secret(
            namespace, {"metadata": {"name": "k"}, "stringData": {"api-key": "x"}}
        )
        spec = {
            "stage": "production",
            "replicas": 1,
            "model": {"name": "llama3.1:8b"},
            "resources": {"gpu": {"count": 1, "product": "NVIDIA-B300"}},  # no such node
            "vllm": {"apiKeySecretRef": {"name": "k"}},
        }
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, manifest(name, namespace, **spec)
        )

        def stalled() -> bool:
            conditions = (get(api_client, namespace, name).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Stalled" and c["status"] == "True" for c in conditions)

        wait_until(stalled, timeout=60, interval=0.5, what="waiting Stalled")
    if case == "production-open":
        create_ready(api_client, namespace, name, stage="production", runtime="ollama", replicas=1)
    levels = ["--levels", "0"] if case == "level-zero" else []
    res = llmstage(kubeconfig, "benchmark", name, "-n", namespace, *levels)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("llmstage benchmark: error: "), res.stderr
    assert message.format(ns=namespace) in last
    assert "Traceback" not in res.stderr
    jobs = client.BatchV1Api(api_client).list_namespaced_job(namespace).items
    assert jobs == []  # nothing was started
