"""`make bench`: P1-P5 (docs/benchmarks.md) on the local cluster, printed beside their targets.

    python -m bench.run --n 1000            # sizes 100 and 1000 (P5 is their ratio)
    python -m bench.run --n 200 --idle 60   # quicker

For each size: (1) the write floor: the rendered children of N LLMServices are server-side
applied directly (the operator's client, 32 services at a time, no operator) until every
Deployment is Available; (2) the operator (`llmstage run` subprocess): N LLMServices are created
at once (32 at a time) until every one is Ready with all its children. At the largest size the
operator then stays up for P2 (its writes to a quiet cluster, from the audit log), P3 (one more
LLMService, 20 times) and P4 (its peak RSS). Extra kwok nodes are added for the run and removed
afterwards; the results go to bench/results/DATE.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmstage.controller.kube import KINDS, Kube
from llmstage.controller.observed import deployment_available
from llmstage.render.labels import INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER

from bench import realnode, specs, testbed
from bench.observe import Mirror
from bench.operator_proc import Operator
from bench.report import RESULTS, table, write_results
from testkit import audit
from testkit.check import check_namespace, is_ready

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "llmservices.llmstage.io.yaml"
LLMSERVICE = KINDS[("llmstage.io/v1alpha1", "LLMService")]
DEPLOYMENT = KINDS[("apps/v1", "Deployment")]
CHILD_KINDS = [
    KINDS[k]
    for k in [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ]
]
CONCURRENCY = 32  # the operator's default --concurrency; the floor and the creates use the same
BENCH_AGENT = "llmstage-bench/0.1.0"

log = logging.getLogger("bench")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: Iterable[float], p: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


# ----------------------------------------------------------------------------- CPU accounting

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(operator_pid: int | None = None) -> dict[str, float]:
    """CPU seconds used so far by each control-plane process, the operator, this benchmark and
    the whole machine (busy time of all CPUs, which includes other people's test runs)."""
    out = {}
    for name in COMPONENTS:
        pid_file = REPO / ".cluster" / "pids" / f"{name}.pid"
        if pid_file.exists():
            out[name] = _proc_cpu(int(pid_file.read_text()))
    if operator_pid:
        out["operator"] = _proc_cpu(operator_pid)
    out["bench"] = _proc_cpu(os.getpid())
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    out["machine_busy"] = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    delta = {k: round(after[k] - before.get(k, 0.0), 1) for k in after}
    delta["others"] = round(
        delta["machine_busy"] - sum(v for k, v in delta.items() if k != "machine_busy"), 1
    )
    return delta


# ----------------------------------------------------------------------------- phases


async def gather_limited(n: int, coros: Iterable[Any]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


@dataclass
class Convergence:
    seconds: float
    writes_done: float  # when the last write of the bench itself returned
    settle_p50: float  # median per-object time to done, from t0
    settle_p90: float
    extra: dict[str, Any] = field(default_factory=dict)


async def write_floor(kube: Kube, ns: str, bodies: list[dict[str, Any]], timeout: float) -> Convergence:
    """Server-side apply every rendered child directly, then wait for every Deployment Available."""
    objects = [specs.rendered(b, ns) for b in bodies]
    want = {o["metadata"]["name"] for objs in objects for o in objs if o["kind"] == "Deployment"}
    done: dict[str, float] = {}
    mirror = Mirror(kube, DEPLOYMENT, ns)

    def on_event(kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        if kind != "DELETED" and name in want and name not in done and deployment_available(obj):
            done[name] = at

    mirror.listeners.append(on_event)
    await mirror.start()
    cpu0 = cpu_snapshot()
    mark = audit.mark()
    t0 = time.perf_counter()

    async def apply_all(objs: list[dict[str, Any]]) -> None:
        for obj in objs:
            await kube.apply(obj)

    await gather_limited(CONCURRENCY, (apply_all(objs) for objs in objects))
    writes_done = time.perf_counter() - t0
    try:
        await wait_for(mirror, lambda: len(done) >= len(want), timeout, f"{len(want)} Deployments Available")
    finally:
        await mirror.stop()
    times = [t - t0 for t in done.values()]
    cpu = cpu_delta(cpu0, cpu_snapshot())
    writes = await asyncio.to_thread(audit.write_counts, mark, [ns])
    return Convergence(
        max(times), writes_done, pct(times, 50), pct(times, 90), {"cpu": cpu, "writes": writes}
    )


async def wait_for(mirror: Mirror, check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        mirror.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(mirror.changed.wait(), min(remaining, 5))


async def list_children(kube: Kube, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
    out = []
    label = f"{MANAGED_BY_LABEL}={MANAGER}" + (f",{selector}" if selector else "")
    for kind in CHILD_KINDS:
        for item in await kube.list(kind, ns, label_selector=label):
            out.append({**item, "kind": kind.kind, "apiVersion": kind.api_version})
    return out


async def operator_convergence(
    kube: Kube, ns: str, bodies: list[dict[str, Any]], mirror: Mirror, timeout: float, operator_pid: int
) -> Convergence:
    """Create every LLMService at once; done when each is Ready and has all its children."""
    want = {b["metadata"]["name"] for b in bodies}
    ready: dict[str, float] = {}

    def on_event(kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        if kind != "DELETED" and name in want and name not in ready and is_ready(obj):
            ready[name] = at

    mirror.listeners.append(on_event)
    cpu0 = cpu_snapshot(operator_pid)
    mark = audit.mark()
    t0 = time.perf_counter()
    await gather_limited(CONCURRENCY, (kube.create(LLMSERVICE, ns, b) for b in bodies))
    writes_done = time.perf_counter() - t0
    await wait_for(mirror, lambda: len(ready) >= len(want), timeout, f"{len(want)} LLMServices Ready")
    all_ready = max(ready.values()) - t0
    cpu = cpu_delta(cpu0, cpu_snapshot(operator_pid))
    # Ready implies the Deployment and the Service; check the rest (and the owners). When the
    # first check passes, everything was there when the last one became Ready.
    seconds = all_ready
    deadline = time.monotonic() + 60
    while True:
        services = [s for s in mirror.items.values() if s["metadata"]["name"] in want]
        problems = check_namespace(services, await list_children(kube, ns))
        if not problems:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"converged with problems: {problems.summary()}")
        await asyncio.sleep(0.5)
        seconds = time.perf_counter() - t0
    times = [t - t0 for t in ready.values()]
    writes = await asyncio.to_thread(audit.write_counts, mark, [ns])
    return Convergence(seconds, writes_done, pct(times, 50), pct(times, 90), {"cpu": cpu, "writes": writes})


async def single_latency(kube: Kube, ns: str, mirror: Mirror, tries: int, run_id: str) -> dict[str, Any]:
    """P3: one more LLMService into the converged namespace, `tries` times, one at a time."""
    names = [f"lat-{i}" for i in range(tries)]
    selector = f"{INSTANCE_LABEL} in ({','.join(names)})"
    child_mirrors = [await Mirror(kube, k, ns, label_selector=selector).start() for k in CHILD_KINDS]
    present: dict[tuple[str, str], float] = {}
    ready_at: dict[str, float] = {}

    progress = asyncio.Event()

    def child_event(kind: str, obj: dict[str, Any], at: float) -> None:
        if kind == "ADDED":
            present.setdefault((obj["kind"], obj["metadata"]["name"]), at)
            progress.set()

    def svc_event(kind: str, obj: dict[str, Any], at: float) -> None:
        if kind != "DELETED" and obj["metadata"]["name"] in names and is_ready(obj):
            ready_at.setdefault(obj["metadata"]["name"], at)
            progress.set()

    for m in child_mirrors:
        m.listeners.append(child_event)
    mirror.listeners.append(svc_event)
    children_ms, ready_ms = [], []
    try:
        for i, name in enumerate(names):
            body = specs.llmservice(name, specs.spec(i, specs.pinned(run_id)))
            want = {(o["kind"], o["metadata"]["name"]) for o in specs.rendered(body, ns)}
            t0 = time.perf_counter()
            await kube.create(LLMSERVICE, ns, body)

            def done(want: set[tuple[str, str]] = want, name: str = name) -> bool:
                return want <= set(present) and name in ready_at

            try:
                async with asyncio.timeout(60):
                    while not done():
                        progress.clear()
                        await progress.wait()
            except TimeoutError:
                raise TimeoutError(f"{name}: not Ready with all its children after 60s") from None
            children_ms.append((max(present[k] for k in want) - t0) * 1000)
            ready_ms.append((ready_at[name] - t0) * 1000)
            await asyncio.sleep(0.5)  # let the trailing status writes of this one pass
    finally:
        for m in child_mirrors:
            await m.stop()
    return {
        "tries": tries,
        "children_ms": {"p50": pct(children_ms, 50), "p95": pct(children_ms, 95), "all": children_ms},
        "ready_ms": {"p50": pct(ready_ms, 50), "p95": pct(ready_ms, 95), "all": ready_ms},
    }


# ----------------------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


def other_operators() -> list[str]:
    """Other `llmstage run` processes on this machine that watch every namespace: they would
    reconcile the benchmark's objects too."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        if "llmstage" in text and " run" in text and ("--all-namespaces" in text or " -A" in text):
            found.append(f"pid {p.name}")
    return found


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:5]
    sizes = sorted({min(100, args.n), args.n})
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    logs = RESULTS / f"{stamp}-logs"
    result: dict[str, Any] = {
        "date": stamp,
        "machine": machine(),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip(),
        "sizes": {},
        "notes": [],
    }
    if others := other_operators():
        note = (
            f"other operators watching all namespaces were running ({', '.join(others)}): they may add load"
        )
        result["notes"].append(note)
        say(f"warning: {note}")

    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    testbed.kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    biggest = max(sizes)
    cpu_pods = biggest - specs.gpus(biggest) + args.tries
    nodes = testbed.nodes_for(run_id, cpu_pods, specs.gpus(biggest) + args.tries)
    say(f"run {run_id}: adding {len(nodes)} kwok nodes for N={biggest}")
    testbed.add_nodes(nodes)
    kube = await Kube.connect(str(testbed.KUBECONFIG), pool_size=CONCURRENCY + 8, user_agent=BENCH_AGENT)
    try:
        for n in sizes:
            if n == biggest:
                result["sizes"][str(n)] = {}
                await run_size(kube, run_id, n, True, args, logs, result["sizes"][str(n)])
            else:
                result["sizes"][str(n)] = await run_small(kube, run_id, n, args, logs)
            write_results(result, stamp)
    except BaseException as err:
        result["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        write_results(result, stamp)
        await kube.close()
        say("removing the benchmark nodes")
        testbed.remove_nodes(run_id)
    return result


async def run_small(kube: Kube, run_id: str, n: int, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """The small size `args.small_repeats` times; the run with the median operator time stands
    for it. A half-minute phase on a 2-core machine varies by a fifth from run to run, and P5
    divides by it."""
    runs: list[dict[str, Any]] = []
    for i in range(args.small_repeats):
        out: dict[str, Any] = {}
        tag = f"-{i + 1}" if args.small_repeats > 1 else ""
        await run_size(kube, run_id, n, False, args, logs, out, tag=tag)
        runs.append(out)
    runs.sort(key=lambda r: r["operator"]["seconds"])
    median = dict(runs[len(runs) // 2])
    median["repeats"] = [
        {"floor": r["floor"]["seconds"], "operator": r["operator"]["seconds"], "ratio": r["ratio"]}
        for r in runs
    ]
    return median


async def run_size(  # noqa: PLR0915 - one benchmark size from start to report, in order
    kube: Kube,
    run_id: str,
    n: int,
    last: bool,
    args: argparse.Namespace,
    logs: Path,
    out: dict[str, Any],
    tag: str = "",
) -> None:
    """Fills `out` as it goes, so a failed run still leaves what it measured."""
    sched = specs.pinned(run_id)
    bodies = [specs.llmservice(f"svc-{i:04d}", specs.spec(i, sched)) for i in range(n)]
    timeout = args.timeout

    floor_ns = f"bench-{run_id}-floor-{n}{tag}"
    testbed.create_namespace(floor_ns, specs.API_KEY_SECRET)
    say(f"N={n}: write floor (server-side apply of the rendered objects, no operator)")
    try:
        floor = await write_floor(kube, floor_ns, bodies, timeout)
    finally:
        gone = testbed.delete_namespace(floor_ns)
    out["floor"] = floor.__dict__
    say(
        f"N={n}: floor {floor.seconds:.1f}s (writes done at {floor.writes_done:.1f}s); "
        f"CPU s {floor.extra['cpu']}; cleanup {gone:.0f}s"
    )

    ns = f"bench-{run_id}-op-{n}{tag}"
    testbed.create_namespace(ns, specs.API_KEY_SECRET)
    op = Operator([ns], logs / f"operator-{n}{tag}.log", *args.operator_args, short_lease=False)
    if args.profile == "tracemalloc":
        op.python_args = [str(REPO / "bench" / "memprofile.py"), str(logs / f"memory-{n}{tag}.txt")]
    elif args.profile:
        op.wrapper = profiler(args.profile, logs / f"profile-{n}{tag}")
    try:
        op.start()
        mirror = await Mirror(kube, LLMSERVICE, ns).start()
        say(f"N={n}: operator (pid {op.pid}) converging {n} LLMServices")
        conv = await operator_convergence(kube, ns, bodies, mirror, timeout, op.pid)
        out["operator"] = conv.__dict__
        out["ratio"] = conv.seconds / floor.seconds
        out["operator_metrics_at_convergence"] = op.metrics()
        out["operator_cpu_seconds_at_convergence"] = op.cpu_seconds() if args.profile != "py-spy" else None
        # P4 at every size; at the largest it is read again after P2 and P3 (memory_mib).
        out["memory_at_convergence_mib"] = op.memory() if args.profile is None and op.alive() else {}
        if args.profile == "tracemalloc":
            os.kill(op.pid, signal.SIGUSR1)
        m = out["operator_metrics_at_convergence"]
        say(
            f"N={n}: converged in {conv.seconds:.1f}s (ratio {out['ratio']:.2f}); operator CPU "
            f"{out['operator_cpu_seconds_at_convergence'] or 0:.1f}s, "
            f"{m.get('llmstage_reconciles_total', 0):.0f} reconciles, "
            f"{m.get('llmstage_applies_total', 0):.0f} applies, "
            f"{m.get('llmstage_status_writes_total', 0):.0f} status writes; CPU s {conv.extra['cpu']}"
        )
        if last:
            await asyncio.sleep(args.settle)
            say(f"N={n}: P2 counting the operator's writes for {args.idle:.0f}s with nothing changing")
            m = audit.mark()
            await asyncio.sleep(args.idle)
            writes = await asyncio.to_thread(audit.operator_writes, m, [ns])
            out["idle"] = {"seconds": args.idle, "writes": len(writes), "what": audit.describe(writes)}
            say(f"N={n}: P2 {len(writes)} writes ({audit.describe(writes)})")
            say(f"N={n}: P3 single-object latency, {args.tries} tries")
            out["latency"] = await single_latency(kube, ns, mirror, args.tries, run_id)
            out["memory_mib"] = op.memory() if op.alive() and args.profile != "py-spy" else {}
            out["operator_metrics"] = op.metrics()
        await mirror.stop()
        if not op.alive():
            raise RuntimeError(f"the operator died:\n{op.log()[-3000:]}")
    finally:
        if args.profile == "py-spy" and op.proc is not None and op.proc.poll() is None:
            os.kill(op.pid, 2)  # py-spy/pyinstrument write their report on SIGINT
            op.proc.wait(60)
        op.stop()
        say(f"N={n}: cleanup")
        testbed.delete_namespace(ns)
    if "Traceback" in op.log():
        out["operator_tracebacks"] = op.log().count("Traceback")


def profiler(kind: str, base: Path) -> list[str]:
    if kind == "py-spy":
        return [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--format",
            "raw",
            "-o",
            f"{base}.txt",
            "--",
        ]
    raise SystemExit(f"--profile: unknown profiler {kind!r} (py-spy)")


async def cancel_on_signals(coro: Any) -> Any:
    """SIGTERM and SIGINT (ignored by default in background jobs) cancel the run, so its
    cleanup (operator, namespaces, nodes) still happens."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="largest size (100 is always run too)")
    ap.add_argument("--idle", type=float, default=300, help="P2 quiet interval in seconds")
    ap.add_argument("--settle", type=float, default=10, help="seconds after convergence before P2 starts")
    ap.add_argument("--tries", type=int, default=20, help="P3 tries")
    ap.add_argument(
        "--small-repeats", type=int, default=3, help="runs of the small size (N=100); the median stands"
    )
    ap.add_argument("--timeout", type=float, default=1800, help="convergence timeout per phase")
    ap.add_argument(
        "--profile",
        choices=["py-spy", "tracemalloc"],
        help="py-spy: CPU samples of the operator; tracemalloc: its live memory at convergence",
    )
    ap.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        dest="operator_args",
        help="extra argument for `llmstage run` (repeatable)",
    )
    ap.add_argument("--p7", type=int, default=10, help="P7 tries on the real node (0: skip P7 and P8)")
    ap.add_argument("--p8", type=int, default=3, help="P8 tries on the real node")
    ap.add_argument("--report", type=Path, help="print the table of an earlier results file and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.report:
        print(table(json.loads(args.report.read_text())))
        return 0
    if subprocess.run(
        [sys.executable, str(REPO / "hack" / "cluster.py"), "status"], capture_output=True
    ).returncode:
        print(
            "error: the local cluster is not running: start it with `python3 hack/cluster.py up`",
            file=sys.stderr,
        )
        return 2
    stamp_result = asyncio.run(cancel_on_signals(run(args)))
    if args.p7:
        stamp_result["realnode"] = realnode.run(args.p7, args.p8)
    path = write_results(stamp_result, stamp_result["date"])
    print()
    print(table(stamp_result))
    print(f"results: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
