"""The operator image's SBOM (hack/sbom.py, `make image`): cyclonedx-py from its hashed lock, on
the image's exact package set, with the image (digest, labels) as the subject."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testkit.locks import lock

REPO = Path(__file__).resolve().parents[2]
IMAGE = {
    "repository": "llmstage/llmstage",
    "tag": "0123456789ab",
    "digest": "sha256:" + "ab" * 32,
    "labels": {"org.opencontainers.image.revision": "f00", "org.opencontainers.image.version": "0.1.0"},
}


@pytest.fixture(scope="module")
def sbom_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sbom", REPO / "hack" / "sbom.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["sbom"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bom(sbom_module: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = sbom_module.sbom(IMAGE)
    return result


def test_the_subject_is_the_image_by_digest_with_its_labels(bom: dict[str, Any]) -> None:
    subject = bom["metadata"]["component"]
    assert subject["type"] == "container" and subject["name"] == "llmstage/llmstage"
    assert subject["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert {p["name"]: p["value"] for p in subject["properties"]} == {
        "oci:label:org.opencontainers.image.revision": "f00",
        "oci:label:org.opencontainers.image.version": "0.1.0",
    }
    assert bom["bomFormat"] == "CycloneDX"


@pytest.mark.parametrize("name", ["runtime.txt", "gcs.txt"])  # gcs.txt: /opt/llmstage/fetch-gcs
def test_every_locked_package_is_a_component_with_the_locks_hashes(bom: dict[str, Any], name: str) -> None:
    pins = lock.parse_lock((REPO / "requirements" / name).read_text())
    components = {c["name"].lower().replace("_", "-"): c for c in bom["components"]}
    assert "llmstage" in components
    for name, versions in pins.items():
        component = components[name]
        assert component["version"] == versions[0].version
        hashes = {
            h["content"] for ref in component.get("externalReferences", []) for h in ref.get("hashes", [])
        }
        assert {h.removeprefix("sha256:") for h in versions[0].hashes} <= hashes, name


def test_the_dependency_graph_is_complete(bom: dict[str, Any]) -> None:
    refs = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    app = next(c["bom-ref"] for c in bom["components"] if c["name"] == "llmstage")
    assert refs["image"] == [app]
    assert set(refs[app]) == {c["bom-ref"] for c in bom["components"]} - {app}
