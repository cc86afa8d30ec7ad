"""The recipes of docs/exposure.md are valid objects that point at what llmstage creates.

Every YAML block of the page is applied with a server-side dry run (strict field validation): the
Ingress against the API server's own schema, the Gateway and HTTPRoute against Gateway API's CRDs
from its Go module (installed for this module and removed afterwards). The namespaces of the
recipes are replaced by the test's own. No controller serves them here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.api.models import LLMService
from llmstage.render.desired import desired_objects
from llmstage.resolve import resolve

from testkit.dryrun import contained, server_side_dry_run

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "exposure.md"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api@v1.4.1"
GATEWAY_CRDS = ("gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_httproutes.yaml")
SERVICE = "llama31-8b"  # the LLMService of examples/llama31-8b-production.yaml, as the page uses it

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def recipes() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.DOTALL)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def gateway_crd_files() -> list[Path]:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain is needed to fetch Gateway API's CRDs from its Go module")
    res = subprocess.run(
        [go, "mod", "download", "-json", GATEWAY_API_MODULE],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    return [Path(json.loads(res.stdout)["Dir"]) / "config" / "crd" / "standard" / f for f in GATEWAY_CRDS]


@pytest.fixture(scope="module")
def gateway_crds(kubectl: Kubectl) -> Iterator[None]:
    files = gateway_crd_files()
    for path in files:
        kubectl("apply", "--server-side", "-f", str(path))
    for name in ("gateways", "httproutes"):
        kubectl(
            "wait", "--for=condition=Established", f"crd/{name}.gateway.networking.k8s.io", "--timeout=60s"
        )
    yield
    for path in files:
        kubectl("delete", "-f", str(path), "--ignore-not-found")


def in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    doc["metadata"]["namespace"] = namespace
    for parent in (doc.get("spec") or {}).get("parentRefs") or []:
        parent["namespace"] = namespace
    return doc


def test_every_recipe_is_accepted_and_points_at_the_llmservice_s_service(
    kubectl: Kubectl, namespace: str, gateway_crds: None
) -> None:
    docs = recipes()
    assert {d["kind"] for d in docs} == {"Ingress", "Gateway", "HTTPRoute"}
    sent = [in_namespace(d, namespace) for d in docs]
    returned = server_side_dry_run(kubectl, sent)
    for before, after in zip(sent, returned, strict=True):
        assert contained(before, after) == [], before["kind"]

    body = yaml.safe_load((REPO / "examples" / "llama31-8b-production.yaml").read_text())
    service = next(
        o for o in desired_objects(resolve(LLMService.from_object(body))) if o["kind"] == "Service"
    )
    assert service["metadata"]["name"] == SERVICE
    (port,) = service["spec"]["ports"]
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": SERVICE, "port": {"name": port["name"]}}
    route = next(d for d in docs if d["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": SERVICE, "port": port["port"]}]
