"""P7 and P8 on the local cluster's real node: what a user waits for, with real containers.

    python -m bench.realnode            # P7 over 10 tries, P8 over 3
    python -m bench.realnode --p7 3 --p8 1

P7: `kubectl apply` of a dev LLMService of SmolLM2-135M (examples/smollm2-dev-local-registry.yaml)
-> the first chat completion answered through its Service, with the Ollama image on the node. The
target (p50 <= 3 s) is for the model in the cache: the tries apply the service again over one claim
that holds it (spec.cache.claimName). A third as many cold tries use a fresh namespace and so a
fresh claim: the init container pulls the 98 MB model from the cluster's registry. The completion is
asked from this machine at the Service's ClusterIP (kube-proxy's rules route it as for a pod; the
DNS name resolves only inside pods), every 100 ms. Each try also reports when the pod was
scheduled, the image pulls, when each init step ended, when the server started, when the model
was loaded (the runtime's own log line) and when the pod turned Ready.

P8: a served dev service promoted to production in place -> every ready endpoint of its Service
on the new runtime, then its first answer: the real vLLM 0.32.0 on its CPU backend (hack/vllm-cpu,
the image containerd's docker.io mirror serves for vllm/vllm-openai-cpu), one CPU, eager mode,
the weights from the smollm2-hf image mounted as an image volume. The first try includes the
image's pull (3.5 GB compressed) unless the node has it; each try is split into its steps.

The operator is `llmstage run` on this machine (bench/operator_proc.py, started by
testkit/launcher.py), watching only the bench's namespaces. Prints p50/p95 beside the targets
and returns the figures to bench.run.
"""

from __future__ import annotations

import argparse
import json
import socket
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
P7_TARGET_P50 = 3.0
API_KEY = "bench-key"
INSTANCE = "app.kubernetes.io/instance"
# Lines the runtimes log, timestamped by the kubelet: where a start spends its time.
OLLAMA_MARKERS = {"model_loaded": "is loaded"}  # llama runner: "llama runner started in ..."
# vLLM 0.32.0's own log lines (v1/worker/cpu_model_runner.py, model_loader/default_loader.py, uvicorn).
VLLM_MARKERS = {
    "load_started": "Starting to load model",  # imports done, the engine core and its worker up
    "model_loaded": "Loading weights took",  # the weights are in memory
    "server_listening": "Application startup complete",  # KV cache, warm-up, then the API
}

sys.path.insert(0, str(REPO / "hack"))
import realnode  # noqa: E402  (hack/ is no package; standard library only)

from testkit.realnode import HF_MODEL_PATH, VLLM_ON_THE_NODE  # noqa: E402


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
        # A short connect timeout first: a SYN the NetworkPolicy enforcer drops (before it admits
        # a new pod) would otherwise hold the next try for the whole request timeout.
        socket.create_connection((cluster_ip, 8000), timeout=0.5).close()
        with urllib.request.urlopen(req, timeout=30) as r:
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
    """Cold: a fresh namespace, so a fresh cache claim; the init step pulls the model."""
    ns = f"brn-{run_id}-p7-{i}"
    kubectl("create", "namespace", ns)
    try:
        out = apply_until_answer(service_doc(ns))
        say(f"P7 cold try {i + 1}: {steps(out)}")
        return out
    finally:
        delete_namespace(ns)


def p7_warm_tries(run_id: str, tries: int) -> list[dict[str, float]]:
    """Warm (the P7 target): image on the node and model in the cache, as for a service applied
    again, or a new pod, where the claim already holds the model. One namespace, one claim of
    the user's (spec.cache.claimName, which outlives the LLMService); a first apply fills it."""
    ns = f"brn-{run_id}-p7warm"
    kubectl("create", "namespace", ns)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "real-local",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(claim))
    doc = service_doc(ns)
    doc["spec"]["cache"] = {"claimName": "models"}
    try:
        fill = apply_until_answer(doc)
        say(f"P7 warm: the claim filled ({steps(fill)})")
        delete_service(ns)
        out = []
        for i in range(tries):
            out.append(apply_until_answer(doc))
            say(f"P7 warm try {i + 1}: {steps(out[-1])}")
            delete_service(ns)
        return out
    finally:
        delete_namespace(ns)


def apply_until_answer(doc: dict[str, Any]) -> dict[str, float]:
    ns = doc["metadata"]["namespace"]
    started = time.time()
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    total = first_answer(ns, started)
    pod = json.loads(kubectl("get", "pods", "-n", ns, "-l", f"{INSTANCE}={NAME}", "-o", "json"))["items"][0]
    return {"total": total, **pod_timeline(ns, pod, started, OLLAMA_MARKERS)}


def steps(timeline: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in timeline.items())


def delete_service(ns: str) -> None:
    """Delete the LLMService and wait until its pods are gone (they hold the claim and CPU)."""
    kubectl("delete", "llmservice", NAME, "-n", ns, "--wait=true", "--timeout=300s")
    selector = f"{INSTANCE}={NAME}"
    kubectl("wait", "--for=delete", "pod", "-l", selector, "-n", ns, "--timeout=300s", check=False)


def delete_namespace(ns: str) -> None:
    """Delete and wait until it is gone: its terminating pods hold CPU the next try's pod needs
    on the 2-CPU node (Ollama's preStop sleep is 15 s), which showed as 10 s scheduling delays."""
    kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s", check=False)


def p8_try(run_id: str, i: int, model_image: str) -> dict[str, float]:
    ns = f"brn-{run_id}-p8-{i}"
    kubectl("create", "namespace", ns)
    kubectl("create", "secret", "generic", "bench-key", "-n", ns, f"--from-literal=api-key={API_KEY}")
    try:
        doc = service_doc(ns)
        # vLLM's weights: the Hugging Face format image in the registry (no Hub here), mounted as
        # an image volume; eager mode and a 2048-token context for the 2-CPU node (testkit/realnode).
        doc["spec"]["model"]["source"] = {"oci": {"image": model_image, "path": HF_MODEL_PATH}}
        doc["spec"]["vllm"] = dict(VLLM_ON_THE_NODE)
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
        first_answer(ns, time.time())
        # What `llmstage promote --to production --cpu --api-key-secret bench-key` writes, with one
        # CPU for vLLM (its CPU default is 4; the node has 2) and one replica.
        doc["spec"].update(stage="production", runtime="vllm")
        doc["spec"]["vllm"]["apiKeySecretRef"] = {"name": "bench-key"}
        doc["spec"]["resources"] = {"gpu": {"count": 0}, "cpu": "1"}
        doc["spec"]["replicas"] = 1  # production's default 2-8 do not fit on the 2-CPU node
        started = time.time()
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
        deadline = started + 900
        while time.time() < deadline:
            if endpoints_all_vllm(ns):
                switched = time.time() - started
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{ns}: the Service's endpoints not all on vLLM after 900 s")
        answered = first_answer(ns, started, api_key=API_KEY)
        selector = f"{INSTANCE}={NAME},llmstage.io/runtime=vllm"
        pod = json.loads(kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json"))["items"][0]
        out = {"total": switched, "first_answer": answered, **pod_timeline(ns, pod, started, VLLM_MARKERS)}
        say(f"P8 try {i + 1}: every ready endpoint on vLLM after {switched:.1f} s ({steps(out)})")
        return out
    finally:
        delete_namespace(ns)


def pod_timeline(ns: str, pod: dict[str, Any], started: float, markers: dict[str, str]) -> dict[str, float]:
    """Seconds from `started` to each step of a pod's start: scheduled, image pulls (from the
    kubelet's events), init steps, server start, the runtime's own log markers, Ready."""
    status = pod["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    out = {"scheduled": ts(conds["PodScheduled"]["lastTransitionTime"]) - started}
    involved = f"involvedObject.name={pod['metadata']['name']}"
    events = json.loads(kubectl("get", "events", "-n", ns, "--field-selector", involved, "-o", "json"))
    for event in events["items"]:
        if event.get("reason") == "Pulled" and "Successfully pulled" in event.get("message", ""):
            # "Successfully pulled image "X" in 56.1s (56.1s including waiting). Image size: ..."
            image = event["message"].split('"')[1].rsplit("/", 1)[-1].split(":")[0]
            took = event["message"].split(" in ", 1)[1].split("s", 1)[0]
            out[f"pull_{image}_s"] = parse_duration(took)
    for init in status.get("initContainerStatuses") or []:
        done = (init.get("state") or {}).get("terminated")
        if done:
            out[f"init_{init['name']}_done"] = ts(done["finishedAt"]) - started
    server = next(c for c in status["containerStatuses"] if c["name"] == "server")
    out["server_started"] = ts(server["state"]["running"]["startedAt"]) - started
    log = kubectl("logs", pod["metadata"]["name"], "-n", ns, "-c", "server", "--timestamps", check=False)
    for key, marker in markers.items():
        line = next((line for line in log.splitlines() if marker in line), "")
        out[key] = (ts(line.split()[0]) - started) if line else float("nan")
    out["ready"] = ts(conds["Ready"]["lastTransitionTime"]) - started
    return out


def parse_duration(text: str) -> float:
    """Go's time.Duration text as the kubelet prints it: "56.1", "1m2.5", "850ms" (the "s" cut)."""
    text = text.strip()
    if text.endswith("m") and text[:-1].replace(".", "").isdigit():  # "850m" from "850ms"
        return float(text[:-1]) / 1000
    minutes, _, seconds = text.rpartition("m")
    return (float(minutes) * 60 if minutes else 0.0) + float(seconds or 0)


def endpoints_all_vllm(ns: str) -> bool:
    slices = json.loads(
        kubectl("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={NAME}", "-o", "json")
    )["items"]
    ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
    return bool(ready) and all(
        e.get("targetRef", {}).get("name", "").startswith(f"{NAME}-vllm-") for e in ready
    )


def run(p7_tries: int, p8_tries: int) -> dict[str, Any]:
    why = realnode.cannot_run_reason()
    if why or not realnode.present():
        reason = why or "the cluster has no real node (make cluster-up)"
        say(f"P7/P8 skipped: {reason}")
        return {"skipped": reason}
    pushed = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", realnode.REGISTRY, "--json",
         "ollama", "vllm-cpu", "smollm2-hf"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    model_image = json.loads(pushed.stdout)["smollm2-hf"]["reference"]
    crd = REPO / "crds" / "llmservices.llmstage.io.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    run_id = uuid.uuid4().hex[:5]
    log = REPO / ".cluster" / "logs" / f"bench-realnode-operator-{run_id}.log"
    operator = Operator([f"brn-{run_id}-*"], log).start()
    result: dict[str, Any] = {}
    try:
        cold = [p7_try(run_id, i) for i in range(max(1, p7_tries // 3))]
        tries = p7_warm_tries(run_id, p7_tries)
        totals = [t["total"] for t in tries]
        result["p7"] = {
            "tries": tries,
            "cold_tries": cold,
            "p50_s": pct(totals, 50),
            "p95_s": pct(totals, 95),
            "cold_p50_s": pct([t["total"] for t in cold], 50),
            "target_p50_s": P7_TARGET_P50,
            "ready_to_answer_p50_s": pct([t["total"] - t["ready"] for t in tries], 50),
            "loaded_to_ready_p50_s": pct([t["ready"] - t["model_loaded"] for t in tries], 50),
            "server_started_p50_s": pct([t["server_started"] for t in tries], 50),
        }
        p8 = [p8_try(run_id, i, model_image) for i in range(p8_tries)]
        totals = [t["total"] for t in p8]
        result["p8"] = (
            {}
            if not p8
            else {
                "tries": p8,
                "p50_s": pct(totals, 50),
                "p95_s": pct(totals, 95),
                "server_to_ready_p50_s": pct([t["ready"] - t["server_started"] for t in p8], 50),
            }
        )
    finally:
        operator.stop()
    p7 = result["p7"]
    say(
        f"P7 apply -> first answer through the Service, model cached: p50 {p7['p50_s']:.1f} s, "
        f"p95 {p7['p95_s']:.1f} s "
        f"(target p50 <= {P7_TARGET_P50:.0f} s: {'met' if p7['p50_s'] <= P7_TARGET_P50 else 'NOT met'}); "
        f"model loaded -> pod Ready p50 {p7['loaded_to_ready_p50_s']:.1f} s, "
        f"Ready -> answer p50 {p7['ready_to_answer_p50_s']:.1f} s; with the model pulled into a new "
        f"claim: p50 {p7['cold_p50_s']:.1f} s"
    )
    p8r = result["p8"]
    if p8r:
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
                f"apply -> first answer via the Service, model cached, p50 / p95 ({len(p7['tries'])} tries)",
                f"{p7['p50_s']:.1f} / {p7['p95_s']:.1f} s",
                f"p50 <= {P7_TARGET_P50:.0f} s",
                "yes" if p7["p50_s"] <= P7_TARGET_P50 else "NO",
            )
        )
        rows.append(
            ("P7", "model loaded -> pod Ready p50", f"{p7['loaded_to_ready_p50_s']:.1f} s", "~1 s", "")
        )
        rows.append(
            (
                "P7",
                f"the same, model pulled into a new claim, p50 ({len(p7['cold_tries'])} tries)",
                f"{p7['cold_p50_s']:.1f} s",
                "(info)",
                "",
            )
        )
    if result.get("p8"):
        p8 = result["p8"]
        rows.append(
            (
                "P8",
                f"promotion -> every endpoint on vLLM (CPU) p50 / p95 ({len(p8['tries'])} tries)",
                f"{p8['p50_s']:.1f} / {p8['p95_s']:.1f} s",
                "(info)",
                "",
            )
        )
        rows.append(
            ("P8", "vLLM server start -> pod Ready p50", f"{p8['server_to_ready_p50_s']:.1f} s", "(info)", "")
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
            {k: v for k, v in result.items() if k not in ("p7", "p8")}
            | {p: {k: v for k, v in result.get(p, {}).items() if "tries" not in k} for p in ("p7", "p8")},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
