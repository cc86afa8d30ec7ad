"""google-auth for the gcs download step, kept out of the operator: requirements/gcs.txt is installed
into <venv>/fetch-gcs, outside site-packages (`make venv` here, /opt/llmstage/fetch-gcs in the
image), and only llmstage.fetch.gcs puts that directory on sys.path, so neither google.auth nor the
cryptography it imports reach the operator's memory (docs/benchmarks.md). The kubernetes client
(in this venv for the tests, not in the image) would import both whenever it can.

Each import is checked in a fresh interpreter of this venv: the test process's own modules say
nothing about what an import loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testkit.locks import lock

FETCH_GCS = Path(sys.prefix) / "fetch-gcs"
WATCHED = ("google", "cryptography", "pyasn1", "pyasn1_modules")
PROBE = """
import json, sys
{imports}
auth = sys.modules.get("google.auth")
print(json.dumps({{
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in {watched!r}),
    "google_auth": getattr(auth, "__file__", None),
    "requests": sys.modules["requests"].__file__ if "requests" in sys.modules else None,
}}))
"""


def probe(imports: str, pythonpath: Path | None = None) -> dict[str, Any]:
    """What a fresh interpreter of this venv has loaded after `imports`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports, watched=WATCHED)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_the_operator_and_the_cli_load_neither_google_auth_nor_cryptography() -> None:
    loaded = probe("import llmstage.controller.handlers, llmstage.cli, llmstage.cli.run")
    assert loaded["modules"] == [], "the operator's imports load google-auth or cryptography"


def test_with_fetch_gcs_on_the_path_the_kubernetes_client_would_load_both() -> None:
    """The control: what the isolation is for, and that the probe sees it."""
    loaded = probe("import kubernetes.config", pythonpath=FETCH_GCS)
    assert "google.auth" in loaded["modules"] and "cryptography" in loaded["modules"]


def test_the_gcs_step_imports_google_auth_from_fetch_gcs_with_the_venvs_requests() -> None:
    loaded = probe("import llmstage.fetch.gcs, google.auth.transport.requests")
    assert loaded["google_auth"] and Path(loaded["google_auth"]).is_relative_to(FETCH_GCS)
    assert "google.auth.transport.requests" in loaded["modules"]
    assert Path(loaded["requests"]).is_relative_to(Path(sys.prefix) / "lib")  # site-packages


def _applicable(path: Path) -> dict[str, str]:
    """name -> version of a lock's pins for this interpreter and platform."""
    environment = {k: str(v) for k, v in default_environment().items()}
    return {
        name: pin.version
        for name, pins in lock.parse_lock(path.read_text()).items()
        for pin in pins
        if pin.marker is None or Requirement(f"x; {pin.marker}").marker.evaluate(environment)
    }


def test_fetch_gcs_holds_exactly_the_gcs_lock() -> None:
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version for d in distributions(path=[str(FETCH_GCS)])
    }
    assert installed == _applicable(lock.GCS_LOCK), (
        "FETCH_GCS differs from requirements/gcs.txt: run make venv"
    )


def test_the_gcs_lock_adds_to_the_runtime_lock_and_the_image_has_all_it_needs() -> None:
    """gcs.txt repeats no pin of runtime.txt, and what its packages require (google-auth with its
    requests extra: the transport it is used with) is in one of the two at a version that fits."""
    gcs, runtime = _applicable(lock.GCS_LOCK), _applicable(lock.RUNTIME_LOCK)
    assert set(gcs) & set(runtime) == set()
    image = runtime | gcs
    environment = {k: str(v) for k, v in default_environment().items()}
    unmet = []
    for dist in distributions(path=[str(FETCH_GCS)]):
        name = canonicalize_name(dist.metadata["Name"])
        extras = {"", "requests"} if name == "google-auth" else {""}
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({**environment, "extra": e}) for e in extras):
                continue
            version = image.get(canonicalize_name(req.name))
            if version is None or not req.specifier.contains(version, prereleases=True):
                unmet.append(f"{name} needs {text}; the image has {version}")
    assert unmet == []
    assert {"requests", "urllib3", "cryptography"} <= set(runtime)
