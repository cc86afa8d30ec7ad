"""Write requests from the API server's audit log (.cluster/logs/audit.log, JSON lines).

The test bed's audit policy records every write at Metadata level. A `Mark` remembers where the
log ended; `writes_since(mark)` returns the write requests appended after it, following the log
across one rotation (the API server renames the full file and starts a new one).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AUDIT_LOG = REPO / ".cluster" / "logs" / "audit.log"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# The operator's own client and kopf's watch machinery (kopf writes nothing in our set-up).
OPERATOR_AGENTS = ("llmstage/", "kopf/")
# --audit-log-batch-max-wait=1s: an event reaches the file at most ~1 s after the request.
FLUSH_DELAY = 2.5


@dataclass(frozen=True)
class Mark:
    path: Path
    inode: int
    offset: int


def mark(path: Path = AUDIT_LOG) -> Mark:
    st = path.stat()
    return Mark(path, st.st_ino, st.st_size)


def _read_from(path: Path, offset: int) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        f.seek(offset)
        for line in f:
            if not line.endswith(b"\n"):
                break  # a line the API server is still writing
            try:
                yield json.loads(line)
            except ValueError:
                continue


def events_since(m: Mark) -> Iterator[dict[str, Any]]:
    current = os.stat(m.path)
    if current.st_ino == m.inode:
        yield from _read_from(m.path, m.offset)
        return
    # Rotated: finish the old file (renamed next to it), then the new one from its start.
    for rotated in m.path.parent.glob(f"{m.path.stem}-*{m.path.suffix}"):
        if rotated.stat().st_ino == m.inode:
            yield from _read_from(rotated, m.offset)
    yield from _read_from(m.path, 0)


def is_operator_write(event: dict[str, Any], namespaces: Iterable[str] | None = None) -> bool:
    if event.get("verb") not in WRITE_VERBS or event.get("stage") != "ResponseComplete":
        return False
    if not str(event.get("userAgent", "")).startswith(OPERATOR_AGENTS):
        return False
    if namespaces is None:
        return True
    ns = (event.get("objectRef") or {}).get("namespace")
    return ns is None or ns in set(namespaces)


def operator_writes(
    m: Mark, namespaces: Iterable[str] | None = None, wait: bool = True
) -> list[dict[str, Any]]:
    """The operator's write requests logged since `m` (in `namespaces`, plus cluster-scoped ones)."""
    if wait:
        time.sleep(FLUSH_DELAY)
    wanted = list(namespaces) if namespaces is not None else None
    return [e for e in events_since(m) if is_operator_write(e, wanted)]


def describe(events: list[dict[str, Any]], limit: int = 10) -> str:
    """`patch llmservices/status x3, create events x2` for assertion messages and reports."""
    counts: Counter[str] = Counter()
    for e in events:
        ref = e.get("objectRef") or {}
        resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        counts[f"{e.get('verb')} {resource} {ref.get('namespace', '')}/{ref.get('name', '')}"] += 1
    return ", ".join(f"{k} x{n}" for k, n in counts.most_common(limit)) or "none"


def write_counts(m: Mark, namespaces: Iterable[str]) -> dict[str, int]:
    """Every write request in `namespaces` since `m`, counted by client and resource:
    {"llmstage patch llmservices/status": 274, "kube-controller-manager create pods": 100, ...}."""
    wanted = set(namespaces)
    counts: Counter[str] = Counter()
    for e in events_since(m):
        if e.get("verb") not in WRITE_VERBS or e.get("stage") != "ResponseComplete":
            continue
        ref = e.get("objectRef") or {}
        if ref.get("namespace") not in wanted:
            continue
        agent = str(e.get("userAgent", "?")).split("/")[0]
        resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        counts[f"{agent} {e['verb']} {resource}"] += 1
    return dict(counts.most_common())
