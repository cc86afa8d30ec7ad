"""Golden files: the exact objects each fixture renders to, reviewed by hand.

Any difference fails. After an intended change, regenerate and review the diff line by line:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_render_golden.py
    git diff tests/unit/golden/

The flag is refused in CI (CI=... set), so CI can only compare.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.render import render

from testkit.render_fixtures import CASES

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


class GoldenDumper(yaml.SafeDumper):
    """Block style throughout, multi-line strings (the pull script) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


GoldenDumper.add_representer(str, _str)


def dump(objects: list[dict[str, Any]], case: str) -> str:
    header = (
        f"# Golden file: render(render_fixtures.CASES[{case!r}]), reviewed by hand.\n"
        "# Regenerate with UPDATE_GOLDEN=1 (see tests/unit/test_render_golden.py) and review the diff.\n"
    )
    body = yaml.dump_all(objects, Dumper=GoldenDumper, sort_keys=False, width=120, explicit_start=True)
    return header + body


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_objects_match_the_reviewed_golden_file(case: str) -> None:
    resolved, facts = CASES[case]
    actual = dump(render(resolved, facts), case)
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        if os.environ.get("CI"):
            pytest.fail("UPDATE_GOLDEN is not allowed in CI: goldens are reviewed, not regenerated")
        path.write_text(actual)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    expected = path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(path), "rendered"
            )
        )
        pytest.fail(f"rendered objects differ from {path.name}:\n{diff}")


def test_golden_files_parse_back_to_the_rendered_objects() -> None:
    """The dumper loses nothing: a golden file is the objects, not just their text."""
    for case, (resolved, facts) in CASES.items():
        assert list(yaml.safe_load_all((GOLDEN / f"{case}.yaml").read_text())) == render(resolved, facts)


def test_every_golden_file_belongs_to_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(CASES)
