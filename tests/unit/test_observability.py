"""The operator's logs, per-service condition series, work-queue metrics and start-up errors,
without a cluster."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmstage import logs
from llmstage.cli import run as run_cmd
from llmstage.controller import metrics
from llmstage.controller.leader import NotLeaderError
from llmstage.controller.metrics import ConditionSeries
from llmstage.controller.workqueue import WorkQueue
from prometheus_client import CollectorRegistry, generate_latest


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """logs.configure replaces the root handlers (pytest's capture among them): put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kopf_level = logging.getLogger("kopf").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kopf").setLevel(kopf_level)


def test_json_lines_carry_the_reconcile_as_fields() -> None:
    out = io.StringIO()
    logs.configure("json", "info", out)
    log = logging.getLogger("llmstage.test")
    log.info("outside")
    with logs.log_context(namespace="team-a", name="chat", reconcile_id="abc123"):
        logs.annotate(generation=4)
        log.info("applied %s", "Deployment team-a/chat-ollama")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    outside, inside, failed = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(outside) == {"time", "level", "logger", "message"} and outside["level"] == "info"
    assert inside["message"] == "applied Deployment team-a/chat-ollama"
    assert {k: inside[k] for k in ("namespace", "name", "generation", "reconcile_id")} == {
        "namespace": "team-a",
        "name": "chat",
        "generation": 4,
        "reconcile_id": "abc123",
    }
    assert inside["logger"] == "llmstage.test" and inside["time"].endswith("Z")
    assert failed["level"] == "error" and "RuntimeError: boom" in failed["exc_info"]


def test_text_for_people_and_auto_picks_text_only_on_a_terminal() -> None:
    out = io.StringIO()
    assert logs.configure("auto", "info", out) == "json"  # a StringIO is no terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    assert logs.configure("auto", "info", tty) == "text"
    with logs.log_context(namespace="ns", name="chat", generation=2, reconcile_id="r1"):
        logging.getLogger("llmstage.test").warning("pruned HPA ns/chat")
    line = tty.getvalue().strip()
    assert line.endswith("WARNING llmstage.test: pruned HPA ns/chat [ns/chat gen=2 reconcile=r1]"), line


def test_condition_series_follow_the_status_and_go_with_the_service() -> None:
    registry = CollectorRegistry()
    series = ConditionSeries(registry)

    def current() -> set[tuple[str, ...]]:
        return {
            tuple(s.labels[k] for k in ("namespace", "name", "type", "status"))
            for family in registry.collect()
            for s in family.samples
            if s.value == 1
        }

    series.observe(
        "ns", "chat", [{"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "False"}]
    )
    assert current() == {("ns", "chat", "Ready", "False"), ("ns", "chat", "Stalled", "False")}
    series.observe(
        "ns", "chat", [{"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}]
    )
    assert current() == {("ns", "chat", "Ready", "True"), ("ns", "chat", "Stalled", "False")}
    series.observe("ns", "other", [{"type": "Ready", "status": "True"}])
    series.forget("ns", "chat")
    assert current() == {("ns", "other", "Ready", "True")}
    series.observe("ns", "other", [{"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}])
    assert current() == {("ns", "other", "Ready", "True")}  # one series per type
    series.observe("ns", "other", [])  # a status without conditions: no series
    assert current() == set()
    exposition = generate_latest(registry).decode()
    assert "# TYPE llmstage_llmservice_condition gauge" in exposition


def test_the_queue_counts_depth_latency_retries_and_in_flight_and_stands_by() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        seen: list[str] = []
        failed = False

        async def handler(key: str) -> None:
            nonlocal failed
            seen.append(key)
            assert q.in_flight == 1
            if key == "flaky" and not failed:
                failed = True
                raise RuntimeError("once")
            await gate.wait()

        q: WorkQueue[str] = WorkQueue(handler, concurrency=1, active=False)
        q.add("ignored")  # a standby acts on nothing
        await asyncio.sleep(0.01)
        assert seen == [] and q.depth == 0
        retries = metrics.RETRIES._value.get()
        latency = metrics.QUEUE_SECONDS._sum.get()
        q.activate(["a", "b"])
        await asyncio.sleep(0.01)
        assert seen == ["a"] and q.depth == 1  # b waits for the one slot
        gate.set()
        await asyncio.sleep(0.01)
        await q.wait_idle()
        assert seen == ["a", "b"] and q.depth == 0 and q.in_flight == 0
        assert metrics.QUEUE_SECONDS._sum.get() > latency
        q.add("flaky")
        await asyncio.sleep(0.8)  # first retry after 0.5 s
        await q.wait_idle()
        assert seen.count("flaky") == 2 and metrics.RETRIES._value.get() == retries + 1
        await q.deactivate()
        q.add("after")
        await asyncio.sleep(0.01)
        assert "after" not in seen

    asyncio.run(scenario())


def test_a_lost_lease_ends_a_reconcile_without_a_retry_count() -> None:
    async def scenario() -> int:
        calls = 0

        async def handler(key: str) -> None:
            nonlocal calls
            calls += 1
            raise NotLeaderError("lost")

        q: WorkQueue[str] = WorkQueue(handler, abandon_errors=(NotLeaderError,))
        retries = metrics.RETRIES._value.get()
        q.add("a")
        await asyncio.sleep(0.05)
        await q.deactivate()  # what stepping down does: the pending retry goes too
        await asyncio.sleep(1.2)
        assert metrics.RETRIES._value.get() == retries
        return calls

    assert asyncio.run(scenario()) == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("15", 15.0), ("15s", 15.0), ("500ms", 0.5), ("1m30s", 90.0), ("2.5s", 2.5)]
)
def test_durations_read_like_controller_runtimes(text: str, seconds: float) -> None:
    assert run_cmd.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "s", "1m30", "-1s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        run_cmd.duration(text)


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubeconfig `llmstage run` accepts (it checks credentials before the ports); never dialled."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n'
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))


def _args(**over: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["run", "-n", "x", "--liveness", "off", "--metrics-port", "0"])
    for key, value in over.items():
        setattr(args, key, value)
    return args


@pytest.mark.usefixtures("credentials")
def test_a_taken_port_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_cmd.run(_args(metrics_port=port, metrics_address="127.0.0.1")) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"llmstage run: 127.0.0.1:{port} (--metrics-port) is already in use: "
            "change --metrics-port (0 turns metrics off)"
        ]
        assert run_cmd.run(_args(liveness=f"http://127.0.0.1:{port}/healthz")) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"llmstage run: 127.0.0.1:{port} (--liveness http://127.0.0.1:{port}/healthz)")
        assert "change --liveness" in line


@pytest.mark.usefixtures("credentials")
def test_inconsistent_lease_timings_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cmd.run(_args(leader_elect_lease_duration=5.0, leader_elect_renew_deadline=10.0)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline" in line


def test_kopf_object_lines_name_the_object_and_leave_its_settings_out() -> None:
    out = io.StringIO()
    logs.configure("json", "debug", out)
    ref = {"apiVersion": "llmstage.io/v1alpha1", "kind": "LLMService", "name": "chat", "namespace": "ns"}
    logging.getLogger("kopf.activities").warning(
        "Handler failed", extra={"settings": object(), "k8s_skip": False, "k8s_ref": ref}
    )
    (line,) = (json.loads(x) for x in out.getvalue().splitlines())
    assert line["namespace"] == "ns" and line["name"] == "chat"
    assert not {"settings", "k8s_skip", "k8s_ref"} & set(line)


def test_a_key_whose_task_was_cancelled_before_it_ran_is_worked_on_after_reactivation() -> None:
    """Stepping down cancels tasks that were created but had not started; their keys must not
    stay "running", or the next leader term would never reconcile them (seen under a CPU hog)."""

    async def scenario() -> list[str]:
        seen: list[str] = []

        async def handler(key: str) -> None:
            seen.append(key)

        q: WorkQueue[str] = WorkQueue(handler)
        q.add("a")  # a task is created but has not run yet
        await q.deactivate()
        assert seen == []
        q.activate(["a"])
        await asyncio.sleep(0.01)
        await asyncio.wait_for(q.wait_idle(), 2)
        return seen

    assert asyncio.run(scenario()) == ["a"]
