"""P7 and P8 on the local cluster's real node: what a user waits for, with real containers.

    python -m bench.realnode            # P7 over 10 tries, P8 over 3
    python -m bench.realnode --p7 3 --p8 1

P7: `kubectl apply` of a dev LLMService of SmolLM2-135M (examples/smollm2-dev-local-registry.yaml)
-> the first chat completion answered through its Service, with the Ollama image on the node and
the model in the cluster's registry (each try has a fresh namespace and so a fresh cache claim:
the init container pulls the 98 MB model from the registry every time). The completion is
asked from this machine at the Service's ClusterIP (kube-proxy's rules route it as for a pod; the
DNS name resolves only inside pods), every 100 ms. Each try also reports when the pod was
scheduled, when the pull ended, when the server started, when the model was loaded (the
loader's marker, read from the server's log) and when the pod turned Ready.

P8: a served dev service promoted to production in place (the vLLM stand-in, e2e/fake-llm, on
`nvidia.com/gpu` capacity advertised on the real node for the run) -> every ready endpoint of
its Service on the new runtime.

The operator is `llmstage run` on this machine (bench/operator_proc.py, started by
testkit/launcher.py), watching only the bench's namespaces. Prints p50/p95 beside the targets
and returns the figures to bench.run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench import testbed
from bench.operator_proc import Operator

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "smollm2-dev-local-registry.yaml"
NAME = "smollm2"
P7_TARGET_P50 = 10.0
GPU_PRODUCT = "NVIDIA-L4"

sys.path.insert(0, str(REPO / "hack"))
import realnode  # noqa: E402  (hack/ is no package; standard library only)


def say(msg: str) -> None:
    print(f"[realnode] {msg}", flush=True)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    return testbed.kubectl(*args, stdin=stdin, check=check).stdout


def get(kind: str, name: str, ns: str) -> dict[str, Any] | None:
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(out) if out else None


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def ask(cluster_ip: str, model: str, api_key: str = "") -> bool:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
    req = urllib.request.Request(
        f"http://{cluster_ip}:8000/v1/chat/completions", body.encode(), {"Content-Type": "application/json"}
    )
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return bool(json.load(r).get("choices"))
    except (OSError, ValueError):
        return False


def service_doc(ns: str) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = ns
    return doc


def first_answer(ns: str, started: float, timeout: float = 600, api_key: str = "") -> float:
    """Seconds from `started` to the first completion through the Service's ClusterIP."""
    deadline = time.time() + timeout
    cluster_ip = ""
    while time.time() < deadline:
        if not cluster_ip:
            svc = get("service", NAME, ns)
            cluster_ip = (svc or {}).get("spec", {}).get("clusterIP", "")
        if cluster_ip and ask(cluster_ip, "smollm2:135m", api_key):
            return time.time() - started
        time.sleep(0.1)
    raise RuntimeError(f"{ns}/{NAME}: no answer through the Service in {timeout:.0f}s")


def p7_try(run_id: str, i: int) -> dict[str, float]:
    ns = f"brn-{run_id}-p7-{i}"
    kubectl("create", "namespace", ns)
    try:
        started = time.time()
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(service_doc(ns)))
        total = first_answer(ns, started)
        pod = json.loads(
            kubectl("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={NAME}", "-o", "json")
        )["items"][0]
        status = pod["status"]
        conds = {c["type"]: c for c in status["conditions"]}
        init = next(c for c in status["initContainerStatuses"] if c["name"] == "pull-model")["state"][
            "terminated"
        ]
        server = next(c for c in status["containerStatuses"] if c["name"] == "server")
        log = kubectl("logs", pod["metadata"]["name"], "-n", ns, "-c", "server", "--timestamps", check=False)
        loaded = next((line.split()[0] for line in log.splitlines() if "is loaded" in line), "")
        out = {
            "total": total,
            "scheduled": ts(conds["PodScheduled"]["lastTransitionTime"]) - started,
            "pull_started": ts(init["startedAt"]) - started,
            "pull_done": ts(init["finishedAt"]) - started,
            "server_started": ts(server["state"]["running"]["startedAt"]) - started,
            "model_loaded": (ts(loaded) - started) if loaded else float("nan"),
            "ready": ts(conds["Ready"]["lastTransitionTime"]) - started,
        }
        steps = ", ".join(f"{k} {v:.1f}" for k, v in out.items())
        say(f"P7 try {i + 1}: first answer after {total:.1f} s ({steps})")
        return out
    finally:
        delete_namespace(ns)


def delete_namespace(ns: str) -> None:
    """Delete and wait until it is gone: its terminating pods hold CPU the next try's pod needs
    on the 2-CPU node (Ollama's preStop sleep is 15 s), which showed as 10 s scheduling delays."""
    kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s", check=False)


def p8_try(run_id: str, i: int, fake_llm: str) -> float:
    ns = f"brn-{run_id}-p8-{i}"
    kubectl("create", "namespace", ns)
    kubectl("create", "secret", "generic", "bench-key", "-n", ns, "--from-literal=api-key=bench")
    try:
        doc = service_doc(ns)
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
        first_answer(ns, time.time())
        doc["spec"].update(
            stage="production", vllm={"image": fake_llm, "apiKeySecretRef": {"name": "bench-key"}}
        )
        doc["spec"]["resources"] = {
            "cpu": "250m",
            "memory": "512Mi",
            "gpu": {"count": 1, "product": GPU_PRODUCT},
        }
        started = time.time()
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
        deadline = started + 600
        while time.time() < deadline:
            if endpoints_all_vllm(ns):
                took = time.time() - started
                say(f"P8 try {i + 1}: every ready endpoint on vLLM after {took:.1f} s")
                return took
            time.sleep(0.1)
        raise RuntimeError(f"{ns}: the Service's endpoints not all on vLLM after 600 s")
    finally:
        delete_namespace(ns)


def endpoints_all_vllm(ns: str) -> bool:
    slices = json.loads(
        kubectl("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={NAME}", "-o", "json")
    )["items"]
    ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
    return bool(ready) and all(
        e.get("targetRef", {}).get("name", "").startswith(f"{NAME}-vllm-") for e in ready
    )


def advertise_gpus(count: int) -> None:
    value = str(count) if count else None
    patch = json.dumps({"status": {"capacity": {"nvidia.com/gpu": value}}})
    kubectl("patch", "node", realnode.NODE_NAME, "--subresource=status", "--type=merge", "-p", patch)
    if count:
        kubectl("label", "node", realnode.NODE_NAME, f"nvidia.com/gpu.product={GPU_PRODUCT}", "--overwrite")
    else:
        kubectl("label", "node", realnode.NODE_NAME, "nvidia.com/gpu.product-", check=False)


def run(p7_tries: int, p8_tries: int) -> dict[str, Any]:
    why = realnode.cannot_run_reason()
    if why or not realnode.present():
        reason = why or "the cluster has no real node (make cluster-up)"
        say(f"P7/P8 skipped: {reason}")
        return {"skipped": reason}
    pushed = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", realnode.REGISTRY, "--json",
         "fake-llm", "ollama"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fake_llm = json.loads(pushed.stdout)["fake-llm"]["reference"]
    crd = REPO / "crds" / "llmservices.llmstage.io.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    run_id = uuid.uuid4().hex[:5]
    log = REPO / ".cluster" / "logs" / f"bench-realnode-operator-{run_id}.log"
    operator = Operator([f"brn-{run_id}-*"], log).start()
    result: dict[str, Any] = {}
    try:
        tries = [p7_try(run_id, i) for i in range(p7_tries)]
        totals = [t["total"] for t in tries]
        result["p7"] = {
            "tries": tries,
            "p50_s": pct(totals, 50),
            "p95_s": pct(totals, 95),
            "target_p50_s": P7_TARGET_P50,
            "ready_to_answer_p50_s": pct([t["total"] - t["ready"] for t in tries], 50),
            "loaded_to_ready_p50_s": pct([t["ready"] - t["model_loaded"] for t in tries], 50),
        }
        advertise_gpus(2)
        try:
            p8 = [p8_try(run_id, i, fake_llm) for i in range(p8_tries)]
        finally:
            advertise_gpus(0)
        result["p8"] = {"tries_s": p8, "p50_s": pct(p8, 50), "p95_s": pct(p8, 95)}
    finally:
        operator.stop()
    p7 = result["p7"]
    say(
        f"P7 apply -> first answer through the Service: p50 {p7['p50_s']:.1f} s, p95 {p7['p95_s']:.1f} s "
        f"(target p50 <= {P7_TARGET_P50:.0f} s: {'met' if p7['p50_s'] <= P7_TARGET_P50 else 'NOT met'}); "
        f"model loaded -> pod Ready p50 {p7['loaded_to_ready_p50_s']:.1f} s, "
        f"Ready -> answer p50 {p7['ready_to_answer_p50_s']:.1f} s"
    )
    p8r = result["p8"]
    say(f"P8 promotion -> every endpoint on vLLM: p50 {p8r['p50_s']:.1f} s, p95 {p8r['p95_s']:.1f} s")
    return result


def verdicts(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """P7/P8 rows of bench.run's table: (id, what, figure, target, met)."""
    if "skipped" in result:
        return [("P7", "real node", "skipped", result["skipped"], "")]
    rows = []
    if "p7" in result:
        p7 = result["p7"]
        rows.append(
            (
                "P7",
                f"apply -> first answer via the Service p50 / p95 ({len(p7['tries'])} tries, real node)",
                f"{p7['p50_s']:.1f} / {p7['p95_s']:.1f} s",
                f"p50 <= {P7_TARGET_P50:.0f} s",
                "yes" if p7["p50_s"] <= P7_TARGET_P50 else "NO",
            )
        )
        rows.append(
            ("P7", "model loaded -> pod Ready p50", f"{p7['loaded_to_ready_p50_s']:.1f} s", "~2 s", "")
        )
    if "p8" in result:
        p8 = result["p8"]
        rows.append(
            (
                "P8",
                f"promotion -> every endpoint on vLLM p50 / p95 ({len(p8['tries_s'])} tries)",
                f"{p8['p50_s']:.1f} / {p8['p95_s']:.1f} s",
                "(info)",
                "",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p7", type=int, default=10, help="P7 tries (default %(default)s)")
    ap.add_argument("--p8", type=int, default=3, help="P8 tries (default %(default)s)")
    args = ap.parse_args(argv)
    result = run(args.p7, args.p8)
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "p7"}
            | {"p7": {k: v for k, v in result.get("p7", {}).items() if k != "tries"}},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
