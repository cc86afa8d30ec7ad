"""The generated CRD on a real API server: CEL and schema rejections, examples, defaults, kubectl UX.

Every object of testkit/api_cases.py that pydantic rejects offline must be rejected here too, with
a message naming the field; every example and valid object must be accepted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit import wait_until
from testkit.api_cases import API_KEY, GPU_H100, INVALID, VALID, Invalid, service

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "llmservices.llmstage.io.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def crd(kubectl) -> dict[str, Any]:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")
    # kubectl explain and discovery read the published OpenAPI, which lags Established a little.
    wait_until(
        lambda: kubectl("explain", "llmservice.spec.stage", check=False).returncode == 0,
        timeout=60,
        interval=0.5,
        what="the LLMService schema in the published OpenAPI",
    )
    return json.loads(kubectl("get", "crd", "llmservices.llmstage.io", "-o", "json").stdout)


@pytest.fixture(scope="module")
def dry_run_namespace(api_client, crd) -> Iterator[str]:
    """One namespace for the dry-run cases: nothing is persisted, so they need not be isolated."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = f"t-admission-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def create(kubectl, namespace: str, body: dict[str, Any], *, dry_run: bool = True):
    args = ["create", "-n", namespace, "-o", "json", "-f", "-"]
    if dry_run:
        args.insert(1, "--dry-run=server")
    return kubectl(*args, check=False, stdin=json.dumps(body))


def test_crd_is_established_and_structural(crd: dict[str, Any]) -> None:
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    assert "NonStructuralSchema" not in conditions
    assert crd["status"]["acceptedNames"]["shortNames"] == ["llms", "llmsvc"]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_objects_are_rejected(kubectl, dry_run_namespace: str, case: Invalid) -> None:
    res = create(kubectl, dry_run_namespace, case.body)
    assert res.returncode != 0, f"{case.id} was accepted:\n{res.stdout}"
    assert case.message in res.stderr, res.stderr


def test_at_least_fifteen_rejections() -> None:
    assert len(INVALID) >= 15


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_objects_are_accepted(kubectl, dry_run_namespace: str, name: str) -> None:
    res = create(kubectl, dry_run_namespace, VALID[name])
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted(kubectl, crd, namespace: str, path: Path) -> None:
    res = kubectl("apply", "--server-side", "-n", namespace, "-f", str(path), check=False)
    assert res.returncode == 0, res.stderr
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    stored = json.loads(kubectl("get", "llmservice", name, "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["model"]["name"] == yaml.safe_load(path.read_text())["spec"]["model"]["name"]


def test_there_is_an_example_per_stage() -> None:
    stages = {yaml.safe_load(p.read_text())["spec"].get("stage", "dev") for p in EXAMPLES}
    assert stages == {"dev", "staging", "production"}


def test_server_side_defaults(kubectl, crd, namespace: str) -> None:
    minimal = create(kubectl, namespace, service("minimal"), dry_run=False)
    assert minimal.returncode == 0, minimal.stderr
    spec = json.loads(minimal.stdout)["spec"]
    assert (spec["stage"], spec["runtime"], spec["expectedConcurrency"]) == ("dev", "auto", 1)
    # Stage-dependent values stay unset so the operator can tell them from user values.
    assert not {"replicas", "autoscaling", "resources", "servedModelName"} & set(spec)

    nested = service(
        "nested",
        stage="production",
        resources={"gpu": {"product": "NVIDIA-L4"}},
        vllm={"apiKeySecretRef": {"name": "key"}},
        autoscaling={"maxReplicas": 4},
        huggingFaceTokenSecretRef={"name": "hf"},
        scheduling={"tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
    )
    res = create(kubectl, namespace, nested, dry_run=False)
    assert res.returncode == 0, res.stderr
    spec = json.loads(res.stdout)["spec"]
    assert spec["resources"]["gpu"] == {"count": 1, "product": "NVIDIA-L4", "resourceName": "nvidia.com/gpu"}
    assert spec["vllm"] == {
        "apiKeySecretRef": {"name": "key", "key": "api-key"},
        "gpuMemoryUtilization": 0.9,
        "dtype": "auto",
    }
    assert spec["autoscaling"] == {
        "autoscaler": "hpa",  # existing specs keep their HorizontalPodAutoscaler
        "maxReplicas": 4,
        "metric": "auto",
        "queueMetricName": "vllm:num_requests_waiting",
    }
    assert spec["huggingFaceTokenSecretRef"] == {"name": "hf", "key": "token"}
    assert spec["scheduling"]["tolerations"][0]["operator"] == "Equal"


def test_kubectl_explain_documents_the_fields(kubectl, crd) -> None:
    def explain(path: str) -> str:
        return " ".join(kubectl("explain", path).stdout.split())  # explain wraps lines

    spec = explain("llmservice.spec")
    assert "Desired state of an LLMService" in spec
    for field in ("expectedConcurrency", "servedModelName", "autoscaling", "huggingFaceTokenSecretRef"):
        assert field in spec
    assert "more than 4 expected users" in spec
    gpu_util = explain("llms.spec.vllm.gpuMemoryUtilization")
    assert "--gpu-memory-utilization" in gpu_util
    status = explain("llmservice.status.cutover.phase")
    assert "Starting, Switching, Draining, Complete or Failed" in status


def _status_patch(kubectl, namespace: str, name: str, status: dict[str, Any]):
    return kubectl(
        "patch",
        "llms",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        check=False,
    )


def test_kubectl_get_shows_the_columns(kubectl, crd, namespace: str) -> None:
    body = service("chat", stage="production", resources=GPU_H100, vllm=API_KEY)
    assert create(kubectl, namespace, body, dry_run=False).returncode == 0
    status = {
        "observedGeneration": 1,
        "runtime": "vllm",
        "stage": "production",
        "replicas": 2,
        "readyReplicas": 2,
        "selector": "app.kubernetes.io/instance=chat,llmstage.io/runtime=vllm",
        "endpoint": f"http://chat.{namespace}.svc:8000/v1",
        "servedModelName": "llama3.1:8b",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Serving",
                "message": "2/2 replicas ready",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            },
        ],
    }

    def shown() -> list[list[str]] | None:
        # An operator running against this cluster may rewrite the status: retry until the table
        # shows what was written (the columns are what is under test, not who wrote the status).
        assert _status_patch(kubectl, namespace, "chat", status).returncode == 0
        table = [line.split() for line in kubectl("get", "llms", "-n", namespace).stdout.splitlines()]
        wide = [
            line.split()
            for line in kubectl("get", "llmsvc", "-n", namespace, "-o", "wide").stdout.splitlines()
        ]
        ok = table[1][:6] == ["chat", "production", "vllm", "llama3.1:8b", "True", "2"]
        return [table[0], wide[0], wide[1]] if ok and wide[1][-1] == status["endpoint"] else None

    header, wide_header, _ = wait_until(shown, timeout=30, interval=0.5, what="the status in kubectl get")
    assert header == ["NAME", "STAGE", "RUNTIME", "MODEL", "READY", "REPLICAS", "AGE"]
    assert wide_header == [*header, "ENDPOINT"]


def test_status_is_kept_not_pruned_and_validated(kubectl, crd, namespace: str) -> None:
    assert create(kubectl, namespace, service("cut"), dry_run=False).returncode == 0
    cutover = {
        "phase": "Switching",
        "from": "ollama",
        "to": "vllm",
        "message": "vLLM ready; moving the Service",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }

    def kept() -> bool:
        assert _status_patch(kubectl, namespace, "cut", {"cutover": cutover}).returncode == 0
        stored = json.loads(kubectl("get", "llms", "cut", "-n", namespace, "-o", "json").stdout)
        return bool(stored["status"].get("cutover") == cutover)

    wait_until(kept, timeout=30, interval=0.5, what="status.cutover stored as written")
    bad = _status_patch(kubectl, namespace, "cut", {"runtime": "tgi"})
    assert bad.returncode != 0 and "status.runtime" in bad.stderr
    incomplete = _status_patch(
        kubectl, namespace, "cut", {"conditions": [{"type": "Ready", "status": "True"}]}
    )
    assert incomplete.returncode != 0 and "status.conditions[0].reason" in incomplete.stderr


def test_kubectl_scale_without_autoscaling(kubectl, crd, namespace: str) -> None:
    assert create(kubectl, namespace, service("fixed"), dry_run=False).returncode == 0
    kubectl("scale", "llms/fixed", "-n", namespace, "--replicas=3")
    stored = json.loads(kubectl("get", "llms", "fixed", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 3
    scale = json.loads(
        kubectl("get", "llms", "fixed", "-n", namespace, "--subresource=scale", "-o", "json").stdout
    )
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3


def test_kubectl_scale_is_refused_while_autoscaling_owns_replicas(kubectl, crd, namespace: str) -> None:
    body = service("auto", stage="staging", autoscaling={"maxReplicas": 3})
    assert create(kubectl, namespace, body, dry_run=False).returncode == 0
    res = kubectl("scale", "llms/auto", "-n", namespace, "--replicas=5", check=False)
    assert res.returncode != 0
    assert "spec.replicas and spec.autoscaling are mutually exclusive" in res.stderr
