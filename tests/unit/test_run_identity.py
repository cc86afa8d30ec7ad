"""`llmstage run` starts under a UID that has no passwd entry (the image's 65532, OpenShift's
random UIDs): kopf's default identity calls getpass.getuser(), which raises KeyError there, so
the operator passes its own."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Any

import kopf
import pytest
from llmstage.cli import build_parser
from llmstage.cli import run as run_cmd
from llmstage.kubeapi import credentials


def no_passwd_entry() -> str:
    raise KeyError("getpwuid(): uid not found: 65532")


def test_the_operator_starts_without_a_passwd_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    # In a pod: the ServiceAccount's credentials (never dialled: kopf is replaced below).
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("t")
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT", str(tmp_path))
    seen: dict[str, Any] = {}

    async def fake_operator(**kwargs: Any) -> None:
        seen.update(kwargs)
        # What kopf does with the identity it is given: no getuser() when one is passed.
        kopf_identity = kwargs.get("identity")
        if kopf_identity is None:
            getpass.getuser()

    monkeypatch.setattr(kopf, "operator", fake_operator)
    monkeypatch.setattr(run_cmd, "configure_logging", lambda *a: None)
    args = build_parser().parse_args(
        ["run", "--log-format=text", "--concurrency=1", "--unschedulable-grace=1", "--metrics-port=0",
         "--metrics-address=127.0.0.1", "--liveness=off", "--no-leader-elect"]
    )  # fmt: skip
    assert run_cmd.run(args) == 0
    host, pid, token = seen["identity"].split("/")
    assert (host, pid) == (socket.gethostname(), str(os.getpid())) and len(token) == 6


def test_the_identity_is_the_pod_name_and_never_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "llmstage-7d4b9-x2x9q")
    first, second = run_cmd.operator_identity(), run_cmd.operator_identity()
    assert first.startswith("llmstage-7d4b9-x2x9q/") and first != second
