"""A watched kind whose CRD goes away must not stop the operator.

The operator watches KEDA's ScaledObjects when KEDA is installed. When someone uninstalls KEDA
(or its CRD is deleted), the API server ends the ScaledObject watch and kopf reconnects after
`settings.watching.reconnect_backoff`; the new request gets 404, and kopf 1.45 treats any error
of a watcher as fatal: the whole operator exits, unless kopf's CRD observation cancelled that
watcher first. That is a race (found by tests/integration/test_keda.py in CI, where the operator
lost it), and with exact namespaces kopf does not observe CRDs at all.

`tolerate_vanished_kinds()` wraps the one generator kopf reconnects through: a 404 ends that
stream quietly after a pause, and kopf's own loop tries again later. If the CRD comes back, the
watch resumes; if kopf's observation drops the kind, the watcher is cancelled as before. kopf is
pinned; tests/unit/test_kopfwatch.py fails if a new kopf no longer calls it by that name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

# How long a watcher of a vanished kind waits before kopf asks again: one request per this many
# seconds per namespace while the CRD is gone, instead of one per reconnect backoff (0.1 s).
VANISHED_RETRY_SECONDS = 10.0


def tolerant(
    continuous_watch: Callable[..., AsyncIterator[Any]], pause: float = VANISHED_RETRY_SECONDS
) -> Callable[..., AsyncIterator[Any]]:
    from kopf._cogs.clients.errors import APINotFoundError

    async def continuous_watch_tolerating_404(**kwargs: Any) -> AsyncIterator[Any]:
        try:
            async for event in continuous_watch(**kwargs):
                yield event
        except APINotFoundError:
            resource, namespace = kwargs.get("resource"), kwargs.get("namespace")
            log.warning(
                "%s is not served any more%s (its CRD was deleted?); watching it again in %.0f s",
                resource,
                f" in namespace {namespace}" if namespace else "",
                pause,
            )
            await asyncio.sleep(pause)

    return continuous_watch_tolerating_404


def tolerate_vanished_kinds() -> None:
    """Before kopf starts watching; idempotent."""
    from kopf._cogs.clients import watching

    current = watching.continuous_watch
    if getattr(current, "__name__", "") != "continuous_watch_tolerating_404":
        setattr(watching, "continuous_watch", tolerant(current))  # noqa: B010 (kopf's module)
