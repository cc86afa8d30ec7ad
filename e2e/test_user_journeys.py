"""What a platform team does with llmstage, step by step, with kubectl and the repository's
examples: one namespace per stage, in-place promotion, the 70B tensor-parallel example, a
mistake that stalls, and the apply-time warnings.

Every step is a `kubectl` command a user would type (the admin kubeconfig is "the user"); the
operator is the one the chart installed (see conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import testkit.user
from e2e.runtimes import CLIENT_IMAGE, CONTAINERS_RUN, WHY_NOT, for_this_cluster
from testkit import wait_until
from testkit.chart import REPO, ChartRelease, kubectl

EXAMPLES = REPO / "examples"
NAME, MODEL = "llama31-8b", "llama3.1:8b"


class User(testkit.user.User):
    """The e2e user: the shared kubectl user plus the repository's examples."""

    def wait_ready(
        self, name: str, ns: str, runtime: str, timeout: float = 0, interval: float = 0.5
    ) -> dict[str, Any]:
        # Real pods pull a model and load it: a longer wait than for kwok's instant pods.
        return super().wait_ready(name, ns, runtime, timeout or (300 if CONTAINERS_RUN else 120), interval)

    def apply_example(self, file: str, ns: str) -> str:
        """`kubectl apply -n NS -f examples/FILE`, with what this cluster can run (runtimes.py)."""
        if not CONTAINERS_RUN:
            res = kubectl(self.kubeconfig, "apply", "-n", ns, "-f", str(EXAMPLES / file))
        else:
            doc = for_this_cluster(yaml.safe_load((EXAMPLES / file).read_text()))
            res = kubectl(self.kubeconfig, "apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))
        return res.stdout + res.stderr

    def create_secrets_for_production(self, ns: str, api_key_secret: str) -> None:
        """The commands in the production example's header."""
        self.kubectl(
            "create", "secret", "generic", api_key_secret, "-n", ns, "--from-literal=api-key=e2e-key"
        )
        self.kubectl("create", "secret", "generic", "hf-token", "-n", ns, "--from-literal=token=hf_e2e")


def load_client_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("client_openai", EXAMPLES / "client_openai.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def user(kubeconfig: Path, installed: ChartRelease) -> User:
    return User(kubeconfig)


def check_service_endpoint(user: User, ns: str, runtime: str) -> dict[str, Any]:
    """What a client relies on: the URL in status, a Service on port 8000 behind it, ready pods of
    the stage's runtime behind the Service, and the model name it must send."""
    status = user.get("llmservice", NAME, ns)["status"]
    assert status["endpoint"] == f"http://{NAME}.{ns}.svc:8000/v1"
    assert status["servedModelName"] == MODEL
    service = user.get("service", NAME, ns)
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    assert service["spec"]["selector"]["llmstage.io/runtime"] == runtime
    pods = user.ready_endpoints(NAME, ns)
    assert pods and all(p.startswith(f"{NAME}-{runtime}-") for p in pods), pods
    assert status["readyReplicas"] >= 1
    return status


def test_each_stage_in_its_own_namespace_serves_the_same_model_name_at_the_same_port(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    dev, staging, production = new_namespace("dev"), new_namespace("staging"), new_namespace("prod")
    user.create_secrets_for_production(production, "llama31-8b-api-key")
    for file, ns in (
        ("llama31-8b-dev.yaml", dev),
        ("llama31-8b-staging.yaml", staging),
        ("llama31-8b-production.yaml", production),
    ):
        user.apply_example(file, ns)

    for ns, stage, runtime in (
        (dev, "dev", "ollama"),
        (staging, "staging", "ollama"),
        (production, "production", "vllm"),
    ):
        status = user.wait_ready(NAME, ns, runtime)
        assert status["stage"] == stage
        check_service_endpoint(user, ns, runtime)
        assert user.condition(NAME, ns, "RuntimeSelected")["status"] == "True"
        assert user.condition(NAME, ns, "Stalled").get("status") != "True"

    # The client example builds exactly these URLs: only the namespace differs between stages.
    example = load_client_example()
    for ns in (dev, staging, production):
        assert example.base_url(ns) == user.get("llmservice", NAME, ns)["status"]["endpoint"]

    # Production: vLLM on the H100 node the example asks for, autoscaled, with a disruption budget.
    # Ready needs one ready endpoint; the HPA's second replica may not be placed yet: wait for it.
    def all_placed() -> list[dict[str, Any]] | None:
        items = json.loads(
            user.kubectl("get", "pods", "-n", production, "-l", "llmstage.io/runtime=vllm", "-o", "json")
        )["items"]
        return items if items and all(p["spec"].get("nodeName") for p in items) else None

    pods = wait_until(all_placed, timeout=60, interval=0.5, what="every vLLM pod placed on a node")
    for pod in pods:
        node = json.loads(user.kubectl("get", "node", pod["spec"]["nodeName"], "-o", "json"))
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert user.get("horizontalpodautoscaler", f"{NAME}-vllm", production)["spec"]["minReplicas"] >= 1
    assert user.get("poddisruptionbudget", f"{NAME}-vllm", production)
    # `kubectl get llms` shows the columns a user reads.
    table = user.kubectl("get", "llms", NAME, "-n", production)
    assert "production" in table and "vllm" in table and MODEL in table and "True" in table


def test_promotion_in_place_keeps_the_url_and_never_empties_the_service(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    ns = new_namespace("promote")
    user.create_secrets_for_production(ns, "llama31-8b-api-key")
    user.apply_example("llama31-8b-dev.yaml", ns)
    status = user.wait_ready(NAME, ns, "ollama")
    cluster_ip = user.get("service", NAME, ns)["spec"]["clusterIP"]
    if CONTAINERS_RUN:
        start_cutover_client(user, ns, status)

    empty: list[float] = []
    polls = 0
    stop = threading.Event()

    def watch_endpoints() -> None:
        nonlocal polls
        while not stop.is_set():
            if not user.ready_endpoints(NAME, ns):
                empty.append(time.monotonic())
            polls += 1
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_endpoints, daemon=True)
    watcher.start()
    try:
        user.apply_example("llama31-8b-staging.yaml", ns)
        assert user.wait_ready(NAME, ns, "ollama")["stage"] == "staging"
        # The watcher samples from before the cutover to after it (waited for, not assumed).
        wait_until(lambda: polls >= 1, timeout=30, what="a first endpoint sample before the cutover")
        user.apply_example("llama31-8b-production.yaml", ns)
        status = user.wait_ready(NAME, ns, "vllm", timeout=180)
        assert status["stage"] == "production"
        wait_until(
            lambda: (
                kubectl(
                    user.kubeconfig, "get", "deployment", f"{NAME}-ollama", "-n", ns, check=False
                ).returncode
                != 0
            ),
            timeout=60,
            what="the Ollama Deployment removed after the cutover",
        )
        after = polls
        wait_until(lambda: polls > after, timeout=30, what="an endpoint sample after the cutover")
    finally:
        stop.set()
        watcher.join()
    assert empty == [], f"the Service had no ready endpoint {len(empty)} times during the promotion"
    check_service_endpoint(user, ns, "vllm")
    assert user.get("service", NAME, ns)["spec"]["clusterIP"] == cluster_ip
    if CONTAINERS_RUN:
        counts = cutover_client_summary(user, ns)
        assert counts["failed"] == 0, counts
        assert counts["ollama"] > 0 and counts["vllm"] >= 20, counts


def start_cutover_client(user: User, ns: str, status: dict[str, Any]) -> None:
    """tests/realnode/cutover_client.py in a pod: requests back to back through the Service, with
    the OpenAI SDK's default retries, until 20 answers came from vLLM; once it has Ollama's first."""
    args = ["python3", "/app/cutover_client.py", status["endpoint"], status["servedModelName"],
            "--max-seconds", "600"]  # fmt: skip
    key = {"secretKeyRef": {"name": "llama31-8b-api-key", "key": "api-key"}}
    user.start_pod(ns, "cutover-client", CLIENT_IMAGE, args, [{"name": "LLM_API_KEY", "valueFrom": key}])
    wait_until(
        lambda: '"runtime": "ollama"' in user.kubectl("logs", "cutover-client", "-n", ns, check=False),
        timeout=180,
        interval=1,
        what="the client's first answer from Ollama",
    )


def cutover_client_summary(user: User, ns: str) -> dict[str, Any]:
    def done() -> str | None:
        phase = user.get("pod", "cutover-client", ns)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, timeout=600, interval=1, what="the client to finish") == "Succeeded"
    summary = json.loads(user.kubectl("logs", "cutover-client", "-n", ns).strip().splitlines()[-1])
    counts: dict[str, Any] = summary["summary"]
    print(
        f"cutover: {counts['requests']} requests in {counts['seconds']} s through the Service, "
        f"{counts['failed']} failed, {counts['ollama']} answered by Ollama, {counts['vllm']} by the vLLM "
        f"stand-in, {counts['retries']} sent again by the OpenAI client after a broken connection"
    )
    return counts


def test_70b_example_gets_four_gpus_and_tensor_parallel_four(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    ns = new_namespace("70b")
    user.create_secrets_for_production(ns, "llama31-70b-api-key")
    user.apply_example("llama31-70b-tensor-parallel.yaml", ns)
    user.wait_ready("llama31-70b", ns, "vllm", timeout=180)
    assert user.condition("llama31-70b", ns, "ModelFits")["status"] == "True"
    pods = json.loads(user.kubectl("get", "pods", "-n", ns, "-l", "llmstage.io/runtime=vllm", "-o", "json"))[
        "items"
    ]
    assert pods
    for pod in pods:
        server = pod["spec"]["containers"][0]
        assert server["resources"]["limits"]["nvidia.com/gpu"] == "4"
        assert "--tensor-parallel-size=4" in " ".join(server.get("args") or []).replace(" 4", "=4")


def test_a_gpu_the_cluster_lacks_stalls_with_reason_unschedulable(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    ns = new_namespace("stall")
    user.create_secrets_for_production(ns, "llama31-8b-api-key")
    doc = yaml.safe_load((EXAMPLES / "llama31-8b-production.yaml").read_text())
    doc["spec"]["resources"]["gpu"]["product"] = "NVIDIA-B200"
    user.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))

    def stalled() -> dict[str, Any] | None:
        cond = user.condition(NAME, ns, "Stalled")
        return cond if cond.get("status") == "True" else None

    cond = wait_until(stalled, timeout=90, interval=0.5, what="Stalled=True")
    assert cond["reason"] == "Unschedulable", cond
    assert user.condition(NAME, ns, "Ready")["status"] == "False"
    events = user.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={NAME}")
    assert "Unschedulable" in events


def test_apply_warns_about_ollama_in_production_and_accepts_it(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    ns = new_namespace("warn")
    doc = yaml.safe_load((EXAMPLES / "llama31-8b-dev.yaml").read_text())
    doc["spec"].update({"stage": "production", "runtime": "ollama"})
    res = kubectl(user.kubeconfig, "apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))
    assert "Warning:" in res.stderr and "roduction" in res.stderr, res.stderr
    assert user.get("llmservice", NAME, ns)["spec"]["runtime"] == "ollama"


def ask_from_a_pod(user: User, ns: str, pod: str, question: str, api_key: str = "") -> str:
    """examples/client_openai.py in a pod (the client image): the URL and model name a user's
    application uses, through the Service's DNS name."""
    env = [{"name": "LLM_API_KEY", "value": api_key}] if api_key else []
    args = [
        "python3",
        "/app/client_openai.py",
        "--namespace",
        ns,
        "--service",
        NAME,
        "--model",
        MODEL,
        question,
    ]
    return user.run_pod(ns, pod, CLIENT_IMAGE, args, env).strip()


@pytest.mark.skipif(not CONTAINERS_RUN, reason=WHY_NOT)
def test_a_client_pod_gets_answers_from_every_stage_at_its_endpoint(
    user: User, new_namespace: Callable[[str], str]
) -> None:
    """Dev answers for real (Ollama and the model, through the gateway and the Service); production
    through the same code, its API key and the vLLM stand-in (no GPU here)."""
    dev, production = new_namespace("dev"), new_namespace("prod")
    user.create_secrets_for_production(production, "llama31-8b-api-key")
    user.apply_example("llama31-8b-dev.yaml", dev)
    user.apply_example("llama31-8b-production.yaml", production)
    question = "In one sentence, what is the sky's colour?"
    user.wait_ready(NAME, dev, "ollama", timeout=300)
    answer = ask_from_a_pod(user, dev, "client", question)
    print(f"dev ({dev}): a client pod asked {question!r} through http://{NAME}.{dev}.svc:8000/v1 "
          f"and Ollama answered: {answer!r}")  # fmt: skip
    assert len(answer.split()) >= 3 and not answer.startswith("fake"), answer
    user.wait_ready(NAME, production, "vllm", timeout=300)
    answer = ask_from_a_pod(user, production, "client", question, api_key="e2e-key")
    print(f"production ({production}): the stand-in for vLLM answered: {answer!r}")
    assert answer == f"fake vllm reply to: {question}", answer
    # Without the key the gateway refuses, as vLLM would.
    ask = f"python3 /app/client_openai.py --namespace {production} --service {NAME} --model {MODEL} hi"
    refused = user.run_pod(production, "no-key", CLIENT_IMAGE, ["sh", "-c", f"{ask} 2>&1; echo rc=$?"])
    assert "rc=1" in refused and "401" in refused, refused
