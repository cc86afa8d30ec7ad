"""Every pod every example renders is admitted by the real API server in a namespace that enforces
the `restricted` Pod Security Standard: created for real (kwok nodes run them; admission is what
is tested), not dry-run. The render fixtures' pods, including the oci source's image volume, are
checked the same way by test_render_dryrun.py (server dry-run)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from llmstage.api.models import LLMService
from llmstage.render import render_deployment
from llmstage.resolve import resolve

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.yaml"))
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_pod_is_admitted_under_restricted(
    example: Path, namespace: str, kubectl: Kubectl
) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    body = yaml.safe_load(example.read_text())
    body["metadata"]["namespace"] = namespace
    deployment = render_deployment(resolve(LLMService.from_object(body)))
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": deployment["metadata"]["name"], "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }
    # Cluster-scoped classes the test bed lacks: admission would refuse the pod for them alone.
    pod["spec"].pop("runtimeClassName", None)
    pod["spec"].pop("priorityClassName", None)
    if "serviceAccountName" in pod["spec"]:
        kubectl("create", "serviceaccount", pod["spec"]["serviceAccountName"], "-n", namespace)
    res = kubectl("create", "-f", "-", "-o", "json", check=False, stdin=json.dumps(pod))
    assert res.returncode == 0, res.stderr
    assert "PodSecurity" not in res.stderr, res.stderr
    created = json.loads(res.stdout)
    assert created["metadata"]["uid"]
    for container in created["spec"]["containers"] + created["spec"].get("initContainers", []):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
