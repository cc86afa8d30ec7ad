"""A dev LLMService of a real model on the real node: pulled from the local registry, started
through its rendered probes as its rendered non-root user, and answering an OpenAI client in
another pod through the Service's DNS name. Nothing here is simulated (see conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from testkit import wait_until
from testkit.realnode import MODEL, NODE, REGISTRY_IN_CLUSTER, Cluster, dev_service

QUESTION = "In one sentence, what is the sky's colour?"
# Letters and digits: the characters the gateway accepts in a key (render/gateway.py).
OLLAMA_KEY = "ollama-test-key-0123456789"


def ask_from_a_pod(
    cluster: Cluster, ns: str, image: str, service: str, model: str, pod: str = "client"
) -> str:
    """examples/client_openai.py in a pod: the URL a user's application uses."""
    return cluster.run_pod(
        ns,
        pod,
        image,
        [
            "python3",
            "/app/client_openai.py",
            "--namespace",
            ns,
            "--service",
            service,
            "--model",
            model,
            QUESTION,
        ],
    )


def route_check(
    cluster: Cluster,
    ns: str,
    image: str,
    service: str,
    checks: dict[str, int],
    env: list[dict[str, Any]] | None = None,
) -> dict[str, int]:
    """The status a client pod gets for each METHOD:PATH[:key] through the Service (route_check.py)."""
    base = f"http://{service}.{ns}.svc:8000"
    out = cluster.run_pod(ns, "routes", image, ["python3", "/app/route_check.py", base, MODEL, *checks], env)
    return dict(json.loads(out.strip().splitlines()[-1]))


def server_pod(cluster: Cluster, ns: str, name: str) -> dict:  # type: ignore[type-arg]
    pods = [
        p
        for p in cluster.pods(ns, f"app.kubernetes.io/instance={name}")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_the_real_node_is_ready_with_the_pinned_kubelet(cluster: Cluster) -> None:
    """`kubectl get nodes -o wide`: the real node beside the kwok nodes, with its kubelet's version."""
    wide = cluster.kubectl("get", "nodes", "-o", "wide")
    print(wide)
    line = next(row for row in wide.splitlines() if row.startswith(NODE + " "))
    assert " Ready " in line and "v1.37.2" in line and "containerd://2.4.2" in line, line


def test_a_dev_service_of_a_real_model_answers_a_client_pod_through_its_service(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    ns = new_namespace("dev")
    cluster.apply(ns, dev_service("smol", images))
    status = cluster.wait_ready("smol", ns, "ollama")
    assert status["endpoint"] == f"http://smol.{ns}.svc:8000/v1"
    assert status["servedModelName"] == MODEL

    pod = server_pod(cluster, ns, "smol")
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == NODE
    server = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "server")
    assert server["ready"] and server["restartCount"] == 0, server
    # The rendered user and a read-only root filesystem, as the container sees them.
    assert cluster.kubectl("exec", name, "-n", ns, "-c", "server", "--", "id", "-u").strip() == "1000"
    denied = cluster.kubectl(
        "exec", name, "-n", ns, "-c", "server", "--", "sh", "-c", "touch /probe 2>&1; echo rc=$?", check=False
    )
    assert "Read-only file system" in denied and "rc=1" in denied, denied

    pull_log = cluster.kubectl("logs", name, "-n", ns, "-c", "pull-model")
    print(pull_log)
    assert REGISTRY_IN_CLUSTER in pull_log, pull_log

    answer = ask_from_a_pod(cluster, ns, images["client"], "smol", status["servedModelName"])
    print(f"client in {ns} asked {QUESTION!r} and got: {answer.strip()!r}")
    assert len(answer.split()) >= 3 and "failed" not in answer, answer
    server_log = cluster.kubectl("logs", name, "-n", ns, "-c", "server")
    assert "/v1/chat/completions" in server_log, server_log[-2000:]

    # Only the inference API passes the pod's gateway: Ollama's management routes, which pull,
    # push, create, copy and delete models without authentication, get 404 through the Service.
    checks = {
        "POST:/v1/chat/completions": 200,
        "POST:/api/chat": 200,
        "GET:/api/tags": 200,
        "POST:/api/pull": 404,
        "POST:/api/push": 404,
        "POST:/api/create": 404,
        "POST:/api/copy": 404,
        "DELETE:/api/delete": 404,
    }
    assert route_check(cluster, ns, images["client"], "smol", checks) == checks
    # The delete reached nothing: the model is still there and answers.
    again = ask_from_a_pod(cluster, ns, images["client"], "smol", MODEL, pod="after-routes")
    assert len(again.split()) >= 3 and "failed" not in again, again


def test_an_ollama_api_key_is_required_on_every_route_but_the_probes(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    """spec.ollama.apiKeySecretRef: the same `Authorization: Bearer KEY` as production's vLLM, checked
    by the gateway in front of the real Ollama, so clients use one credential in every stage."""
    ns = new_namespace("ollama-key")
    key = f"--from-literal=api-key={OLLAMA_KEY}"
    cluster.kubectl("create", "secret", "generic", "chat-key", "-n", ns, key)
    cluster.apply(ns, dev_service("keyed", images, ollama={"apiKeySecretRef": {"name": "chat-key"}}))
    cluster.wait_ready("keyed", ns, "ollama")
    checks = {
        "POST:/v1/chat/completions:key": 200,
        "POST:/api/chat:key": 200,
        "POST:/v1/chat/completions": 401,
        "POST:/api/generate": 401,
        "GET:/v1/models": 401,
        "GET:/api/tags": 200,  # the probes' routes stay open: they list, never run a model
        "POST:/api/pull:key": 404,  # the key never opens the management API
        "DELETE:/api/delete:key": 404,
    }
    env = [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "chat-key", "key": "api-key"}}}]
    assert route_check(cluster, ns, images["client"], "keyed", checks, env) == checks


def test_a_served_model_name_other_than_the_ollama_tag_answers_too(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    ns = new_namespace("alias")
    cluster.apply(ns, dev_service("chat", images, servedModelName="team-chat"))
    status = cluster.wait_ready("chat", ns, "ollama")
    assert status["servedModelName"] == "team-chat"
    answer = ask_from_a_pod(cluster, ns, images["client"], "chat", "team-chat")
    print(f"model 'team-chat' (Ollama tag {MODEL}) answered: {answer.strip()!r}")
    assert len(answer.split()) >= 3 and "failed" not in answer, answer


def test_two_replicas_pull_into_one_cache_at_once_and_both_become_ready(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    ns = new_namespace("shared")
    cluster.apply(ns, dev_service("pair", images, replicas=2, cache={"accessMode": "ReadWriteMany"}))
    cluster.wait_ready("pair", ns, "ollama")

    def both_ready() -> list[dict] | None:  # type: ignore[type-arg]
        pods = cluster.pods(ns, "app.kubernetes.io/instance=pair")
        ready = [
            p
            for p in pods
            if all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": False}])
        ]
        return ready if len(ready) == 2 else None

    pods = wait_until(both_ready, timeout=300, interval=1, what="both replicas Ready")
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for p in pods
        for v in p["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert len(claims) == 1, claims
    # Both started pulling before either had the model: the pulls overlapped.
    starts = sorted(
        next(c for c in p["status"]["initContainerStatuses"] if c["name"] == "pull-model")["state"][
            "terminated"
        ]["startedAt"]
        for p in pods
    )
    print(f"pull-model started at {starts}")
    for p in pods:
        print(cluster.kubectl("logs", p["metadata"]["name"], "-n", ns, "-c", "pull-model"))


def test_two_replicas_without_storage_settings_pull_into_a_claim_each(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    """The default for several pods (docs/storage.md): a ReadWriteOnce claim per pod, so each pod
    pulls the model into its own volume (hack/volumes.py provisions them like any claim)."""
    ns = new_namespace("perpod")
    cluster.apply(ns, dev_service("twins", images, replicas=2))
    cluster.wait_ready("twins", ns, "ollama")

    def both_ready() -> list[dict] | None:  # type: ignore[type-arg]
        pods = cluster.pods(ns, "app.kubernetes.io/instance=twins")
        ready = [
            p
            for p in pods
            if all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": False}])
        ]
        return ready if len(ready) == 2 else None

    pods = wait_until(both_ready, timeout=300, interval=1, what="both replicas Ready")
    for p in pods:
        (volume,) = [v for v in p["spec"]["volumes"] if v["name"] == "model-cache"]
        assert "ephemeral" in volume, volume
        log = cluster.kubectl("logs", p["metadata"]["name"], "-n", ns, "-c", "pull-model")
        assert "pulling" in log, log  # its own empty claim: every pod pulls


def test_a_killed_container_and_a_deleted_pod_come_back_and_serve(
    cluster: Cluster, new_namespace: Callable[[str], str], images: dict[str, str]
) -> None:
    import sys

    from testkit.realnode import node as realnode

    ns = new_namespace("heal")
    cluster.apply(ns, dev_service("heal", images))
    cluster.wait_ready("heal", ns, "ollama")
    pod = server_pod(cluster, ns, "heal")
    name = pod["metadata"]["name"]
    container = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "server")["containerID"]
    # SIGKILL the server's process from the host, as the OOM killer or a crash would.
    info = json.loads(realnode.crictl("inspect", container.split("://", 1)[1]).stdout)
    pid = info["info"]["pid"]
    sys.stdout.write(f"killing the Ollama server of {name} (host pid {pid})\n")
    import os

    os.kill(pid, 9)

    def restarted() -> bool:
        status = cluster.get("pod", name, ns)["status"]
        server = next(c for c in status["containerStatuses"] if c["name"] == "server")
        return server["restartCount"] >= 1 and server["ready"]

    wait_until(restarted, timeout=300, interval=1, what="the killed server restarted and Ready")
    answer = ask_from_a_pod(cluster, ns, images["client"], "heal", MODEL, pod="after-kill")
    assert len(answer.split()) >= 3, answer

    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false")

    def replaced() -> str | None:
        pods = [
            p for p in cluster.pods(ns, "app.kubernetes.io/instance=heal") if p["metadata"]["name"] != name
        ]
        ready = [
            p
            for p in pods
            if all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": False}])
        ]
        return ready[0]["metadata"]["name"] if ready else None

    wait_until(replaced, timeout=300, interval=1, what="a new pod Ready after the delete")
    cluster.wait_ready("heal", ns, "ollama")
    answer = ask_from_a_pod(cluster, ns, images["client"], "heal", MODEL, pod="after-delete")
    assert len(answer.split()) >= 3, answer
