"""The package's shape, as docs/architecture.md describes it: what each module may import."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "llmstage"


def module_file(name: str) -> Path | None:
    """The file of an llmstage module (a package's __init__.py), None for anything else."""
    if name != "llmstage" and not name.startswith("llmstage."):
        return None
    path = REPO / "operator" / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def imported_at_load(path: Path) -> set[str]:
    """Modules a file imports when it is loaded: its top-level imports, without the ones under
    `if TYPE_CHECKING:` and the ones inside functions (imported when called)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from llmstage.api import constants` names a module too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def load_closure(module: str) -> set[str]:
    """Every module that loading `module` loads, following llmstage's own modules (the parent
    packages' __init__ modules aside: the claim is about the module's own dependencies)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is not None:
            todo.extend(imported_at_load(path))
    return seen


def test_resolved_and_the_api_constants_load_without_pydantic() -> None:
    """Resolved is plain frozen data: the renderers' input needs no API models to be built."""
    for module in ("llmstage.resolve.resolved", "llmstage.api.constants"):
        closure = load_closure(module)
        assert not {m for m in closure if m.split(".")[0] == "pydantic"}, module
        assert "llmstage.api.models" not in closure, module


DOC = REPO / "docs" / "architecture.md"
TEST_DIRS = [REPO / "tests", REPO / "e2e"]


def named(text: str, name: str) -> bool:
    """`name` (a path or file name) stands in `text` as itself, not as the tail of a longer one."""
    return re.search(r"(?<![\w/.])" + re.escape(name) + r"(?!\w)", text) is not None


def test_every_module_and_every_test_file_is_on_the_architecture_page() -> None:
    text = DOC.read_text()
    modules = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))
    tests = sorted({p.name for d in TEST_DIRS for p in d.rglob("test_*.py")})
    assert len(modules) > 50 and len(tests) > 50  # the globs found the tree
    assert [m for m in modules if not named(text, m)] == [], "modules missing from docs/architecture.md"
    assert [t for t in tests if not named(text, t)] == [], "test files missing from docs/architecture.md"


# What each folder of the package may import (besides itself and the top-level modules), as
# docs/architecture.md states it: api <- resolve <- render <- controller; gitops uses api and
# resolve; only cli imports cli; podside, whose programs run where llmstage is not installed,
# imports none of them.
MAY_IMPORT = {
    "api": set(),
    "upstream": set(),
    "podside": set(),
    "resolve": {"api", "upstream"},
    "render": {"api", "resolve", "upstream", "podside"},
    "kubeapi": set(),
    "controller": {"api", "resolve", "render", "upstream", "benchmark", "kubeapi"},
    "gitops": {"api", "resolve"},
    "benchmark": {"api", "resolve"},
    "cli": {"api", "resolve", "render", "controller", "gitops", "upstream", "benchmark", "kubeapi"},
}


def imported_anywhere(path: Path) -> set[str]:
    """Every llmstage module a file imports, at load time or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("llmstage.")}


def test_the_pod_side_programs_import_only_the_standard_library() -> None:
    """They run in the runtimes' images (python3 -c in vLLM's), where llmstage is not installed;
    huggingface_hub, which vLLM's image has, only by name (importlib), after checking for it."""
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((PACKAGE / "podside").glob("*.py")):
        if path.name == "__init__.py":
            continue  # the loader the templates call, in the operator
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.add((node.module or "").split(".")[0] if node.level == 0 else ".")
        assert names <= stdlib, (path.name, names - stdlib)


def test_imports_go_one_way() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        folder = rel.parts[0] if len(rel.parts) > 1 else None
        for name in imported_anywhere(path):
            target = name.split(".")[1]
            if not (PACKAGE / target).is_dir() or target == folder:
                continue  # a top-level module (logs, ollama_name, __version__) or its own folder
            if folder is None or target not in MAY_IMPORT[folder]:
                wrong.append(f"{rel} imports {name}")
    assert wrong == []
