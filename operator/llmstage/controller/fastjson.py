"""msgspec for the JSON the operator decodes most: every watch event kopf receives, and the API
server's answers to our own requests.

In the N=1000 profile, the standard library's JSON decoder was the largest single cost of the
operator (18% of its CPU, nearly all of it in kopf's watch streams: about 23 events per service,
each a whole object with its managedFields); msgspec decodes the same events in half the time
(docs/benchmarks.md). kopf stays the watch layer: only the `json` name its stream reader looks
up is pointed at a decoder with the same contract. msgspec, not orjson: orjson turns integers
beyond 64 bits into floats without a word, msgspec keeps them exact as the standard library does.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode


def loads(data: str | bytes) -> Any:
    """json.loads for API server documents; a malformed one raises json.JSONDecodeError too."""
    try:
        return _decode(data)
    except msgspec.DecodeError as err:
        raise json.JSONDecodeError(
            str(err), data if isinstance(data, str) else data.decode(errors="replace"), 0
        ) from err


def loads_watch_event(data: str | bytes) -> Any:
    """A watch event without its object's managedFields, which nothing here reads (kopf does not;
    the watch cache drops them): a third to a half of a Deployment's or a pod's event. Dropped at
    decoding, the events queued in kopf while the operator is busy hold that much less memory."""
    event = loads(data)
    if isinstance(event, dict):
        obj = event.get("object")
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            obj["metadata"].pop("managedFields", None)
    return event


class _JsonModule:
    """What kopf's watch stream calls (`json.loads`); anything else is the standard library's."""

    loads = staticmethod(loads_watch_event)

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)


def use_for_kopf_watches() -> None:
    """Before kopf starts watching. kopf is pinned; tests/unit/test_fastjson.py fails if a new
    kopf no longer decodes its watch lines through this module attribute."""
    from kopf._cogs.clients import api

    setattr(api, "json", _JsonModule())  # noqa: B010 (kopf does not export the name)
