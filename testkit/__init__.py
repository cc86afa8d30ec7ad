"""The test-support package of tests/, e2e/ and bench/ (imported from the repository root).

Here: the cluster guard, wait_until, kube_over, and OperatorProcess (from launcher.py). Beside
it: api_cases (objects the API must accept or reject), render_fixtures (Resolved cases behind the
goldens), lua_health (the Argo CD health check run as Argo CD runs it), chart (helm and kubectl),
realnode and user.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testkit.launcher import OperatorProcess as OperatorProcess  # the launcher, re-exported

if TYPE_CHECKING:
    from llmstage.controller.kube import Kube

LOCAL_CONTEXT = "llmstage-local"
_LOOPBACK = re.compile(r"https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/?$")


class UnsafeContextError(Exception):
    """The kubeconfig points at a cluster the tests must not touch."""


def check_context(kubeconfig: Path) -> str:
    """Return the current context name if it is this repo's local cluster or a kind cluster on
    loopback; raise UnsafeContextError otherwise (tests create and delete namespaces)."""
    cfg = yaml.safe_load(kubeconfig.read_text()) or {}
    ctx_name = cfg.get("current-context", "")
    ctx = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name), None)
    cluster: dict[str, Any] = next(
        (c["cluster"] for c in cfg.get("clusters") or [] if ctx and c["name"] == ctx["cluster"]), {}
    )
    server = cluster.get("server", "")
    if not _LOOPBACK.match(server) or not (ctx_name == LOCAL_CONTEXT or ctx_name.startswith("kind-")):
        raise UnsafeContextError(
            f"refusing to run cluster tests against context {ctx_name!r} at {server!r}: only the local "
            f"test cluster ({LOCAL_CONTEXT}) or a kind-* cluster on loopback is allowed"
        )
    return ctx_name


def wait_until(check, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll `check()` until it returns something truthy; return that value or fail with `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def kube_over(transport: Any) -> Kube:
    """A llmstage Kube whose HTTP layer is `transport` (an object with an async `request`), with
    millisecond retry delays: for unit tests of the retry and error mapping only."""
    from llmstage.controller.kube import Kube, RetryPolicy

    return Kube(transport, RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002))
