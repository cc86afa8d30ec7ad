"""The kind cluster's teardown check (hack/e2e_kind.py runs it last, with `-m kind_teardown`).
Anywhere else, with no kind cluster to take down, the test is deselected, not skipped: `make test`
does not run it."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("markexpr") or ""
    if "kind_teardown" in markexpr and "not" not in markexpr:
        return
    deselected = [item for item in items if item.get_closest_marker("kind_teardown")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
