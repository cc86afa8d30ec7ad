"""The errors of the API layer: what the API server refused, and credentials that cannot work."""

from __future__ import annotations

import json
from collections.abc import Mapping


class ApiError(Exception):
    """A Kubernetes API error that retries did not resolve (or that retrying cannot fix)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def rejected_object(self) -> bool:
        """Server-side apply of an object whose fields have the wrong type (e.g. an affinity
        that is a string) fails with 500 "failed to create typed patch object", not 422: the
        object is wrong, retrying cannot help."""
        return self.status == 500 and "failed to create typed patch object" in self.message


class HttpError(Exception):
    """An answer of 400 or more, as it came: the status, its headers and its body."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.headers, self.body = status, headers, body

    def api_error(self) -> ApiError:
        """The Status object's reason and message when the body is one, else the raw text."""
        text = self.body.decode(errors="replace").strip()
        reason, message = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(self.status, ""), text
        try:
            status = json.loads(text) if text else {}
            if isinstance(status, dict):
                message = str(status.get("message") or message)
                reason = str(status.get("reason") or reason)
        except ValueError:
            pass
        return ApiError(
            self.status, reason or f"HTTP {self.status}", message or reason or f"HTTP {self.status}"
        )


class ConfigError(Exception):
    """Credentials that cannot work, said in one line naming the file or setting and the fix."""
