"""Extra kwok capacity for a benchmark run, and namespaces that are gone when we say so.

Nodes are shaped like hack/cluster/nodes.yaml (kwok-managed via the `kwok.x-k8s.io/node: fake`
annotation, GPU labels as GPU feature discovery sets them, the nvidia.com/gpu taint) plus a
label and a NoSchedule taint of the run, so only the benchmark's pods land on them and the
shared nodes stay free for other test sessions.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.specs import BENCH_NODE_LABEL, H100

REPO = Path(__file__).resolve().parent.parent
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
PODS_PER_NODE = 110


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True, input=stdin
    )
    if check and res.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:4])}... failed: {res.stderr.strip()}")
    return res


def _node(name: str, run_id: str, capacity: dict[str, str], gpu: bool) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        BENCH_NODE_LABEL: run_id,
    }
    taints = [{"key": BENCH_NODE_LABEL, "value": run_id, "effect": "NoSchedule"}]
    if gpu:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": H100,
            "nvidia.com/gpu.memory": "81559",
            "nvidia.com/gpu.count": capacity["nvidia.com/gpu"],
        }
        taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": labels,
        },
        "spec": {"taints": taints},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
            "phase": "Running",
        },
    }


def nodes_for(run_id: str, cpu_pods: int, gpus: int) -> list[dict[str, Any]]:
    """CPU nodes for `cpu_pods` pods and 8-GPU H100 nodes for `gpus` GPUs, with headroom."""
    n_cpu = math.ceil(cpu_pods * 1.15 / PODS_PER_NODE) + 1
    n_gpu = math.ceil(gpus * 1.15 / 8) + 1
    cpu_cap = {"cpu": "1000", "memory": "4Ti", "pods": str(PODS_PER_NODE), "ephemeral-storage": "100Ti"}
    gpu_cap = {
        "cpu": "208",
        "memory": "1800Gi",
        "pods": str(PODS_PER_NODE),
        "nvidia.com/gpu": "8",
        "ephemeral-storage": "100Ti",
    }
    return [_node(f"bench-{run_id}-cpu-{i}", run_id, cpu_cap, gpu=False) for i in range(n_cpu)] + [
        _node(f"bench-{run_id}-gpu-{i}", run_id, gpu_cap, gpu=True) for i in range(n_gpu)
    ]


def add_nodes(nodes: list[dict[str, Any]], timeout: float = 120) -> None:
    manifest = "\n".join(json.dumps(n) for n in nodes)
    kubectl("apply", "--server-side", "--field-manager=llmstage-bench", "-f", "-", stdin=manifest)
    names = {n["metadata"]["name"] for n in nodes}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = set()
        for node in json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]:
            conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            taints = {t["key"] for t in node.get("spec", {}).get("taints") or []}
            if conds.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints:
                ready.add(node["metadata"]["name"])
        if names <= ready:
            return
        time.sleep(1)
    raise RuntimeError(f"bench nodes not Ready after {timeout:.0f}s: {sorted(names - ready)[:5]}")


def remove_nodes(run_id: str) -> None:
    kubectl("delete", "nodes", "-l", f"{BENCH_NODE_LABEL}={run_id}", "--wait=false", check=False)


def create_namespace(name: str, secret: str | None = None) -> None:
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "llmstage.io/bench=true")
    if secret:
        kubectl("create", "secret", "generic", secret, "-n", name, "--from-literal=api-key=bench")


def delete_namespace(name: str, timeout: float = 600) -> float:
    """Delete and wait until it is gone (pods, claims and volumes with it); returns seconds."""
    t0 = time.monotonic()
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
    while time.monotonic() - t0 < timeout:
        if kubectl("get", "namespace", name, check=False).returncode != 0:
            return time.monotonic() - t0
        time.sleep(2)
    raise RuntimeError(f"namespace {name} still terminating after {timeout:.0f}s")
