"""hack/lock.py (the Python locks' maker and parser) as an importable module for the tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from testkit.chart import REPO


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", REPO / "hack" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["lock"] = module
    spec.loader.exec_module(module)
    return module


lock = _load()
