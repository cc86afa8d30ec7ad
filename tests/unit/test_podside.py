"""llmstage.podside: the programs the templates inline by name, as the pods get them, and shipped
with the package; and the LLMSTAGE_* variables they read, every one set in every container that
also gets spec.<runtime>.envFrom. Each program's own behaviour: test_podside_hub_download.py and
test_podside_ollama_scripts.py."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from llmstage.podside import program, source
from llmstage.render import render
from llmstage.render.source import FETCH_COMMAND
from llmstage.resolve.resolved import Resolved

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


# spec.<runtime>.envFrom and llmstage's own variables. Kubernetes lets an env entry win over an
# envFrom key, but fills a variable no entry names from envFrom: each LLMSTAGE_* variable a program
# reads must be an entry of its container ("" when off), or a ConfigMap could turn a setting on.

ENV_FROM = ({"configMapRef": {"name": "team-settings"}},)
OWN = re.compile(r"LLMSTAGE_[A-Z0-9_]+")
# The s3 and gcs step runs `python -m llmstage.fetch` in llmstage's image: the package's modules.
FETCH_MODULES = sorted((PACKAGE / "fetch").glob("*.py"))


def read_variables(text: str, python: bool) -> set[str]:
    """The LLMSTAGE_* variables a program reads, from its text: in Python the string constants that
    are such a name (os.environ.get(NAME), env[NAME]), in sh the expansions ($NAME, ${NAME...})."""
    if python:
        return {
            node.value
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and OWN.fullmatch(node.value)
        }
    return set(re.findall(r"\$\{?(LLMSTAGE_[A-Z0-9_]+)", text))


def programs(container: dict[str, Any]) -> dict[str, set[str]]:
    """What a container runs, by name, with the LLMSTAGE_* variables each reads: its command, and
    the shell commands of its probes and hooks."""
    found: dict[str, set[str]] = {}
    command = container.get("command")
    if command is None:
        assert container["name"] == "server" and "args" in container  # vLLM: the image's `vllm serve`
    elif command[:2] == ["/bin/sh", "-c"]:
        found[f"sh: {command[2].splitlines()[0]}"] = read_variables(command[2], python=False)
    elif command[:2] == ["python3", "-c"]:
        found[f"python3: {command[2].splitlines()[0]}"] = read_variables(command[2], python=True)
    elif command == list(FETCH_COMMAND):
        found["llmstage.fetch"] = set().union(*(read_variables(m.read_text(), True) for m in FETCH_MODULES))
    else:
        raise AssertionError(f"{container['name']}: a command this test does not know: {command[:2]}")
    hooks = [container.get(probe, {}) for probe in ("startupProbe", "readinessProbe", "livenessProbe")]
    hooks += list(container.get("lifecycle", {}).values())
    for hook in hooks:
        if "exec" in hook:
            words = " ".join(hook["exec"]["command"])
            found[f"exec: {words}"] = read_variables(words, python=False)
    return found


def with_env_from(resolved: Resolved) -> Resolved:
    if resolved.ollama is not None:
        return replace(resolved, ollama=replace(resolved.ollama, env_from=ENV_FROM))
    assert resolved.vllm is not None
    return replace(resolved, vllm=replace(resolved.vllm, env_from=ENV_FROM))


def without_env_from(resolved: Resolved) -> Resolved:
    if resolved.ollama is not None:
        return replace(resolved, ollama=replace(resolved.ollama, env_from=()))
    assert resolved.vllm is not None
    return replace(resolved, vllm=replace(resolved.vllm, env_from=()))


def every_container(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The containers of every pod the objects run: a Deployment's, a LeaderWorkerSet's leader and
    worker."""
    specs = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            specs.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "LeaderWorkerSet":
            group = obj["spec"]["leaderWorkerTemplate"]
            specs += [group["leaderTemplate"]["spec"], group["workerTemplate"]["spec"]]
    return [c for spec in specs for c in spec.get("initContainers", []) + spec["containers"]]


def test_the_variables_each_program_reads_are_found_in_its_text() -> None:
    """The scan itself, on what each program is known to read (the rest it finds on its own)."""
    pull, load = source("ollama_pull.sh"), source("ollama_load.sh")
    pulled = read_variables(pull, python=False)
    assert {"LLMSTAGE_PULL", "LLMSTAGE_MODEL_MANIFEST", "LLMSTAGE_PULL_INSECURE"} <= pulled
    assert read_variables(load, python=False) == {"LLMSTAGE_MODEL", "LLMSTAGE_LOADED"}
    hub = read_variables(source("hub_download.py"), python=True)
    assert hub == {"LLMSTAGE_MODEL", "LLMSTAGE_REVISION", "LLMSTAGE_LORA", "LLMSTAGE_LORA_MAX_RANK"}
    fetch = set().union(*(read_variables(m.read_text(), python=True) for m in FETCH_MODULES))
    assert {"LLMSTAGE_SOURCE_ACCESS_KEY_ID", "LLMSTAGE_SOURCE_FIELD", "LLMSTAGE_SOURCE_EXPECTED"} <= fetch


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_llmstage_variable_a_program_reads_is_set_where_env_from_reaches(case: str) -> None:
    """Each fixture with spec.<runtime>.envFrom set: in every container that gets it, every
    LLMSTAGE_* variable its programs read is an env entry, so no envFrom key can set it."""
    resolved, facts = CASES[case]
    for container in every_container(render(with_env_from(resolved), facts)):
        if "envFrom" not in container:
            # The gateway only (its LLMSTAGE_API_KEY may be left out): a user's ConfigMap never reaches it.
            assert container["name"] == "gateway", container["name"]
            continue
        assert container["envFrom"] == list(ENV_FROM)
        names = [e["name"] for e in container["env"]]
        for what, variables in programs(container).items():
            missing = sorted(variables - set(names))
            assert not missing, f"{container['name']} ({what}): {missing} left to envFrom"


def test_the_fixtures_check_every_program_that_reads_llmstage_variables() -> None:
    """The test above reaches the pull step, Ollama's server (its loader and startup probe), the
    Hugging Face step and the bucket step, each with what it reads; it cannot pass on none."""
    seen: set[str] = set()
    for resolved, facts in CASES.values():
        for container in every_container(render(with_env_from(resolved), facts)):
            if "envFrom" in container:
                seen |= {name.split(":")[0] for name, variables in programs(container).items() if variables}
    assert seen == {"sh", "python3", "llmstage.fetch", "exec"}
    texts = {
        c["command"][-1]
        for resolved, facts in CASES.values()
        for c in every_container(render(with_env_from(resolved), facts))
        if "envFrom" in c and c.get("command", [""])[0] in {"/bin/sh", "python3"}
    }
    assert texts == {source(name) for name in PROGRAMS}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_env_is_the_same_with_or_without_env_from(case: str) -> None:
    """The empty entries are rendered whether envFrom is set or not: adding or removing a ConfigMap
    changes the containers' envFrom and nothing else of them."""
    resolved, facts = CASES[case]
    plain = every_container(render(without_env_from(resolved), facts))
    with_it = every_container(render(with_env_from(resolved), facts))
    strip = [{k: v for k, v in c.items() if k != "envFrom"} for c in with_it]
    assert strip == plain
