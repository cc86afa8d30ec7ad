"""The last rendered objects of each LLMService, so a reconcile that changes nothing skips render.

Rendering a Deployment (Jinja2, then YAML back to dicts) is most of a no-op reconcile's CPU, and
an LLMService is reconciled about ten times while it converges (every child, pod and endpoint
event). The key is a digest of the whole Resolved (spec, name, uid, generation, ...), the
cluster facts and the serving runtime, so any input change renders afresh. Entries are kept
marshalled and compressed (1-2 KB each; marshal loads several times faster than JSON) and
handed out as fresh dicts: callers may mutate them.
"""

from __future__ import annotations

import hashlib
import marshal
import zlib
from collections import OrderedDict
from typing import Any

from llmstage.api.constants import Runtime
from llmstage.controller import metrics
from llmstage.controller.cache import ServiceKey
from llmstage.render.desired import desired_objects
from llmstage.resolve.resolved import ClusterFacts, Resolved


class RenderCache:
    def __init__(self, max_entries: int = 20000) -> None:
        self._entries: OrderedDict[ServiceKey, tuple[bytes, bytes]] = OrderedDict()
        self._max = max_entries
        self.hits = self.misses = 0

    def __call__(
        self,
        resolved: Resolved,
        facts: ClusterFacts,
        *,
        serving_runtime: Runtime | None = None,
        surge_blocked: bool = False,
    ) -> list[dict[str, Any]]:
        key = resolved.namespace, resolved.name
        inputs = (resolved, facts, serving_runtime, surge_blocked)
        digest = hashlib.blake2b(repr(inputs).encode(), digest_size=16).digest()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == digest:
            self.hits += 1
            self._entries.move_to_end(key)
            objects: list[dict[str, Any]] = marshal.loads(zlib.decompress(entry[1]))
            return objects
        self.misses += 1
        metrics.RENDERS.inc()
        objects = desired_objects(
            resolved, facts, serving_runtime=serving_runtime, surge_blocked=surge_blocked
        )
        self._entries[key] = digest, zlib.compress(marshal.dumps(objects), 1)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return objects

    def forget(self, key: ServiceKey) -> None:
        self._entries.pop(key, None)
