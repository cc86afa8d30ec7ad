"""`make soak`: the long reliability runs (docs/reliability.md). Skipped unless LLMSTAGE_SOAK=1,
so `make test` and plain `pytest` collect them without running them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bench import scenarios, testbed

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "llmservices.llmstage.io.yaml"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="soak test: run with `make soak` (LLMSTAGE_SOAK=1)")
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.cluster)
            if os.environ.get("LLMSTAGE_SOAK") != "1":
                item.add_marker(skip)


@pytest.fixture(scope="session")
def soak_crd(kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/llmservices.llmstage.io", "--timeout=60s")


@pytest.fixture(scope="session")
def soak_nodes() -> Iterator[str]:
    """Capacity for 500 services (200 GPUs at most) on kwok nodes only soak pods use."""
    with scenarios.extra_nodes(cpu_pods=600, gpus=200) as rid:
        yield rid


@pytest.fixture
def soak_bed(
    api_client: client.ApiClient,
    namespace_prefix: str,
    soak_crd: None,
    soak_nodes: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[scenarios.Bed]:
    base = request.node.name[5:25].replace("_", "-").strip("-")
    name = f"s{namespace_prefix[1:]}{base}-{uuid.uuid4().hex[:4]}"
    with scenarios.bed_in_new_namespace(api_client, name, soak_nodes, tmp_path) as bed:
        yield bed
    testbed.delete_namespace(name)  # the next soak test starts on an empty cluster
