"""The package's shape, as docs/architecture.md describes it: what each module may import."""

from __future__ import annotations

import ast
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
