"""The guard that keeps cluster tests away from any cluster but a throwaway one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit import LOCAL_CONTEXT, UnsafeContextError, check_context


def kubeconfig(tmp_path: Path, context: str, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("context", "server"),
    [
        (LOCAL_CONTEXT, "https://127.0.0.1:16443"),
        ("kind-llmstage-e2e", "https://127.0.0.1:41234"),
        ("kind-kind", "https://localhost:6443"),
    ],
)
def test_accepts_the_local_cluster_and_kind(tmp_path: Path, context: str, server: str) -> None:
    assert check_context(kubeconfig(tmp_path, context, server)) == context


@pytest.mark.parametrize(
    ("context", "server"),
    [
        ("prod-eu", "https://10.0.0.1:6443"),
        ("kind-kind", "https://k8s.example.com:6443"),  # kind-looking name, remote server
        ("minikube", "https://127.0.0.1:8443"),  # loopback, but not a cluster we create
        (LOCAL_CONTEXT, "https://192.168.1.5:16443"),
    ],
)
def test_refuses_anything_else(tmp_path: Path, context: str, server: str) -> None:
    with pytest.raises(UnsafeContextError, match="refusing to run cluster tests"):
        check_context(kubeconfig(tmp_path, context, server))
