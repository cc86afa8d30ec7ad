"""`llmstage status` against the local cluster with the operator running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client

from testkit import OperatorProcess, wait_until

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"


def status(kubeconfig: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "status", "--kubeconfig", str(kubeconfig), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(api: client.ApiClient, namespace: str, name: str, **spec: object) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def test_table_shows_ready_services_and_the_problems_of_others(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path, operator: OperatorProcess
) -> None:
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "k"}, "stringData": {"api-key": "x"}}
    )
    create(api_client, namespace, "chat")
    create(
        api_client,
        namespace,
        "broken",
        stage="production",
        replicas=1,
        model={"name": "no-such-model:1b"},
        vllm={"apiKeySecretRef": {"name": "k"}},
    )

    def settled() -> str | None:
        res = status(kubeconfig, "-n", namespace)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        chat = next((line for line in lines if line.startswith("chat ")), "")
        broken = next((line for line in lines if line.startswith("broken ")), "")
        return res.stdout if "True 1/1" in chat and "Stalled=True" in broken else None

    out = wait_until(settled, timeout=60, interval=0.5, what="chat Ready and broken Stalled in the table")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STAGE", "RUNTIME", "READY", "ENDPOINT", "BENCHMARK", "PROBLEMS"]
    chat = next(line for line in lines if line.startswith("chat "))
    assert chat.split()[1:3] == ["dev", "ollama"]
    assert f"http://chat.{namespace}.svc:8000/v1" in chat and chat.rstrip().endswith(" -")
    broken = next(line for line in lines if line.startswith("broken "))
    assert "Stalled=True InvalidSpec: spec.model.huggingFaceId" in broken

    as_json = status(kubeconfig, "-n", namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List" and sorted(o["metadata"]["name"] for o in listed["items"]) == [
        "broken",
        "chat",
    ]
    assert all(o["status"]["conditions"] for o in listed["items"])
    as_yaml = yaml.safe_load(status(kubeconfig, "-n", namespace, "-o", "yaml").stdout)
    assert sorted(o["metadata"]["name"] for o in as_yaml["items"]) == ["broken", "chat"]

    everywhere = status(kubeconfig, "-A")
    assert everywhere.returncode == 0
    assert everywhere.stdout.startswith("NAMESPACE ")
    assert any(line.startswith(f"{namespace} ") for line in everywhere.stdout.splitlines())


def test_an_empty_namespace_says_so(kubeconfig: Path, namespace: str, crd_installed: None) -> None:
    res = status(kubeconfig, "-n", namespace)
    assert res.returncode == 0
    assert res.stdout == ""
    assert res.stderr.strip() == f"No LLMServices found in namespace {namespace}."
    empty = status(kubeconfig, "-n", namespace, "-o", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [],
    }
