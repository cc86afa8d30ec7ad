"""`llmstage benchmark`'s flow against a fake cluster: the checks, the Job's life, what is stored,
and the one line each bad input gets. The same flow runs against a real API server in
tests/integration/test_benchmark_live.py."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest
from llmstage.benchmark.job import Options
from llmstage.benchmark.runner import (
    BenchmarkFailed,
    BenchmarkRefused,
    Pacing,
    measured_service,
    network_policy_note,
    run,
    store,
    target_for,
)
from llmstage.benchmark.store import read_result
from llmstage.cli import main

from testkit.benchmark_fixtures import sweep_lines

SERVICE: dict[str, Any] = {
    "apiVersion": "llmstage.io/v1alpha1",
    "kind": "LLMService",
    "metadata": {"name": "smol", "namespace": "llm-dev", "uid": "uid-1", "generation": 2},
    "spec": {"stage": "dev", "model": {"name": "smollm2:135m"}, "expectedConcurrency": 2},
    "status": {
        "stage": "dev",
        "runtime": "ollama",
        "endpoint": "http://smol.llm-dev.svc:8000/v1",
        "servedModelName": "smollm2:135m",
        "readyReplicas": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "EndpointsReady", "message": "1 ready"}],
    },
}


def service(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SERVICE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


class FakeCluster:
    """A cluster whose Job gets one pod that goes through `phases`, with `log` as its output."""

    def __init__(self, log: list[str], phases: Iterable[dict[str, Any]] = ({"phase": "Running"},)) -> None:
        self.log = log
        self.phases = list(phases)
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get((namespace, name))

    def create_job(self, job: dict[str, Any]) -> None:
        self.jobs[(job["metadata"]["namespace"], job["metadata"]["name"])] = job

    def delete_job(self, namespace: str, name: str) -> None:
        self.jobs.pop((namespace, name), None)
        self.deleted.append(name)

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        if (namespace, job) not in self.jobs:
            return []
        status = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
        return [{"metadata": {"name": f"{job}-x1"}, "status": status}]

    def follow_log(self, namespace: str, pod: str, container: str) -> Iterable[str]:
        return iter(self.log)

    def read_log(self, namespace: str, pod: str, container: str) -> str:
        return "\n".join(self.log)

    def put_config_map(self, obj: dict[str, Any]) -> None:
        self.config_maps[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj


def go(cluster: FakeCluster, svc: dict[str, Any] | None = None, **options: Any) -> Any:
    svc = svc or service()
    progress: list[str] = []
    result = run(
        cluster,
        target_for(svc, None),
        measured_service(svc),
        Options(levels=options.pop("levels", (1, 2, 4, 8)), **options),
        progress.append,
        pacing=Pacing(poll=0, sleep=lambda s: None),
    )
    return result, progress


def test_a_benchmark_shows_the_pods_progress_stores_its_result_and_deletes_the_job() -> None:
    cluster = FakeCluster(sweep_lines())
    result, progress = go(cluster)
    assert progress[0].startswith(
        "Job llm-dev/smol-benchmark: 4 level(s) 1,2,4,8 of 30 s against http://smol."
    )
    assert any(p.startswith("level 4/4: 8 user(s): ") for p in progress)
    assert cluster.jobs == {} and cluster.deleted == ["smol-benchmark"]
    assert [lv.concurrency for lv in result.levels] == [1, 2, 4, 8]
    assert result.service.generation == 2 and result.service.runtime.value == "ollama"
    name = store(cluster, result, "uid-1")
    assert read_result(cluster.config_maps[("llm-dev", name)]) == result


def test_a_pod_that_waits_first_is_followed_once_it_runs() -> None:
    cluster = FakeCluster(sweep_lines(), [{"phase": "Pending"}, {"phase": "Pending"}, {"phase": "Running"}])
    _, progress = go(cluster)
    assert "pod smol-benchmark-x1: Pending" in progress


def test_a_pod_that_already_finished_is_read_from_its_log() -> None:
    result, _ = go(FakeCluster(sweep_lines(), [{"phase": "Succeeded"}]))
    assert len(result.levels) == 4


def test_an_image_that_cannot_be_pulled_is_one_line_and_the_job_goes() -> None:
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "llmstage/benchmark:0.1.0"'}
    cluster = FakeCluster([], [{"phase": "Pending", "containerStatuses": [{"state": {"waiting": waiting}}]}])
    with pytest.raises(BenchmarkFailed) as err:
        go(cluster)
    assert str(err.value) == (
        "the benchmark pod smol-benchmark-x1 does not start: ImagePullBackOff: Back-off pulling image "
        '"llmstage/benchmark:0.1.0"'
    )
    assert cluster.deleted == ["smol-benchmark"]


def test_the_pods_error_is_the_failure() -> None:
    lines = [
        "llmstage-benchmark: warming up: one request to http://smol.llm-dev.svc:8000/v1 for model m",
        "llmstage-benchmark-error: http://smol:8000/v1 answered HTTP 401 (the API key was refused)",
    ]
    with pytest.raises(BenchmarkFailed, match="answered HTTP 401 \\(the API key was refused\\)"):
        go(FakeCluster(lines))


def test_a_sweep_that_stopped_half_way_is_not_stored() -> None:
    lines = [line for line in sweep_lines() if not line.startswith("llmstage-benchmark-result")]
    lines.append("llmstage-benchmark-error: guidellm exited 1 at 8 users: Killed")
    with pytest.raises(BenchmarkFailed, match="guidellm exited 1 at 8 users: Killed"):
        go(FakeCluster(lines))


def test_a_running_benchmark_of_the_same_service_is_not_disturbed() -> None:
    cluster = FakeCluster(sweep_lines())
    cluster.jobs[("llm-dev", "smol-benchmark")] = {"status": {"active": 1}}
    with pytest.raises(BenchmarkRefused, match="a benchmark of llm-dev/smol is already running"):
        go(cluster)
    assert cluster.deleted == []
    # A finished one (the CLI was killed before it could delete it) is replaced.
    cluster.jobs[("llm-dev", "smol-benchmark")] = {
        "status": {"conditions": [{"type": "Complete", "status": "True"}]}
    }
    go(cluster)


def test_a_service_that_is_not_ready_is_refused_with_why() -> None:
    starting = service(
        status__conditions=[
            {
                "type": "Ready",
                "status": "False",
                "reason": "WaitingForEndpoints",
                "message": "pulling the model",
            }
        ]
    )
    with pytest.raises(BenchmarkRefused) as err:
        target_for(starting, None)
    assert str(err.value) == (
        "llm-dev/smol is not Ready (WaitingForEndpoints: pulling the model); benchmark a service that "
        "serves: `llmstage status -n llm-dev` shows what it waits for"
    )
    with pytest.raises(BenchmarkRefused, match="is not Ready \\(no status yet\\)"):
        target_for({k: v for k, v in SERVICE.items() if k != "status"}, None)


def test_production_needs_a_key_and_vllm_sends_its_own() -> None:
    prod_ollama = service(spec__stage="production", status__stage="production")
    with pytest.raises(BenchmarkRefused) as err:
        target_for(prod_ollama, None)
    assert "is in stage production but has no API key Secret to send" in str(err.value)
    assert "pass --api-key-secret NAME[:KEY]" in str(err.value)
    assert target_for(prod_ollama, ("gateway-key", "api-key")).api_key == ("gateway-key", "api-key")
    prod_vllm = service(
        spec__stage="production",
        spec__vllm={"apiKeySecretRef": {"name": "chat-key"}},
        status__stage="production",
        status__runtime="vllm",
    )
    assert target_for(prod_vllm, None).api_key == ("chat-key", "api-key")


def test_the_key_of_the_runtime_that_serves_is_sent() -> None:
    # Ollama's key is checked by the pod's gateway: without it every request would be a 401.
    both = {
        "vllm": {"apiKeySecretRef": {"name": "vllm-key"}},
        "ollama": {"apiKeySecretRef": {"name": "gw", "key": "k"}},
    }
    assert target_for(service(spec__vllm=both["vllm"], spec__ollama=both["ollama"]), None).api_key == (
        "gw",
        "k",
    )
    vllm = service(spec__vllm=both["vllm"], spec__ollama=both["ollama"], status__runtime="vllm")
    assert target_for(vllm, None).api_key == ("vllm-key", "api-key")
    # A stage that serves without a key: nothing sent, even with the other runtime's key set.
    assert target_for(service(spec__vllm=both["vllm"]), None).api_key is None


def test_restricted_clients_get_a_note_naming_the_benchmark_pods_label() -> None:
    assert network_policy_note(SERVICE) is None
    clients = [{"podSelector": {"matchLabels": {"app": "web"}}}]
    note = network_policy_note(service(spec__networkPolicy={"allowedClients": clients}))
    assert note is not None and "matchLabels app.kubernetes.io/name: llmstage-benchmark" in note


# ---------------------------------------------------------------- the command's one-line errors


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "level 0: a level is a number of concurrent users, from 1 to 1000"),
        ("1,2,0", "level 0: a level is a number of concurrent users, from 1 to 1000"),
        ("1,x", "'1,x' is not a comma-separated list of numbers, e.g. 1,2,4"),
        ("5000", "level 5000: a level is a number of concurrent users, from 1 to 1000"),
        (",".join(map(str, range(1, 22))), "21 levels: at most 20 in one benchmark"),
    ],
)
def test_bad_levels_are_one_line(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "smol", "--levels", value])
    assert exit_info.value.code == 2
    assert one_line(capsys) == f"llmstage benchmark: error: argument --levels: {message}"


class CliCluster(FakeCluster):
    def __init__(self, services: dict[tuple[str, str], dict[str, Any]]) -> None:
        super().__init__(sweep_lines())
        self.services = services

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.services.get((namespace, name))

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.config_maps.get((namespace, name))


@pytest.fixture
def cli_cluster(monkeypatch: pytest.MonkeyPatch) -> CliCluster:
    cluster = CliCluster({("llm-dev", "smol"): service()})
    import llmstage.cli.benchmark as command

    monkeypatch.setattr(command, "client_for", lambda kubeconfig, context: (None, "llm-dev"))
    monkeypatch.setattr(command, "KubeCluster", lambda api: cluster)
    return cluster


def test_an_unknown_service_is_one_line(cli_cluster: CliCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "nope"]) == 2
    assert one_line(capsys) == (
        "llmstage benchmark: error: no LLMService nope in namespace llm-dev: "
        "`llmstage status -n llm-dev` lists them"
    )


def test_a_service_not_ready_is_one_line(cli_cluster: CliCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cli_cluster.services[("llm-dev", "smol")] = service(status__conditions=[])
    assert main(["benchmark", "smol"]) == 2
    assert one_line(capsys).startswith("llmstage benchmark: error: llm-dev/smol is not Ready (no status yet)")
    assert cli_cluster.jobs == {}


def test_production_without_a_key_is_one_line(
    cli_cluster: CliCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_cluster.services[("llm-dev", "smol")] = service(status__stage="production")
    assert main(["benchmark", "smol"]) == 2
    assert "is in stage production but has no API key Secret to send" in one_line(capsys)


def test_the_command_prints_the_table_and_the_knee_and_can_show_it_again(
    cli_cluster: CliCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark", "smol", "--levels", "1,2,4,8", "--duration", "20"]) == 0
    captured = capsys.readouterr()
    assert "level 1/4: 1 user(s): " in captured.err  # progress on stderr
    out = captured.out.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("USERS"))
    assert out[header].split() == ["USERS", "REQ/S", "OUT", "TOK/S", "TTFT", "MS", "P50/P95/P99", "ITL", "MS",
                                   "P50/P95/P99", "OK", "ERRORS"]  # fmt: skip
    assert [line.split()[0] for line in out[header + 1 : header + 5]] == ["1", "2", "4", "8"]
    assert any(
        line.startswith("knee at 1 concurrent users: throughput stops scaling beyond 1") for line in out
    )
    assert ("llm-dev", "smol-benchmark") in cli_cluster.config_maps
    assert main(["benchmark", "smol", "--last", "-o", "json"]) == 0
    import json

    shown = json.loads(capsys.readouterr().out)
    assert shown["knee"] == 1 and shown["configMap"] == "smol-benchmark" and len(shown["levels"]) == 4
    assert "Authorization" not in json.dumps(shown)


def test_no_stored_result_is_one_line(cli_cluster: CliCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "smol", "--last"]) == 1
    assert one_line(capsys) == (
        "llmstage benchmark: error: llm-dev/smol has no stored benchmark (ConfigMap smol-benchmark): run "
        "`llmstage benchmark smol -n llm-dev`"
    )
