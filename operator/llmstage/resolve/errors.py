"""SpecError: a spec that cannot be turned into a working workload (see resolver.py)."""

from __future__ import annotations


class SpecError(ValueError):
    """The spec cannot be served as written. `field` is the JSON path, `message` says the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
