"""The real node's volume provisioner (hack/volumes.py): reading `kubectl get --watch -o json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))
import volumes  # noqa: E402  (hack/ is no package)


def claim(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}}


def printed(*objects: object) -> list[str]:
    """What kubectl writes: each object pretty-printed, one after the other."""
    return "".join(json.dumps(obj, indent=4) + "\n" for obj in objects).splitlines(keepends=True)


def names(lines: list[str]) -> list[str]:
    return [obj["metadata"]["name"] for obj in volumes.watched_objects(lines)]


def test_each_printed_object_is_read_once_in_order() -> None:
    assert names(printed(claim("a"), claim("b"), claim("c"))) == ["a", "b", "c"]


def test_a_list_is_taken_apart_so_none_of_its_claims_is_skipped() -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [claim("a"), claim("b")]}
    assert names(printed(listed, claim("c"))) == ["a", "b", "c"]


def test_a_brace_inside_a_value_does_not_end_an_object() -> None:
    tricky = claim("d") | {"note": "}\n} not the end"}
    assert names(printed(tricky, claim("e"))) == ["d", "e"]
