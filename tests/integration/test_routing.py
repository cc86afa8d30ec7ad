"""spec.routing on the local cluster, against the pinned CRDs of the Gateway API Inference
Extension (v1.6.2: InferencePool) and of Gateway API (v1.6.3: HTTPRoute), from their Go modules.

The rendered objects are dry-run against those CRDs (schema and CEL), the operator applies and
prunes them, and the extension's own endpoint picker of that release (cmd/lwepp, built as a tool
group) runs against a rendered pool and finds exactly its pods: a multi-node group's leader, never
a worker. Not run: a Gateway implementation (Envoy Gateway, kgateway, ...) and so no request
through the pool; the picker is not asked for a pick (that is the proxy's ext-proc call).

The CRDs are installed by the module fixture and removed at the end; the session's operator is
started before them and so renders no routing, which is why these tests run their own operator.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from llmstage.render import render

from testkit import OperatorProcess, wait_until
from testkit.chart import create_namespace, delete_namespaces
from testkit.dryrun import contained, server_side_dry_run
from testkit.render_fixtures import CASES
from testkit.services import LLMServices

REPO = Path(__file__).resolve().parents[2]
EXTENSION, GATEWAY_API = (
    "sigs.k8s.io/gateway-api-inference-extension@v1.6.2",
    "sigs.k8s.io/gateway-api@v1.6.3",
)
CRDS = [
    (EXTENSION, "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"),
    (GATEWAY_API, "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"),
]
CRD_NAMES = ["inferencepools.inference.networking.k8s.io", "httproutes.gateway.networking.k8s.io"]
LWEPP = REPO / ".tools" / "bin" / "lwepp"
H100 = "NVIDIA-H100-80GB-HBM3"
ROUTING = {"gatewayRef": {"name": "inference-gateway", "namespace": "gateways"}}

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def crd_file(module: str, path: str) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the Go toolchain is needed to fetch the CRDs from their Go modules (make tools needs it too)"
        )
    res = subprocess.run(
        [go, "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    return Path(json.loads(res.stdout)["Dir"]) / path


@pytest.fixture(scope="module")
def routing_crds(kubectl: Kubectl) -> Iterator[None]:
    for module, path in CRDS:
        kubectl("apply", "--server-side", "-f", str(crd_file(module, path)))
    for name in CRD_NAMES:
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    yield
    kubectl("delete", "crd", *CRD_NAMES, "--ignore-not-found", "--wait=false")


@pytest.fixture
def own_ns(kubeconfig: Path, crd_installed: None, namespace_prefix: str) -> Iterator[str]:
    # "r" instead of the session's "t": the session operator (namespace_prefix*) stays out; this
    # test's operator starts after the CRDs exist (it looks them up at start).
    name = create_namespace(kubeconfig, f"r{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    yield name
    delete_namespaces(kubeconfig, [name])


@pytest.fixture
def own_operator(
    kubeconfig: Path, routing_crds: None, own_ns: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, tmp_path / "operator.log", "--namespace", own_ns).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log(), proc.log()[-5000:]


def routing_objects(namespace: str) -> list[dict[str, Any]]:
    resolved, facts = CASES["production-vllm-routing"]
    objects = render(replace(resolved, namespace=namespace), facts)
    return [o for o in objects if o["kind"] in ("InferencePool", "HTTPRoute")]


def test_the_pinned_crds_accept_the_rendered_pool_and_route(
    routing_crds: None, namespace: str, kubectl: Kubectl
) -> None:
    objects = routing_objects(namespace)
    assert [o["kind"] for o in objects] == ["InferencePool", "HTTPRoute"]
    returned = server_side_dry_run(kubectl, objects)
    for sent, back in zip(objects, returned, strict=True):
        assert contained(sent, back) == [], sent["kind"]


def test_the_pinned_crds_are_enforced(routing_crds: None, namespace: str, kubectl: Kubectl) -> None:
    """The dry-run above means something: the extension's CEL and schema reject what is wrong."""
    pool, route = routing_objects(namespace)
    del pool["spec"]["endpointPickerRef"]["port"]  # "port is required when kind is 'Service'"
    res = kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(pool), check=False
    )
    assert res.returncode != 0 and "port is required" in res.stderr
    route["spec"]["rules"][0]["backendRefs"][0]["kind"] = "Inference Pool"
    res = kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(route), check=False
    )
    assert res.returncode != 0 and "backendRefs" in res.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_operator_routes_a_group_leader_through_a_pool_the_endpoint_picker_sees(
    kubeconfig: Path,
    api_client: client.ApiClient,
    own_ns: str,
    own_operator: OperatorProcess,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    services = LLMServices(api_client, own_ns)
    services.create_api_key_secret()
    services.create(
        "big",
        stage="production",
        model={"name": "llama3.1:405b"},
        replicas=1,
        resources={"gpu": {"count": 8, "product": H100}},
        vllm={"apiKeySecretRef": {"name": "llm-api-key"}},
        routing=ROUTING,
    )
    services.wait_condition("big", "Ready", timeout=90)
    stalled = services.condition("big", "Stalled")
    assert stalled is not None and stalled["status"] == "False"
    pool = json.loads(kubectl("get", "inferencepool", "big", "-n", own_ns, "-o", "json").stdout)
    route = json.loads(kubectl("get", "httproute", "big", "-n", own_ns, "-o", "json").stdout)
    assert pool["metadata"]["ownerReferences"][0]["kind"] == "LLMService"
    assert pool["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    gateway = {"name": "inference-gateway", "namespace": "gateways"}
    assert route["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        **gateway,
    }

    # The extension's endpoint picker, as a process (it only needs the API server): it loads the
    # pool and the pods it selects. No proxy asks it for a pick.
    assert LWEPP.exists(), f"{LWEPP} is missing: run `make tools`"
    log = tmp_path / "lwepp.log"
    with open(log, "wb") as out:
        picker = subprocess.Popen(
            [
                str(LWEPP),
                "--pool-name=big",
                f"--pool-namespace={own_ns}",
                f"--grpc-port={free_port()}",
                f"--grpc-health-port={free_port()}",
                f"--metrics-port={free_port()}",
                # "Pod added" is logged at V(2) under the reconciler's V(2) logger.
                "--zap-log-level=4",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
    leader = '"name":"big-vllm-0"'

    def added() -> list[str]:
        return [line for line in log.read_text().splitlines() if "Pod added" in line]

    try:
        wait_until(
            lambda: any(leader in line for line in added()), timeout=60, what="the picker adding the leader"
        )
        assert picker.poll() is None, log.read_text()[-3000:]
    finally:
        picker.terminate()
        picker.wait(timeout=30)
    # The pool's one endpoint is the group's leader: its worker (no API server) never joins.
    assert len(added()) == 1, log.read_text()[-3000:]
    assert "big-vllm-0-1" not in log.read_text()

    # Without spec.routing both objects are pruned; the Service stays.
    services.patch_spec("big", {"routing": None})
    wait_until(
        lambda: kubectl("get", "inferencepools,httproutes", "-n", own_ns, "-o", "name").stdout.strip() == "",
        timeout=60,
        what="the pool and the route pruned",
    )
    assert kubectl("get", "service", "big", "-n", own_ns, check=False).returncode == 0
