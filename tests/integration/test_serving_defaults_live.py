"""The install's serving defaults on the local cluster: an operator started with --defaults FILE
(what the chart mounts) renders every serving pod with them, and the API server accepts the pods
and the PodMonitor they shape. Also the GPU capability check: a T4 service with bfloat16 is
Stalled, InvalidSpec, naming the field.

The PodMonitor CRD comes from the Prometheus Operator's Go module (the file its release manifests
are built from) and is removed again at the end: other tests rely on the API server not knowing
the kind (test_render_dryrun.py). The test's operator watches a namespace of its own, outside the
session operator's prefix, and is started after the CRD exists (it looks for it at start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from llmstage.resolve.gateway import DEFAULT_GATEWAY_IMAGE
from llmstage.resolve.ollama import DEFAULT_OLLAMA_IMAGE
from llmstage.resolve.vllm import DEFAULT_VLLM_IMAGE

from testkit import OperatorProcess, wait_until
from testkit.chart import create_namespace, delete_namespaces
from testkit.services import API_KEY_SECRET, LLMServices

PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
POD_MONITOR_CRD = "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DEFAULTS = """
imageRegistry: registry.internal:5000/dockerhub
imagePullSecrets: [{name: mirror-pull}]
podLabels: {sidecar.istio.io/inject: "false"}
podAnnotations: {logs.example.com/ship: "true"}
scheduling:
  priorityClassName: llm-serving
gpuScheduling:
  runtimeClassName: nvidia-test
  tolerations: [{key: gpu-pool, operator: Exists, effect: NoSchedule}]
podSecurityContext: {platformAssignsIds: true}
podMonitor: {labels: {release: kube-prometheus-stack}}
"""


def pod_monitor_crd_file() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain is needed to fetch the PodMonitor CRD from its Go module")
    res = subprocess.run(
        [go, "mod", "download", "-json", PROMETHEUS_OPERATOR_MODULE],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    return Path(json.loads(res.stdout)["Dir"]) / POD_MONITOR_CRD


@pytest.fixture(scope="module")
def pod_monitor_crd(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "--server-side", "-f", str(pod_monitor_crd_file()))
    kubectl("wait", "--for=condition=Established", "crd/podmonitors.monitoring.coreos.com", "--timeout=60s")
    yield
    kubectl("delete", "crd", "podmonitors.monitoring.coreos.com", "--ignore-not-found")


@pytest.fixture
def platform(kubectl: Kubectl) -> Iterator[None]:
    """The cluster-scoped objects the defaults name: a PriorityClass and a RuntimeClass."""
    manifest = """
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: llm-serving}
value: 1000
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia-test}
handler: nvidia
"""
    kubectl("apply", "-f", "-", stdin=manifest)
    yield
    kubectl("delete", "priorityclass", "llm-serving", "--ignore-not-found")
    kubectl("delete", "runtimeclass", "nvidia-test", "--ignore-not-found")


@pytest.fixture
def own_ns(kubeconfig: Path, namespace_prefix: str) -> Iterator[str]:
    # "d" instead of the session's "t": the session operator (namespace_prefix*) stays out.
    name = create_namespace(kubeconfig, f"d{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    yield name
    delete_namespaces(kubeconfig, [name])


@pytest.fixture
def own_operator(
    kubeconfig: Path, own_ns: str, tmp_path: Path, pod_monitor_crd: None, platform: None
) -> Iterator[OperatorProcess]:
    defaults = tmp_path / "serving-defaults.yaml"
    defaults.write_text(DEFAULTS)
    proc = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", "--namespace", own_ns, "--defaults", str(defaults)
    ).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log(), proc.log()[-5000:]


def test_every_serving_pod_gets_the_install_defaults(
    api_client: client.ApiClient, own_ns: str, own_operator: OperatorProcess
) -> None:
    services = LLMServices(api_client, own_ns)
    services.create_api_key_secret()
    services.create(
        "chat",
        stage="production",
        replicas=1,
        resources={"gpu": {"count": 1, "product": "NVIDIA-L4"}},
        vllm={"apiKeySecretRef": {"name": API_KEY_SECRET}},
        pod={"labels": {"team": "search"}},
    )
    services.create("dev", stage="dev")
    apps = client.AppsV1Api(api_client)
    # Ready: the pods were created (RuntimeClass and PriorityClass exist) and scheduled with the
    # GPU pool's toleration.
    services.wait_condition("chat", "Ready", timeout=120)
    services.wait_condition("dev", "Ready", timeout=120)

    vllm = apps.read_namespaced_deployment("chat-vllm", own_ns).spec.template
    assert vllm.metadata.labels["team"] == "search"
    assert vllm.metadata.labels["sidecar.istio.io/inject"] == "false"
    assert vllm.metadata.annotations["logs.example.com/ship"] == "true"
    spec = vllm.spec
    assert spec.runtime_class_name == "nvidia-test" and spec.priority_class_name == "llm-serving"
    assert [s.name for s in spec.image_pull_secrets] == ["mirror-pull"]
    assert [t.key for t in spec.tolerations] == ["gpu-pool", "nvidia.com/gpu"]
    security = spec.security_context
    assert (security.run_as_user, security.run_as_group, security.fs_group) == (None, None, None)
    assert security.run_as_non_root is True
    mirror = "registry.internal:5000/dockerhub/"
    for container in spec.containers + (spec.init_containers or []):
        # Every image through the mirror, the pods' nginx gateway too.
        pinned = DEFAULT_GATEWAY_IMAGE if container.name == "gateway" else DEFAULT_VLLM_IMAGE
        assert container.image == mirror + pinned, container.name

    ollama = apps.read_namespaced_deployment("dev-ollama", own_ns).spec.template.spec
    assert ollama.runtime_class_name is None  # GPU scheduling only for pods with GPUs
    assert ollama.priority_class_name == "llm-serving"
    assert ollama.containers[0].image == mirror + DEFAULT_OLLAMA_IMAGE

    monitor = wait_until(
        lambda: client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", own_ns, "podmonitors", "chat-vllm"
        ),
        timeout=30,
        what="the PodMonitor",
    )
    labels = monitor["metadata"]["labels"]
    assert (
        labels["release"] == "kube-prometheus-stack" and labels["app.kubernetes.io/managed-by"] == "llmstage"
    )


def test_bf16_on_a_t4_is_invalid_spec_naming_the_field(
    api_client: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    services = LLMServices(api_client, namespace)
    services.create(
        "t4",
        stage="production",
        resources={"gpu": {"count": 1, "product": "Tesla-T4"}},
        vllm={"apiKeySecretRef": {"name": API_KEY_SECRET}, "dtype": "bfloat16"},
    )
    stalled = services.wait_condition("t4", "Stalled", timeout=60)
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("spec.vllm.dtype: bfloat16 needs compute capability 8.0")
    apps = client.AppsV1Api(api_client)
    assert apps.list_namespaced_deployment(namespace).items == []  # nothing that would crash-loop
