"""P4 on its own, with a timeline: N LLMServices converge under the operator while its RSS is
sampled every second. Prints the peak and when it happened relative to the convergence, so a
change aimed at memory can be judged in one operator phase instead of a whole `make bench`.

    .venv/bin/python -m bench.memory --n 1000 [-- OPERATOR ARGS]

Uses the local cluster (`make cluster-up`) and adds/removes its own kwok nodes, like bench.run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from llmstage.controller.kube import Kube

from bench import specs, testbed
from bench.observe import Mirror
from bench.operator_proc import Operator
from bench.report import RESULTS
from bench.run import BENCH_AGENT, CONCURRENCY, CRD, LLMSERVICE, REPO, operator_convergence, say


async def sample(op: Operator, out: list[tuple[float, float]], t0: float) -> None:
    while op.alive():
        try:
            out.append((time.perf_counter() - t0, op.memory()["VmRSS"]))
        except (OSError, KeyError):
            return
        await asyncio.sleep(1.0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:5]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    testbed.kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    ns = f"bench-{run_id}-mem-{args.n}"
    try:
        testbed.add_nodes(testbed.nodes_for(run_id, args.n - specs.gpus(args.n), specs.gpus(args.n)))
        testbed.create_namespace(ns, specs.API_KEY_SECRET)
        return await _measure(args, run_id, stamp, ns)
    finally:
        testbed.delete_namespace(ns)
        testbed.remove_nodes(run_id)


async def _measure(args: argparse.Namespace, run_id: str, stamp: str, ns: str) -> dict[str, Any]:
    kube = await Kube.connect(str(testbed.KUBECONFIG), pool_size=CONCURRENCY + 8, user_agent=BENCH_AGENT)
    sched = specs.pinned(run_id)
    bodies = [specs.llmservice(f"svc-{i:04d}", specs.spec(i, sched)) for i in range(args.n)]
    op = Operator([ns], RESULTS / f"{stamp}-memory-operator.log", *args.operator_args, short_lease=False)
    if args.tracemalloc:  # where the live memory was allocated, dumped at convergence
        op.python_args = [str(REPO / "bench" / "memprofile.py"), str(RESULTS / f"{stamp}-tracemalloc.txt")]
    timeline: list[tuple[float, float]] = []
    try:
        op.start()
        idle = op.memory()["VmRSS"]
        mirror = await Mirror(kube, LLMSERVICE, ns).start()
        t0 = time.perf_counter()
        sampler = asyncio.create_task(sample(op, timeline, t0))
        conv = await operator_convergence(kube, ns, bodies, mirror, args.timeout, op.pid)
        if args.tracemalloc:
            os.kill(op.pid, signal.SIGUSR1)
        await asyncio.sleep(args.after)
        sampler.cancel()
        await mirror.stop()
        mem = op.memory()
        peak_at, _ = max(timeline, key=lambda s: s[1])
        result = {
            "date": stamp,
            "n": args.n,
            "operator_args": args.operator_args,
            "idle_mib": idle,
            "VmHWM_mib": mem["VmHWM"],
            "VmRSS_end_mib": mem["VmRSS"],
            "peak_sampled_at_s": peak_at,
            "writes_done_s": conv.writes_done,
            "converged_s": conv.seconds,
            "timeline": timeline[:: max(1, len(timeline) // 60)],
        }
    finally:
        op.stop()
        await kube.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}-memory.json"
    path.write_text(json.dumps(result, indent=2))
    say(
        f"N={args.n}: idle {idle:.1f} MiB, peak RSS {mem['VmHWM']:.1f} MiB "
        f"({mem['VmHWM'] * 1.048576:.0f} MB) "
        f"sampled at {peak_at:.0f}s; writes done {conv.writes_done:.0f}s, converged {conv.seconds:.0f}s; "
        f"end {mem['VmRSS']:.1f} MiB -> {path}"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument(
        "--after",
        type=float,
        default=10,
        help="seconds to keep sampling after convergence (with --tracemalloc: 60 or more, the dump is slow)",
    )
    ap.add_argument("--tracemalloc", action="store_true", help="run the operator under bench/memprofile.py")
    ap.add_argument("operator_args", nargs="*", help="extra `llmstage run` arguments (after --)")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
