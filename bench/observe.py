"""Watch-fed mirrors of one kind in one namespace, for timing without polling the API server.

Each event's arrival time is recorded, so "when did X become true" is measured as the moment the
watch delivered the change (a few ms after the API server stored it), and waiting costs no list
requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from llmstage.controller.kube import Kind, Kube

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any], float], None]


class Mirror:
    def __init__(self, kube: Kube, kind: Kind, namespace: str, *, label_selector: str | None = None) -> None:
        self.kube, self.kind, self.namespace, self.selector = kube, kind, namespace, label_selector
        self.items: dict[str, dict[str, Any]] = {}
        self.listeners: list[Listener] = []
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rv = ""

    async def start(self) -> Mirror:
        await self._list()
        self._task = asyncio.create_task(self._watch(), name=f"mirror {self.kind.plural}")
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _emit(self, kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        obj.setdefault("kind", self.kind.kind)  # list items come without it
        if kind == "DELETED":
            self.items.pop(name, None)
        else:
            self.items[name] = obj
        for listener in self.listeners:
            listener(kind, obj, at)
        self.changed.set()

    async def _list(self) -> None:
        params = {"labelSelector": self.selector} if self.selector else None
        data = await self.kube._request("get", self.kind.path(self.namespace), params=params)
        self._rv = data["metadata"]["resourceVersion"]
        now = time.perf_counter()
        seen = set()
        for obj in data.get("items", []):
            seen.add(obj["metadata"]["name"])
            self._emit("ADDED", obj, now)
        for name in set(self.items) - seen:
            self._emit("DELETED", self.items[name], now)

    async def _watch(self) -> None:
        while True:
            try:
                params = {"watch": "true", "resourceVersion": self._rv, "timeoutSeconds": "240"}
                if self.selector:
                    params["labelSelector"] = self.selector
                async for line in self.kube.http.lines(self.kind.path(self.namespace), params, 300):
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    at = time.perf_counter()
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise LookupError(obj.get("message", "watch error"))
                    self._rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._emit(event["type"], obj, at)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # expired resourceVersion, apiserver restart: list again
                log.debug("watch of %s restarts after %r", self.kind.plural, err)
                await asyncio.sleep(0.5)
                try:
                    await self._list()
                except Exception as list_err:
                    log.debug("relist of %s failed: %r", self.kind.plural, list_err)
