"""Freed memory handed back to the system after busy spells (glibc's malloc_trim).

Most of what the operator allocates lives for one watch event: decoded, slimmed into the watch
cache, dropped. The C library keeps freed pages for reuse, and while a thousand services
converge they pile up. `malloc_trim(0)` returns free pages, also those in the middle of the
heap. It reaches what Python takes from malloc (objects over 512 bytes: long strings of decoded
events, dict tables, packed cache entries, buffers), which is most of what a convergence frees.
Python keeps its own allocator for the rest: PYTHONMALLOC=malloc lowered the peak no further and
cost more CPU per service (the figures of both: docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Often enough to keep the peak of a convergence down, rarely enough to cost nothing measurable
# (a trim walks the heap's free lists: about a millisecond at the sizes seen here).
TRIM_INTERVAL_SECONDS = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc; musl has none
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


async def trim_after_activity(activity: Callable[[], int], interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Every `interval` seconds, trim if `activity()` (a counter of work done) moved since the last
    look: a busy operator gives back what its last spell freed, an idle one does nothing."""
    trim = _malloc_trim()
    if trim is None:
        log.debug("no malloc_trim in this C library; freed memory stays with the allocator")
        return
    seen = activity()
    while True:
        await asyncio.sleep(interval)
        now = activity()
        if now != seen:
            seen = now
            trim(0)
