#!/usr/bin/env python3
"""Ollama and vLLM (CPU) serving SmolLM2-135M on the real node, measured one after the other
with `llmstage benchmark`: the figures of docs/benchmarks.md's "the article's benchmark, here".

    .venv/bin/python hack/benchmark_side_by_side.py [--levels 1,2,4,8,16] [--duration 30]
        [--out docs/benchmarks/realnode-DATE]

Needs the local cluster with its real node (`make cluster-up` on a machine that can run
containers; not with a port offset, the real node belongs to the default cluster). Starts its
own operator (watching only its namespace), pushes what the node pulls (the benchmark image,
Ollama and the model, vLLM's CPU image and the model in Hugging Face format), and for each
runtime: applies one LLMService on the real node, waits until it is Ready, benchmarks it, keeps
the result (`llmstage benchmark -o json`) and its chart, and deletes it (and waits for its pods
to go) before the next one, so the two never share the node's CPUs. Both are dev-stage services
made as the real-node tests make theirs (testkit.realnode.dev_service: the model from the local
registry, the `smollm2-hf` image volume as vLLM's weights), with the defaults llmstage renders,
as the article's were "default configurations": Ollama with expectedConcurrency 4
(OLLAMA_NUM_PARALLEL 4, Ollama's old default the article measured), vLLM on its CPU image in
float32 with --enforce-eager and maxModelLen 2048 (testkit.realnode.VLLM_ON_THE_NODE). Each
server requests one CPU (the node has two; the benchmark pod, the gateway and CoreDNS request
the rest) and has no CPU limit. Writes into --out: ollama.json, ollama.svg, vllm.json, vllm.svg,
ollama-server.json and vllm-server.json (the server container as rendered: image, args, env,
resources), machine.txt (CPU model, cores, memory, versions) and table.md (the side-by-side
table for docs/benchmarks.md, also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "hack"))

import realnode as node  # noqa: E402

import images  # noqa: E402
from testkit import OperatorProcess, wait_until  # noqa: E402
from testkit.realnode import REGISTRY, SCHEDULING, dev_service  # noqa: E402

KUBECONFIG = REPO / ".cluster" / "kubeconfig"
KUBECTL = [str(REPO / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG)]
MODEL = images.MODEL_NAME


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def kubectl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run([*KUBECTL, *args], input=stdin, capture_output=True, text=True, check=True).stdout


def push(*names: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, str(REPO / "hack/images.py"), "push", "--registry", REGISTRY, "--json", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name: image["reference"] for name, image in json.loads(out).items()}


def services(refs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The two LLMServices, on the real node, as tests/realnode makes them (testkit.realnode)."""
    images_ = {"smollm2-hf": refs["smollm2-hf"]}
    common: dict[str, Any] = {"expectedConcurrency": 4, "replicas": 1}
    ollama = dev_service("smol-ollama", images_, runtime="ollama", **common)
    # Ollama pulls the model by its tag from the local registry: the Hugging Face weights and the
    # vLLM settings dev_service adds for a later promotion are refused with runtime ollama.
    del ollama["spec"]["model"]["source"], ollama["spec"]["vllm"]
    ollama["spec"]["resources"] = {"cpu": "1", "memory": "2Gi"}
    # vLLM's image by the name the operator renders (containerd's docker.io mirror is the local
    # registry, as for tests/realnode/test_vllm.py); its memory is the fit's.
    vllm = dev_service("smol-vllm", images_, runtime="vllm", **common)
    vllm["spec"]["resources"] = {"gpu": {"count": 0}, "cpu": "1"}
    return {"ollama": ollama, "vllm": vllm}


def server_container(name: str, ns: str) -> dict[str, Any]:
    """The serving container as rendered (image, args, env, resources): what was measured."""
    pods = json.loads(
        kubectl("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name}", "-o", "json")
    )
    for pod in pods["items"]:
        for container in pod["spec"]["containers"]:
            if container["name"] == "server":
                keep = ("image", "args", "command", "env", "resources")
                return {"node": pod["spec"].get("nodeName"), **{k: container.get(k) for k in keep}}
    return {}


def pods_gone(name: str, ns: str) -> bool:
    pods = json.loads(
        kubectl("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name}", "-o", "json")
    )
    return not pods["items"]


def ready(name: str, ns: str) -> bool:
    obj = json.loads(kubectl("get", "llmservice", name, "-n", ns, "-o", "json"))
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?")
    flags = next(
        (line.split(":", 1)[1].split() for line in lscpu.splitlines() if line.startswith("Flags")), []
    )
    simd = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "none"
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory = next((line.split()[1] for line in meminfo if line.startswith("MemTotal")), "?")
    return (
        f"CPU: {model}; {platform.machine()}; {os.cpu_count()} CPUs; SIMD: {simd}\n"
        f"node {node.NODE_NAME}: the host's CPUs, shared with the control plane and other work; "
        f"memory {int(memory) // 1024} MiB\n"
        f"kernel: {platform.release()}\n"
    )


def peak(result: dict[str, Any]) -> dict[str, Any]:
    return max(result["levels"], key=lambda lv: lv["outputTokensPerSecond"])


def scaling(result: dict[str, Any]) -> str:
    knee, top = result["knee"], max(lv["concurrency"] for lv in result["levels"])
    return f"flat beyond {knee} users" if knee else f"climbing to {top} users (no knee)"


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown for docs/benchmarks.md: the article's summary rows, then every level side by side."""
    names = list(results)
    peaks = {n: peak(results[n]) for n in names}
    head = "| | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(names)

    def summary(label: str, cell: Any) -> str:
        return f"| {label} | " + " | ".join(cell(n) for n in names) + " |"

    lines = [
        head,
        rule,
        summary(
            "peak throughput",
            lambda n: f"{peaks[n]['outputTokensPerSecond']:.1f} tokens/s at {peaks[n]['concurrency']} users",
        ),
        summary("P99 TTFT at peak", lambda n: f"{peaks[n]['timeToFirstTokenMs']['p99']:.0f} ms"),
        summary(
            "P99 inter-token latency at peak", lambda n: f"{peaks[n]['interTokenLatencyMs']['p99']:.1f} ms"
        ),
        summary("scaling", lambda n: scaling(results[n])),
        "",
        "| users | "
        + " | ".join(f"{n} tok/s | {n} TTFT p50/p99 ms | {n} ITL p99 ms | {n} errors" for n in names)
        + " |",
        "|---|" + "---|---|---|---|" * len(names),
    ]
    by_level = {n: {lv["concurrency"]: lv for lv in results[n]["levels"]} for n in names}
    for users in sorted(set().union(*by_level.values())):
        cells = []
        for n in names:
            lv = by_level[n].get(users)
            if lv is None:
                cells.append(" | | | ")
                continue
            ttft = lv["timeToFirstTokenMs"]
            cells.append(
                f"{lv['outputTokensPerSecond']:.1f} | {ttft['p50']:.0f} / {ttft['p99']:.0f} | "
                f"{lv['interTokenLatencyMs']['p99']:.1f} | {lv['requests']['errored']}"
            )
        lines.append(f"| {users} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--duration", default="30")
    ap.add_argument("--prompt-tokens", default="128")
    ap.add_argument("--output-tokens", default="64")
    ap.add_argument(
        "--out", type=Path, default=REPO / "docs" / "benchmarks" / f"realnode-{datetime.now(UTC):%Y-%m-%d}"
    )
    args = ap.parse_args()
    if not node.present():
        raise SystemExit(
            "no real node in the local cluster: `make cluster-up` on a machine that can run containers"
        )
    say("pushing the benchmark image, Ollama, the gateway, vLLM's CPU image and the model")
    refs = push("benchmark", "vllm-cpu", "smollm2-hf", "ollama", "gateway")
    subprocess.run(
        [sys.executable, str(REPO / "hack/images.py"), "model", "--registry", REGISTRY], check=True
    )
    ns = f"llm-bench-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", ns)
    args.out.mkdir(parents=True, exist_ok=True)
    operator = OperatorProcess(
        KUBECONFIG,
        REPO / ".cluster" / "logs" / "side-by-side-operator.log",
        "--namespace",
        ns,
        "--no-leader-elect",
    )
    operator.start(wait_ready=120)
    results: dict[str, dict[str, Any]] = {}
    try:
        (label, value) = next(iter(SCHEDULING["nodeSelector"].items()))
        for runtime, body in services(refs).items():
            name = body["metadata"]["name"]
            say(f"{runtime}: applying {ns}/{name} on {node.NODE_NAME}")
            kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(body))
            started = time.monotonic()
            wait_until(lambda n=name: ready(n, ns), timeout=900, interval=2, what=f"{name} Ready")
            say(f"{runtime}: Ready after {time.monotonic() - started:.0f} s; benchmarking")
            server = server_container(name, ns)
            (args.out / f"{runtime}-server.json").write_text(json.dumps(server, indent=2) + "\n")
            res = subprocess.run(
                [sys.executable, "-m", "llmstage.cli", "benchmark", name, "-n", ns,
                 "--kubeconfig", str(KUBECONFIG),
                 "--levels", args.levels, "--duration", args.duration, "--prompt-tokens", args.prompt_tokens,
                 "--output-tokens", args.output_tokens, "--image", refs["benchmark"],
                 "--node-selector", f"{label}={value}", "--toleration", SCHEDULING["tolerations"][0]["key"],
                 "--chart", str(args.out / f"{runtime}.svg"), "-o", "json"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            sys.stderr.write(res.stderr)
            if res.returncode != 0:
                raise SystemExit(f"{runtime}: llmstage benchmark exited {res.returncode}")
            (args.out / f"{runtime}.json").write_text(res.stdout)
            results[runtime] = json.loads(res.stdout)
            kubectl("delete", "llmservice", name, "-n", ns, "--wait=true", "--timeout=300s")
            # Its pods go with it (garbage collection) before the next one starts.
            wait_until(lambda n=name: pods_gone(n, ns), timeout=300, interval=2, what=f"{name}'s pods gone")
    finally:
        operator.stop()
        subprocess.run([*KUBECTL, "delete", "namespace", ns, "--wait=false"], check=False)
    tool = results["ollama"]["settings"]["tool"]
    versions = f"Ollama: {refs['ollama']} (hack/tools/ollama, CPU)\nvLLM: {refs['vllm-cpu']}\n"
    versions += f"benchmark: {refs['benchmark']} ({tool})\nmodel: {MODEL} ({images.MODEL_WHEEL})\n"
    (args.out / "machine.txt").write_text(machine() + versions)
    (args.out / "table.md").write_text(table(results))
    settings = results["ollama"]["settings"]
    say(
        f"written to {args.out}; {settings['promptTokens']} prompt and {settings['outputTokens']} output "
        f"tokens per request, {settings['durationSeconds']:g} s per level"
    )
    print((args.out / "machine.txt").read_text())
    print(table(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
