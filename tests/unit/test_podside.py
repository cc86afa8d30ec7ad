"""llmstage.podside: the programs the templates inline by name, as the pods get them, and shipped
with the package. Each program's own behaviour: test_podside_hub_download.py and
test_podside_ollama_scripts.py."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from llmstage.podside import program, source
from llmstage.render import render

from testkit.render_fixtures import CASES

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "llmstage"
PODSIDE = PACKAGE / "podside"
TEMPLATES = sorted((PACKAGE / "render" / "templates").glob("*.j2"))
PROGRAMS = sorted(p.name for p in PODSIDE.iterdir() if p.suffix in {".py", ".sh"} and p.name != "__init__.py")
NAMED = re.compile(r"""podside_source\(["']([^"']+)["']\)""")


def test_every_program_is_named_by_a_template_and_found_by_name() -> None:
    named = sorted({name for t in TEMPLATES for name in NAMED.findall(t.read_text())})
    assert named == PROGRAMS == ["hub_download.py", "ollama_load.sh", "ollama_pull.sh"]
    for name in named:
        assert source(name).strip(), name


def test_the_package_ships_every_program_file() -> None:
    """The operator's image installs the package (not editable): a file that is neither a module
    nor in [tool.setuptools.package-data] would be missing there, and the render would fail."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["llmstage"]
    for path in sorted(PODSIDE.iterdir()):
        if path.suffix != ".py" and not path.name.startswith("."):
            relative = path.relative_to(PACKAGE).as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in data), relative


def test_no_program_holds_template_syntax() -> None:
    """Settings come in through the environment: nothing is spliced into a program's text."""
    for name in PROGRAMS:
        text = (PODSIDE / name).read_text()
        assert not [mark for mark in ("{{", "{%", "{#") if mark in text], name


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_pod_gets_the_program_without_its_documentation(name: str) -> None:
    """What the header or docstring holds is read here; the pod gets the rest, unchanged."""
    text = (PODSIDE / name).read_text()
    inlined = source(name)
    assert text.endswith(inlined) and len(inlined) < len(text)
    header = text[: len(text) - len(inlined)]
    if name.endswith(".sh"):
        assert all(line.startswith("#") or not line.strip() for line in header.splitlines())
        assert header.startswith("#!/bin/sh\n")
    else:
        module = ast.parse(text)
        assert isinstance(module.body[0], ast.Expr) and ast.get_docstring(module)
        assert ast.dump(ast.parse(inlined)) == ast.dump(ast.Module(body=module.body[1:], type_ignores=[]))
    assert inlined.strip() and not inlined[0].isspace()  # the first line sets a YAML block's indent


def test_program_keeps_a_text_without_documentation_and_refuses_other_files() -> None:
    assert program("import os\n", "x.py") == "import os\n"
    assert program('"""Doc."""\n\nimport os\n', "x.py") == "import os\n"
    assert program("set -eu\n# a comment\n", "x.sh") == "set -eu\n# a comment\n"
    assert program("#!/bin/sh\n# doc\n\nset -eu\n", "x.sh") == "set -eu\n"
    with pytest.raises(ValueError, match="not a pod-side program"):
        program("x", "x.txt")


def containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Deployments' containers by name (the serving pods' own: no name is in both runtimes)."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj["kind"] == "Deployment":
            spec = obj["spec"]["template"]["spec"]
            found |= {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}
    return found


OLLAMA_CASES = sorted(case for case in CASES if "pull-model" in containers(render(*CASES[case])))


def test_the_fixtures_render_ollama() -> None:
    assert len(OLLAMA_CASES) >= 3


@pytest.mark.parametrize("case", OLLAMA_CASES)
def test_every_ollama_deployment_runs_the_scripts_as_they_are(case: str) -> None:
    """The same text whatever the spec: alias, insecure registry and the rest are variables."""
    found = containers(render(*CASES[case]))
    assert found["pull-model"]["command"] == ["/bin/sh", "-c", source("ollama_pull.sh")]
    assert found["server"]["command"] == ["/bin/sh", "-c", source("ollama_load.sh")]
