"""spec.autoscaling.autoscaler keda on the local cluster, against KEDA's real CRD.

The ScaledObject CRD comes from the pinned KEDA release (its Go module, the file KEDA's own
release manifests are built from), so the rendered ScaledObjects are checked by KEDA's schema
and CEL rules, not by a copy of ours. The test bed runs no KEDA controller or webhook: these tests
check what the operator writes and reports, not KEDA's scaling.

The first test runs before the CRD is installed (the module fixture installs it on first use).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from llmstage.render import render

from testkit import OperatorProcess, wait_until
from testkit.chart import create_namespace, delete_namespaces
from testkit.dryrun import contained, server_side_dry_run
from testkit.render_fixtures import CASES

KEDA_MODULE = "github.com/kedacore/keda/v2@v2.20.2"
KEDA_CRD = "config/crd/bases/keda.sh_scaledobjects.yaml"
GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def keda_crd_file() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the Go toolchain is needed to fetch KEDA's CRD from its Go module (make tools needs it too)"
        )
    res = subprocess.run(
        [go, "mod", "download", "-json", KEDA_MODULE],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    return Path(json.loads(res.stdout)["Dir"]) / KEDA_CRD


@pytest.fixture(scope="module")
def keda_crd(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "--server-side", "-f", str(keda_crd_file()))
    kubectl("wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s")
    yield
    kubectl("delete", "crd", "scaledobjects.keda.sh", "--ignore-not-found", "--wait=false")


@pytest.fixture
def own_ns(kubeconfig: Path, crd_installed: None, namespace_prefix: str) -> Iterator[str]:
    # "k" instead of the session's "t": the session operator (namespace_prefix*) stays out; this
    # test's operator is started after the KEDA CRD exists or is gone (it checks at start-up).
    name = create_namespace(kubeconfig, f"k{namespace_prefix[1:]}{uuid.uuid4().hex[:6]}")
    yield name
    delete_namespaces(kubeconfig, [name])


@pytest.fixture
def own_operator(kubeconfig: Path, own_ns: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, tmp_path / "operator.log", "--namespace", own_ns).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log(), proc.log()[-5000:]


def llm_service(name: str, autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"stage": "staging", "model": {"name": "smollm2:135m"}, "autoscaling": autoscaling},
    }


def condition(api: client.ApiClient, ns: str, name: str, type_: str) -> dict[str, Any] | None:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def names(kubectl: Kubectl, kind: str, ns: str) -> list[str]:
    out = kubectl("get", kind, "-n", ns, "-o", "name", check=False)
    return out.stdout.split() if out.returncode == 0 else []


def create_keda_service(
    api: client.CustomObjectsApi, kubectl: Kubectl, ns: str, name: str, *, max_replicas: int
) -> None:
    """A dev LLMService scaled by KEDA, and the wait for the operator's ScaledObject (the only one
    in the namespace)."""
    api.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, llm_service(name, {"autoscaler": "keda", "maxReplicas": max_replicas})
    )
    wait_until(
        lambda: names(kubectl, "scaledobjects.keda.sh", ns) == [f"scaledobject.keda.sh/{name}-ollama"],
        timeout=60,
        what=f"{name}'s ScaledObject",
    )


def test_without_keda_the_service_is_stalled_naming_what_to_install(
    kubectl: Kubectl, api_client: client.ApiClient, own_ns: str, own_operator: OperatorProcess
) -> None:
    assert kubectl("get", "crd", "scaledobjects.keda.sh", check=False).returncode != 0, "KEDA's CRD exists"
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, own_ns, PLURAL, llm_service("chat", {"autoscaler": "keda"})
    )
    stalled = wait_until(
        lambda: (c := condition(api_client, own_ns, "chat", "Stalled")) and c["status"] == "True" and c,
        timeout=60,
        what="Stalled=True",
    )
    assert stalled["reason"] == "KEDANotInstalled"
    assert "install KEDA" in stalled["message"] and "scaledobjects.keda.sh" in stalled["message"]
    # The rest is there: the model is served, only not autoscaled; no HPA pretends otherwise.
    wait_until(lambda: names(kubectl, "deployments", own_ns) == ["deployment.apps/chat-ollama"], timeout=60)
    assert names(kubectl, "horizontalpodautoscalers", own_ns) == []
    events = kubectl("get", "events", "-n", own_ns, "-o", "json").stdout
    assert "KEDANotInstalled" in events


@pytest.mark.parametrize(
    "case", sorted(c for c, (r, _) in CASES.items() if r.autoscaling and r.autoscaling.autoscaler == "keda")
)
def test_kedas_crd_accepts_every_rendered_scaled_object(
    case: str, keda_crd: None, namespace: str, kubectl: Kubectl
) -> None:
    resolved, facts = CASES[case]
    (scaled,) = [
        o for o in render(replace(resolved, namespace=namespace), facts) if o["kind"] == "ScaledObject"
    ]
    (returned,) = server_side_dry_run(kubectl, [scaled])
    assert contained(scaled, returned) == []


def test_kedas_crd_is_enforced(keda_crd: None, namespace: str, kubectl: Kubectl) -> None:
    """The dry-run above means something: KEDA's schema rejects what it does not define."""
    resolved, facts = CASES["production-vllm-keda"]
    (scaled,) = [
        o for o in render(replace(resolved, namespace=namespace), facts) if o["kind"] == "ScaledObject"
    ]
    scaled["spec"]["triggers"] = []
    res = kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(scaled), check=False
    )
    assert res.returncode != 0 and "triggers" in res.stderr
    scaled["spec"]["minReplicaCounts"] = 1
    res = kubectl(
        "apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-",
        stdin=json.dumps(scaled), check=False,
    )  # fmt: skip
    assert res.returncode != 0 and "minReplicaCounts" in res.stderr


def test_with_keda_the_operator_applies_a_scaled_object_and_switches_back_to_an_hpa(
    keda_crd: None, kubectl: Kubectl, api_client: client.ApiClient, own_ns: str, own_operator: OperatorProcess
) -> None:
    api = client.CustomObjectsApi(api_client)
    create_keda_service(api, kubectl, own_ns, "chat", max_replicas=3)
    scaled = json.loads(kubectl("get", "scaledobject", "chat-ollama", "-n", own_ns, "-o", "json").stdout)
    assert scaled["metadata"]["ownerReferences"][0]["kind"] == "LLMService"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 3)
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["cpu"]
    assert names(kubectl, "horizontalpodautoscalers", own_ns) == []
    stalled = condition(api_client, own_ns, "chat", "Stalled")
    assert stalled is not None and stalled["status"] == "False"

    # Back to the HPA: the ScaledObject is pruned (it is watched), then the HPA is applied.
    api.patch_namespaced_custom_object(
        GROUP, VERSION, own_ns, PLURAL, "chat", {"spec": {"autoscaling": {"autoscaler": "hpa"}}}
    )
    wait_until(
        lambda: (
            names(kubectl, "horizontalpodautoscalers", own_ns)
            == ["horizontalpodautoscaler.autoscaling/chat-ollama"]
        ),
        timeout=60,
        what="the HPA",
    )
    assert names(kubectl, "scaledobjects.keda.sh", own_ns) == []

    # And to KEDA again: the HPA goes first, then the ScaledObject comes.
    api.patch_namespaced_custom_object(
        GROUP, VERSION, own_ns, PLURAL, "chat", {"spec": {"autoscaling": {"autoscaler": "keda"}}}
    )
    wait_until(
        lambda: (
            names(kubectl, "scaledobjects.keda.sh", own_ns) == ["scaledobject.keda.sh/chat-ollama"]
            and names(kubectl, "horizontalpodautoscalers", own_ns) == []
        ),
        timeout=60,
        what="the ScaledObject back and no HPA",
    )


@pytest.mark.parametrize(
    "example",
    sorted(
        p
        for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")
        if "keda" in p.read_text()
    ),
    ids=lambda p: p.name,
)
def test_the_keda_examples_render_scaled_objects_kedas_crd_accepts(
    example: Path, keda_crd: None, namespace: str, kubectl: Kubectl
) -> None:
    from llmstage.api.models import LLMService
    from llmstage.resolve import resolve

    doc = yaml.safe_load(example.read_text())
    doc["metadata"]["namespace"] = namespace
    objects = render(resolve(LLMService.model_validate(doc)))
    (scaled,) = [o for o in objects if o["kind"] == "ScaledObject"]
    (returned,) = server_side_dry_run(kubectl, [scaled])
    assert contained(scaled, returned) == []


def test_uninstalling_keda_does_not_stop_the_operator(
    keda_crd: None,
    kubectl: Kubectl,
    api_client: client.ApiClient,
    kubeconfig: Path,
    own_ns: str,
    tmp_path: Path,
) -> None:
    """kopf treats a watcher's 404 as fatal; with an exact namespace it does not observe CRDs, so
    without controller/kopfwatch.py deleting KEDA's CRD stopped the operator every time (the API
    server ends the ScaledObject watch, kopf reconnects, 404). Last in the module: it deletes the
    CRD the module's fixture installed, and puts it back."""
    # The operator resolves its kinds by API discovery once at start: wait until KEDA's is served.
    wait_until(
        lambda: "scaledobjects" in kubectl("api-resources", "--api-group=keda.sh", "-o", "name").stdout,
        timeout=60,
        what="scaledobjects.keda.sh in API discovery",
    )
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", "--namespace", own_ns).start()
    api = client.CustomObjectsApi(api_client)
    try:
        create_keda_service(api, kubectl, own_ns, "before", max_replicas=2)
        kubectl("delete", "crd", "scaledobjects.keda.sh", "--wait=true", "--timeout=60s")
        wait_until(
            lambda: "not served any more" in operator.log(),
            timeout=60,
            what="the operator noticing the ScaledObject watch is gone",
        )
        # Still working: a new service is reconciled (its HPA applied) after the CRD went away.
        api.create_namespaced_custom_object(
            GROUP, VERSION, own_ns, PLURAL, llm_service("after", {"autoscaler": "hpa", "maxReplicas": 2})
        )
        wait_until(
            lambda: (
                "horizontalpodautoscaler.autoscaling/after-ollama"
                in names(kubectl, "horizontalpodautoscalers", own_ns)
            ),
            timeout=60,
            what="the HPA of a service created after KEDA went away",
        )
        assert operator.alive(), operator.log()[-3000:]
    finally:
        operator.stop()
        kubectl("apply", "--server-side", "-f", str(keda_crd_file()))
        kubectl("wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s")
