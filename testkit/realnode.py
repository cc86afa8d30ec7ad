"""Helpers of the real-node tier (tests/realnode): the node's facts from hack/realnode/, kubectl
as a user types it, and the LLMService the tests serve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from testkit.chart import REPO
from testkit.user import User

sys.path.insert(0, str(REPO / "hack"))
import realnode as node
from clusterlib import pid_of

NODE = node.NODE_NAME
REGISTRY = node.REGISTRY  # where this machine pushes
REGISTRY_IN_CLUSTER = node.REGISTRY_SERVICE  # what pods pull from themselves
SCHEDULING: dict[str, Any] = {
    "nodeSelector": {node.NODE_LABEL[0]: node.NODE_LABEL[1]},
    "tolerations": [{"key": node.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
MODEL = "smollm2:135m"
# Where hack/vllm-cpu/make_model.py puts the model and the LoRA adapter in the smollm2-hf image.
HF_MODEL_PATH = "/models/smollm2-135m-instruct"
LORA_PATH = "/models/smollm2-135m-lora"
# vLLM on the 2-CPU node: eager (a start in about a minute instead of four), a context the KV
# cache holds, one OpenMP thread (the CPU request less the API server's core).
VLLM_ON_THE_NODE: dict[str, Any] = {"enforceEager": True, "maxModelLen": 2048}


def images_push(*names: str) -> dict[str, dict[str, str]]:
    """Build (cached) and push images to the local registry: name -> reference, repository, tag."""
    res = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", REGISTRY, "--json", *names],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"hack/images.py push failed:\n{res.stderr[-3000:]}"
    return json.loads(res.stdout)


# What a client pod gets from HOST:PORT: "answered <HTTP status line>" as soon as a GET of PATH is
# answered; otherwise what the last try within 30 s got: "refused" (the TCP connect was refused:
# kube-router REJECTs what no policy admits, icmp-port-unreachable), "timeout" (no answer at all,
# as where an implementation drops instead) or "error <why>". A refusal is tried again: a new
# client pod's address reaches the enforcer's ipsets a moment after the pod starts.
REACH = """
import socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 30
while True:
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
            s.settimeout(60)
            print("answered", s.recv(256).split(b"\\r\\n")[0].decode(), flush=True)
            break
    except ConnectionRefusedError:
        outcome = "refused"
    except TimeoutError:
        outcome = "timeout"
    except OSError as err:
        outcome = f"error {err}"
    if time.monotonic() > deadline:
        print(outcome, flush=True)
        break
    time.sleep(1)
"""


def netpol_enforced() -> bool:
    """Whether the real node enforces NetworkPolicies: kube-router runs (hack/realnode/netpol.py).
    False only where the cluster was started with LLMSTAGE_NETPOL=0 and this session says so too;
    otherwise a kube-router that is not running fails the test."""
    if os.environ.get("LLMSTAGE_NETPOL", "1") == "0":
        return False
    assert pid_of("kube-router"), (
        "kube-router is not running on the real node: `make cluster-up` starts it (log: "
        ".cluster/logs/kube-router.log); LLMSTAGE_NETPOL=0 runs the tier without enforcement"
    )
    return True


def policy_in_force(ns: str, pod: str, policy: str) -> bool:
    """kube-router has put `pod` behind NetworkPolicy `policy`: in the host's filter table, the
    pod's firewall chain runs through the policy's chain (comments of kube-router v2.1.0,
    pkg/controllers/netpol/pod.go)."""
    assert shutil.which("iptables-save"), "iptables-save is missing (hack/realnode installs iptables)"
    rules = subprocess.run(
        ["iptables-save", "-t", "filter"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pod_chains = {
        line.rsplit(" -j ", 1)[1].strip()
        for line in rules
        if f"destined to POD name:{pod} namespace: {ns} to chain" in line
    }
    return any(
        line.startswith(f"-A {chain} ") and f'run through nw policy {policy}"' in line
        for chain in pod_chains
        for line in rules
    )


class Cluster(User):
    """The shared kubectl user, plus pods that run to completion on the real node."""

    def wait_ready(
        self, name: str, ns: str, runtime: str, timeout: float = 300, interval: float = 1.0
    ) -> dict[str, Any]:
        # Real pods pull and load a model: a longer default wait than on kwok nodes.
        return super().wait_ready(name, ns, runtime, timeout, interval)

    def start_pod(
        self,
        ns: str,
        name: str,
        image: str,
        args: list[str],
        env: list[dict[str, Any]] | None = None,
        volumes: dict[str, dict[str, Any]] | None = None,
        scheduling: dict[str, Any] | None = None,
    ) -> None:
        """A pod on the real node that runs `args` in the background (User.start_pod); User.run_pod
        starts its pods here, so they land on the real node too."""
        super().start_pod(ns, name, image, args, env, volumes, scheduling or SCHEDULING)

    def reach(self, ns: str, pod: str, image: str, host: str, port: int, path: str) -> str:
        """What a pod in `ns` gets from http://HOST:PORT/PATH (REACH): "answered HTTP/1.1 200 OK",
        "refused", "timeout" or "error ..."."""
        return self.run_pod(ns, pod, image, ["python3", "-c", REACH, host, str(port), path]).strip()


def dev_service(name: str, images: dict[str, str], **spec: Any) -> dict[str, Any]:
    """A dev LLMService of the small model on the real node, pulling from the local registry."""
    base: dict[str, Any] = {
        "stage": "dev",
        "model": {"name": MODEL},
        "ollama": {"registry": {"host": REGISTRY_IN_CLUSTER, "insecure": True}},
        # The real node has 2 CPUs; the defaults are sized for a real model on a real server.
        # 2Gi is what ModelFits asks for (weights, an 8192-token KV cache and Ollama's overhead).
        "resources": {"cpu": "500m", "memory": "2Gi"},
        "cache": {"storageClassName": "real-local", "size": "1Gi"},
        "scheduling": SCHEDULING,
        # Used once promoted to production (vLLM's CPU image): where its weights come from (Ollama
        # pulls the tag above) and how it runs on this node.
        "vllm": dict(VLLM_ON_THE_NODE),
    }
    base["model"] = {
        **base["model"],
        "source": {"oci": {"image": images["smollm2-hf"], "path": HF_MODEL_PATH}},
    }
    for key, value in spec.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": base,
    }


def production_vllm(name: str, images: dict[str, str], key_secret: str, **spec: Any) -> dict[str, Any]:
    """A production LLMService on vLLM's CPU image on the real node, its API key from `key_secret`."""
    service = dev_service(
        name,
        images,
        stage="production",
        runtime="vllm",
        replicas=1,
        expectedConcurrency=2,
        vllm={"apiKeySecretRef": {"name": key_secret}},
    )
    # One core (the node has two, and Ollama, the operator and CoreDNS run there too); the memory
    # is the fit's (weights, KV cache and vLLM's processes), not the Ollama-sized default above.
    service["spec"]["resources"] = {"gpu": {"count": 0}, "cpu": "1"}
    for key, value in spec.items():
        base = service["spec"]
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return service
