"""`llmstage benchmark`'s work: check the service, run the Job, follow it, store the result.

    target_for(service, api_key_secret) -> Target        the checks; BenchmarkRefused says why not
    run(cluster, target, measured, options, progress) -> BenchmarkResult
    store(cluster, result, uid)                           ConfigMap NAME-benchmark

The cluster is reached through `Cluster` (cli/benchmark.py gives the kubernetes client's one,
tests a fake): the Job is created, its pod watched until it runs, its log followed for the
sweep's lines (llmstage.benchmark.sweep), and the Job deleted whatever happens, with its pod.
The Job's own ttlSecondsAfterFinished and activeDeadlineSeconds clean up when this process is
killed before it could.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic

from llmstage.api.constants import Runtime, Stage
from llmstage.api.validation import validation_message
from llmstage.benchmark.job import CONTAINER, Options, Target, benchmark_job, deadline_seconds, job_name
from llmstage.benchmark.knee import NoCurve, find_knee
from llmstage.benchmark.result import BenchmarkResult, Level, MeasuredService, Settings
from llmstage.benchmark.store import APP_NAME, NAME_LABEL, config_map
from llmstage.benchmark.sweep import ERROR, PROGRESS, RESULT

# How long the pod may wait for a node or an image before the benchmark gives up on it.
PENDING_SECONDS = 300.0
# Waiting reasons of a container that will not start without someone fixing something.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError")  # fmt: skip


class BenchmarkRefused(Exception):
    """Bad input or a service that cannot be measured: one line, naming the fix."""


class BenchmarkFailed(Exception):
    """The Job ran but gave no result: why, in one line."""


class Cluster(Protocol):
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_job(self, job: dict[str, Any]) -> None: ...
    def delete_job(self, namespace: str, name: str) -> None: ...
    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]: ...
    def follow_log(self, namespace: str, pod: str, container: str) -> Iterable[str]: ...
    def read_log(self, namespace: str, pod: str, container: str) -> str: ...
    def put_config_map(self, obj: dict[str, Any]) -> None: ...


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None
    )


def api_key_ref(service: dict[str, Any]) -> tuple[str, str] | None:
    """The Secret key the service's clients send, when the runtime serving it checks one: vLLM's
    spec.vllm.apiKeySecretRef, or spec.ollama.apiKeySecretRef, which the pod's gateway checks in
    front of Ollama (render/gateway.py)."""
    status, spec = service.get("status") or {}, service.get("spec") or {}
    runtime = status.get("runtime")
    section = runtime if runtime in (Runtime.VLLM.value, Runtime.OLLAMA.value) else None
    ref = (spec.get(section) or {}).get("apiKeySecretRef") if section else None
    if ref:
        return str(ref["name"]), str(ref.get("key") or "api-key")
    return None


def network_policy_note(service: dict[str, Any]) -> str | None:
    """A warning when spec.networkPolicy.allowedClients restricts who reaches the serving port:
    the benchmark pod (app.kubernetes.io/name=llmstage-benchmark, in the service's namespace)
    is refused unless one of them admits it. By default every pod of the namespace is admitted
    (render/network.py)."""
    policy = (service.get("spec") or {}).get("networkPolicy") or {}
    if policy.get("enabled", True) is False or not policy.get("allowedClients"):
        return None
    return (
        f"spec.networkPolicy.allowedClients restricts the serving port: where NetworkPolicies are "
        f"enforced the benchmark pod is refused unless one admits it, e.g. a podSelector with "
        f"matchLabels {NAME_LABEL}: {APP_NAME}"
    )


def target_for(service: dict[str, Any], api_key_secret: tuple[str, str] | None) -> Target:
    """The service to measure, or BenchmarkRefused: not served yet, or production without a key."""
    meta, status = service["metadata"], service.get("status") or {}
    where = f"{meta['namespace']}/{meta['name']}"
    ready = _condition(service, "Ready")
    if ready is None or ready.get("status") != "True":
        why = f"{ready.get('reason')}: {ready.get('message')}" if ready else "no status yet"
        raise BenchmarkRefused(
            f"{where} is not Ready ({why}); benchmark a service that serves: `llmstage status -n "
            f"{meta['namespace']}` shows what it waits for"
        )
    if not status.get("endpoint") or not status.get("servedModelName"):
        raise BenchmarkRefused(f"{where} has no status.endpoint yet: is the llmstage operator running?")
    key = api_key_secret or api_key_ref(service)
    if key is None and status.get("stage") == Stage.PRODUCTION.value:
        raise BenchmarkRefused(
            f"{where} is in stage production but has no API key Secret to send (spec.vllm.apiKeySecretRef "
            f"on runtime {status.get('runtime')}): production is measured with the key its clients use; "
            "pass --api-key-secret NAME[:KEY] naming that Secret"
        )
    return Target(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        endpoint=status["endpoint"],
        model=status["servedModelName"],
        api_key=key,
    )


def measured_service(service: dict[str, Any]) -> MeasuredService:
    meta, status, spec = service["metadata"], service["status"], service.get("spec") or {}
    return MeasuredService(
        namespace=meta["namespace"],
        name=meta["name"],
        generation=meta.get("generation", 0),
        stage=Stage(status.get("stage") or spec.get("stage") or "dev"),
        runtime=Runtime(status["runtime"]),
        served_model_name=status["servedModelName"],
        endpoint=status["endpoint"],
        expected_concurrency=spec.get("expectedConcurrency", 1),
        ready_replicas=status.get("readyReplicas", 0),
    )


def _pod_problem(pod: dict[str, Any], pending_since: float, now: float) -> str | None:
    """Why a pod that should run does not, once that will not pass by itself."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and now - pending_since > PENDING_SECONDS:
        return f"cannot be scheduled for {PENDING_SECONDS:.0f} s: {scheduled.get('message')}"
    return None


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


class _Lines:
    """What the sweep's stdout says: progress, the result, the error."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.seen: set[str] = set()

    def feed(self, lines: Iterable[str]) -> None:
        for raw in lines:
            line = raw.rstrip("\n")
            if line in self.seen:  # a log read again after a broken stream
                continue
            self.seen.add(line)
            if line.startswith(RESULT):
                self.result = json.loads(line[len(RESULT) :])
            elif line.startswith(ERROR):
                self.error = line[len(ERROR) :]
            elif line.startswith(PROGRESS):
                self.progress(line[len(PROGRESS) :])


@dataclass(frozen=True)
class Pacing:
    """How often the pod is looked at, and the clock it is timed by (tests give their own)."""

    poll: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def run(
    cluster: Cluster,
    target: Target,
    measured: MeasuredService,
    options: Options,
    progress: Callable[[str], None],
    *,
    pacing: Pacing = Pacing(),
    keep_job: bool = False,
) -> BenchmarkResult:
    name = job_name(target.name)
    existing = cluster.get_job(target.namespace, name)
    if existing is not None:
        done = _condition(existing, "Complete") or _condition(existing, "Failed")
        if not (done and done.get("status") == "True"):
            raise BenchmarkRefused(
                f"a benchmark of {target.namespace}/{target.name} is already running (Job {name}); wait "
                f"for it, or stop it: kubectl delete job {name} -n {target.namespace}"
            )
        cluster.delete_job(target.namespace, name)
    job = benchmark_job(target, options)
    cluster.create_job(job)
    progress(
        f"Job {target.namespace}/{name}: {len(options.levels)} level(s) "
        f"{','.join(map(str, options.levels))} of "
        f"{options.duration_seconds} s against {target.endpoint} (at most {deadline_seconds(options)} s)"
    )
    lines = _Lines(progress)
    try:
        pod = _wait_for_pod(cluster, target.namespace, name, progress, pacing)
        pod_name = pod["metadata"]["name"]
        if _phase(pod) == "Running":
            try:
                lines.feed(cluster.follow_log(target.namespace, pod_name, CONTAINER))
            except Exception as err:  # a broken stream: the whole log is read again below
                progress(f"the log stream broke ({type(err).__name__}); reading the log again")
        if lines.result is None and lines.error is None:
            _wait_for_end(cluster, target.namespace, name, pod_name, pacing)
            lines.feed(cluster.read_log(target.namespace, pod_name, CONTAINER).splitlines())
    finally:
        if not keep_job:
            cluster.delete_job(target.namespace, name)
    if lines.result is None:
        raise BenchmarkFailed(lines.error or f"the benchmark pod gave no result; kubectl logs job/{name}")
    if lines.error:
        raise BenchmarkFailed(f"{lines.error} (the levels before it were measured but are not stored)")
    return build_result(measured, options, lines.result)


def _wait_for_pod(
    cluster: Cluster, namespace: str, job: str, progress: Callable[[str], None], pacing: Pacing
) -> dict[str, Any]:
    """The Job's pod once it runs (or has already finished); BenchmarkFailed when it cannot."""
    clock = pacing.clock
    started = clock()
    said = ""
    while True:
        pods = cluster.job_pods(namespace, job)
        if pods:
            pod = pods[0]
            phase = _phase(pod)
            if phase in ("Running", "Succeeded", "Failed"):
                return pod
            problem = _pod_problem(pod, started, clock())
            if problem:
                raise BenchmarkFailed(
                    f"the benchmark pod {pod['metadata']['name']} does not start: {problem}"
                )
            if said != phase:
                progress(f"pod {pod['metadata']['name']}: {phase}")
                said = phase
        else:
            failed = _condition(cluster.get_job(namespace, job) or {}, "Failed")
            if failed and failed.get("status") == "True":
                raise BenchmarkFailed(f"Job {job} failed: {failed.get('reason')}: {failed.get('message')}")
            if clock() - started > PENDING_SECONDS:
                raise BenchmarkFailed(
                    f"Job {job} created no pod in {PENDING_SECONDS:.0f} s: "
                    f"kubectl describe job {job} -n {namespace}"
                )
        pacing.sleep(pacing.poll)


def _wait_for_end(cluster: Cluster, namespace: str, job: str, pod: str, pacing: Pacing) -> None:
    """Until the pod is no longer running (a log stream that broke early leaves it running)."""
    while True:
        pods = [p for p in cluster.job_pods(namespace, job) if p["metadata"]["name"] == pod]
        if not pods or _phase(pods[0]) in ("Succeeded", "Failed"):
            return
        pacing.sleep(pacing.poll)


def build_result(measured: MeasuredService, options: Options, line: dict[str, Any]) -> BenchmarkResult:
    try:
        levels = [Level.model_validate(level) for level in line.get("levels") or []]
        result = BenchmarkResult(
            service=measured,
            settings=Settings(
                levels=list(options.levels),
                prompt_tokens=options.prompt_tokens,
                output_tokens=options.output_tokens,
                duration_seconds=options.duration_seconds,
                image=options.image,
                tool=str(line.get("tool") or "guidellm"),
            ),
            started_at=line.get("startedAt") or datetime.now(UTC),
            finished_at=line.get("finishedAt") or datetime.now(UTC),
            levels=levels,
        )
    except pydantic.ValidationError as err:
        raise BenchmarkFailed(
            f"the benchmark pod's result is not what this llmstage reads: {validation_message(err)}"
        ) from None
    try:
        find_knee(result.levels)
    except NoCurve as err:
        raise BenchmarkFailed(f"{err}: nothing to store") from None
    return result


def store(cluster: Cluster, result: BenchmarkResult, owner_uid: str) -> str:
    obj = config_map(result, owner_uid)
    cluster.put_config_map(obj)
    return str(obj["metadata"]["name"])
