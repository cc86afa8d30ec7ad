"""Fault scenarios shared by the reliability tests (`make test`, small) and the soak (`make soak`,
large): a namespace with its own operator and its own kwok nodes, and checks of the end state.

Synchronous on purpose: the tests drive the cluster step by step and assert in between.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from llmstage.controller.reconciler import contains

from bench import specs, testbed
from bench.operator_proc import Operator
from testkit.check import Problems, check_namespace, condition, is_ready, settled

GROUP, VERSION, PLURAL = specs.GROUP, specs.VERSION, specs.PLURAL
CHILD_RESOURCES = ",".join(
    (
        "deployments",
        "services",
        "persistentvolumeclaims",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "networkpolicies",
    )
)


class Bed:
    """One namespace, the operator that watches only it, and extra kwok nodes its pods must use."""

    def __init__(self, api: client.ApiClient, namespace: str, run_id: str, log_dir: Path) -> None:
        self.api, self.ns, self.run_id, self.log_dir = api, namespace, run_id, log_dir
        self.custom = client.CustomObjectsApi(api)
        self.operator: Operator | None = None
        self.operator_starts = 0

    # operator ----------------------------------------------------------------------------------
    def start_operator(self, *extra: str, wait_ready: float = 60) -> Operator:
        self.operator = Operator(
            [self.ns], self.log_dir / f"operator-{self.ns}.log", "--unschedulable-grace", "5", *extra
        )
        self.operator.start(wait_ready=wait_ready)
        self.operator_starts += 1
        return self.operator

    def stop_operator(self) -> int | None:
        code = self.operator.stop() if self.operator else None
        self.operator = None
        return code

    def operator_log(self) -> str:
        path = self.log_dir / f"operator-{self.ns}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # LLMServices -------------------------------------------------------------------------------
    def spec(self, i: int) -> dict[str, Any]:
        return specs.spec(i, specs.pinned(self.run_id))

    def create(self, name: str, spec: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
        body = specs.llmservice(name, spec)
        kwargs = {"field_validation": "Strict"} if strict else {}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body, **kwargs)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of spec; `None` values delete fields."""
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def services(self) -> list[dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)["items"]
        return list(items)

    def children(self) -> list[dict[str, Any]]:
        out = testbed.kubectl(
            "get", CHILD_RESOURCES, "-n", self.ns, "-l", "app.kubernetes.io/managed-by=llmstage", "-o", "json"
        ).stdout
        return list(json.loads(out)["items"])

    def wait(
        self,
        names: Iterable[str],
        done: Callable[[dict[str, Any]], bool] = is_ready,
        timeout: float = 120,
        what: str = "Ready",
    ) -> list[dict[str, Any]]:
        """Poll until `done` holds for every named service; fail naming the ones that are not."""
        want = set(names)
        deadline = time.monotonic() + timeout
        while True:
            current = {s["metadata"]["name"]: s for s in self.services() if s["metadata"]["name"] in want}
            pending = sorted(n for n in want if n not in current or not done(current[n]))
            if not pending:
                return list(current.values())
            if time.monotonic() > deadline:
                sample = {n: brief_status(current.get(n)) for n in pending[:5]}
                raise AssertionError(
                    f"{len(pending)} of {len(want)} LLMServices not {what} after {timeout:.0f}s: {sample}"
                )
            if self.operator is not None and not self.operator.alive():
                raise AssertionError(f"the operator exited while waiting:\n{self.operator_log()[-3000:]}")
            time.sleep(1.0)

    def problems(self, *, require_ready: bool = True, settle: float = 60) -> Problems:
        """What check_namespace finds, polled for up to `settle` seconds: an old runtime's
        claim stays until its pods are gone (pvc-protection), the garbage collector lags."""
        deadline = time.monotonic() + settle
        while True:
            found = check_namespace(self.services(), self.children(), require_ready=require_ready)
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def drift(self) -> list[str]:
        """Children whose live object lacks a field of what the operator would render now."""
        out = []
        live = {(c["kind"], c["metadata"]["name"]): c for c in self.children()}
        for svc in self.services():
            for obj in specs.rendered(svc, self.ns):
                have = live.get((obj["kind"], obj["metadata"]["name"]))
                if obj["kind"] == "PersistentVolumeClaim":
                    continue  # parts of a bound claim are immutable; the operator keeps the live ones
                if have is None or not contains(have, obj):
                    out.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return out


@contextlib.contextmanager
def bed_in_new_namespace(api: client.ApiClient, name: str, run_id: str, log_dir: Path) -> Iterator[Bed]:
    """A Bed in a fresh namespace `name`; afterwards its operator must have exited cleanly and
    logged no traceback. The namespace is deleted in the background."""
    testbed.create_namespace(name, specs.API_KEY_SECRET)
    bed = Bed(api, name, run_id, log_dir)
    try:
        yield bed
    finally:
        code = bed.stop_operator()
        testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)
    log = bed.operator_log()
    assert "Traceback" not in log, f"the operator logged a traceback:\n{log[-4000:]}"
    assert code in (None, 0, -15), f"the operator exited with {code}:\n{log[-3000:]}"


@contextlib.contextmanager
def extra_nodes(cpu_pods: int, gpus: int) -> Iterator[str]:
    """kwok nodes only pods pinned with specs.pinned(run_id) may use; yields run_id."""
    run_id = new_run_id()
    testbed.add_nodes(testbed.nodes_for(run_id, cpu_pods=cpu_pods, gpus=gpus))
    try:
        yield run_id
    finally:
        testbed.remove_nodes(run_id)


def brief_status(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return "missing"
    status = obj.get("status") or {}
    parts = [f"gen {obj['metadata'].get('generation')}/observed {status.get('observedGeneration')}"]
    for ctype in ("Ready", "Reconciling", "Stalled"):
        c = condition(obj, ctype)
        if c:
            parts.append(f"{ctype}={c['status']}({c.get('reason')}: {str(c.get('message'))[:120]})")
    return " ".join(parts)


def new_run_id() -> str:
    return uuid.uuid4().hex[:5]


def create_many(bed: Bed, bodies: dict[str, dict[str, Any]], workers: int = 8) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: bed.create(*item), bodies.items()))


# ------------------------------------------------------------------------------------ scenarios


def kill_during_convergence(bed: Bed, services: int, kills: int, seed: int = 0) -> dict[str, Any]:
    """SIGKILL the operator at random points while `services` LLMServices converge, restarting it
    each time; then everything converges with exactly the right children and owners."""
    rnd = random.Random(seed)
    names = {f"k-{i:03d}": bed.spec(i) for i in range(services)}
    bed.start_operator()
    t0 = time.monotonic()
    create_many(bed, names)
    kill_times = []
    for _ in range(kills):
        # Early kills land mid-apply, later ones mid-status; restarts re-read everything.
        time.sleep(rnd.uniform(0.2, 4.0))
        assert bed.operator is not None
        bed.operator.kill()
        kill_times.append(round(time.monotonic() - t0, 1))
        bed.start_operator()
    bed.wait(names, timeout=60 + services * 2)
    return {"kills_at_seconds": kill_times, "converged_after": round(time.monotonic() - t0, 1)}


def settle_or_reject(bed: Bed, name: str, spec: dict[str, Any]) -> tuple[str, str]:
    """Submit one spec: ("rejected", message) or ("accepted", "")."""
    try:
        bed.create(name, spec)
    except ApiException as err:
        if err.status != 422 and err.status != 400:
            raise
        try:
            message = json.loads(err.body or "{}").get("message", str(err.body))
        except ValueError:
            message = str(err.body)
        return "rejected", message
    return "accepted", ""


# A rejection names the field it is about: "spec.replicas: Invalid value ...", ".spec.bogus: field
# not declared in schema", or a CEL message that starts with the field path.
NAMES_A_FIELD = re.compile(r"\bspec(\.[A-Za-z][A-Za-z0-9]*|\[[0-9]+\])+")


def pin(spec: dict[str, Any], pinned: dict[str, Any]) -> dict[str, Any]:
    """Keep a fuzzed spec's scheduling but add the bed's node selector and toleration (so its
    pods use only the bed's nodes). Broken scheduling values are left for admission to reject."""
    scheduling = spec.setdefault("scheduling", {})
    if not isinstance(scheduling, dict):
        return spec
    if isinstance(scheduling.get("nodeSelector", {}), dict):
        scheduling["nodeSelector"] = {**scheduling.get("nodeSelector", {}), **pinned["nodeSelector"]}
    if isinstance(scheduling.get("tolerations", []), list):
        scheduling["tolerations"] = [*scheduling.get("tolerations", [])[:31], *pinned["tolerations"]]
    return spec


def fuzz(bed: Bed, examples: int, settle_timeout: float) -> dict[str, int]:
    """Submit `examples` generated specs with the operator running. Each must be rejected at
    admission with a message naming a field, or end Ready or Stalled with a reason; meanwhile
    the operator stays up and still serves a canary service. Returns outcome counts."""
    from hypothesis import HealthCheck, Phase, given, settings

    from bench import fuzzspecs

    bed.start_operator()
    bed.create("canary", bed.spec(0))
    bed.wait(["canary"], timeout=90)
    outcomes: dict[str, tuple[str, str, dict[str, Any]]] = {}
    pinned = specs.pinned(bed.run_id)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking against a live cluster
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=fuzzspecs.with_mistakes())
    def submit(spec: dict[str, Any]) -> None:
        name = f"fz-{len(outcomes):03d}"
        spec = pin(spec, pinned)
        outcome, message = settle_or_reject(bed, name, spec)
        outcomes[name] = outcome, message, spec

    submit()
    rejected = {n: o for n, o in outcomes.items() if o[0] == "rejected"}
    accepted = [n for n, o in outcomes.items() if o[0] == "accepted"]
    unnamed = {n: o[1] for n, o in rejected.items() if not NAMES_A_FIELD.search(o[1])}
    assert not unnamed, f"rejections that name no field: {unnamed}"
    assert accepted and rejected, f"{len(accepted)} accepted, {len(rejected)} rejected: the fuzz is one-sided"
    try:
        bed.wait(accepted, done=settled, timeout=settle_timeout, what="Ready or Stalled with a reason")
    except AssertionError as err:
        unsettled = {n: outcomes[n][2] for n in accepted if not settled(bed.get(n))}
        raise AssertionError(f"{err}\nspecs: {dict(list(unsettled.items())[:5])}") from None

    # Still serving the others: a spec change to the canary is carried out.
    bed.patch_spec("canary", {"stage": "staging", "expectedConcurrency": 4})
    bed.wait(["canary"], timeout=90)
    assert bed.get("canary")["status"]["stage"] == "staging"
    assert bed.operator is not None and bed.operator.alive(), "the operator exited"
    services = {s["metadata"]["name"]: s for s in bed.services()}
    stalled = sum(1 for n in accepted if not is_ready(services[n]))
    return {"rejected": len(rejected), "ready": len(accepted) - stalled, "stalled": stalled}


def concurrent_updates_and_promotions(bed: Bed, updated: int, promoted: int) -> None:
    """`updated` dev services get three quick spec edits each from their own thread while
    `promoted` staging services are promoted to production (Ollama -> vLLM cutover); in the
    end every child is what the final specs render, with one live owner each."""
    bed.start_operator()
    upd = {f"u-{i:02d}": specs.spec(0, specs.pinned(bed.run_id)) for i in range(updated)}
    pro = {f"p-{i:02d}": specs.spec(2, specs.pinned(bed.run_id)) for i in range(promoted)}  # staging
    create_many(bed, {**upd, **pro})
    bed.wait([*upd, *pro], timeout=120 + 2 * (updated + promoted))
    production = {
        "stage": "production",
        "replicas": 1,
        "resources": {"gpu": {"count": 1, "product": specs.H100}},
        "vllm": {"apiKeySecretRef": {"name": specs.API_KEY_SECRET}},
    }

    def update(name: str) -> None:
        for parallel in (2, 3, 4):  # the last edit is the one that must hold
            bed.patch_spec(name, {"ollama": {"numParallel": parallel}, "replicas": parallel - 1})

    jobs = [(update, n) for n in upd] + [(lambda n: bed.patch_spec(n, production), n) for n in pro]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: job[0](job[1]), jobs))

    def done(s: dict[str, Any]) -> bool:
        return is_ready(s) and not (s.get("status") or {}).get("cutover")

    bed.wait([*upd, *pro], done=done, timeout=240, what="Ready with no cutover")
    problems = bed.problems()
    assert not problems, problems.summary()
    assert bed.drift() == [], "children differ from what the final specs render"
    for svc in bed.services():
        name, status = svc["metadata"]["name"], svc["status"]
        if name in pro:
            assert (status["runtime"], status["stage"]) == ("vllm", "production"), brief_status(svc)
        else:
            assert status["runtime"] == "ollama", brief_status(svc)
    deployments = {d["metadata"]["name"]: d for d in bed.children() if d["kind"] == "Deployment"}
    for name in upd:
        dep = deployments[f"{name}-ollama"]
        env = {
            e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])
        }
        assert (env.get("OLLAMA_NUM_PARALLEL"), dep["spec"]["replicas"]) == ("4", 3), name
    for name in pro:
        assert f"{name}-ollama" not in deployments and f"{name}-vllm" in deployments, name
