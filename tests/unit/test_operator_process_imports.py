"""`llmstage run` runs without the generated kubernetes client, in the image (not installed) and in
a venv that has it for other tools (this one, for the tests): kopf imports it whenever it can, and
llmstage.cli.run keeps it out before kopf is imported. Checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
{setup}
import llmstage.controller.operator, llmstage.controller.handlers, kopf
loaded = [m for m, module in sys.modules.items() if m.split(".")[0] == "kubernetes" and module is not None]
print(json.dumps(sorted(loaded)))
"""


def loaded_kubernetes_modules(setup: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_the_operators_process_loads_no_kubernetes_client() -> None:
    setup = "from llmstage.cli.run import without_kubernetes_client; without_kubernetes_client()"
    assert loaded_kubernetes_modules(setup) == []


def test_the_control_kopf_loads_the_client_where_it_is_installed() -> None:
    """What the guard is for, and that the probe sees it."""
    assert "kubernetes.client" in loaded_kubernetes_modules("")
