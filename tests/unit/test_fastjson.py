"""controller/fastjson.py: msgspec where kopf decodes its watch events, with the standard
library's contract (and its answer for the documents orjson refuses)."""

from __future__ import annotations

import inspect
import json

import kopf
import pytest
from kopf._cogs.clients import api
from llmstage.controller import fastjson
from llmstage.controller.handlers import NoProgress

EVENT = b'{"type":"MODIFIED","object":{"metadata":{"name":"chat","resourceVersion":"7"},"spec":{"r":1.5}}}'


def test_decodes_like_the_standard_library() -> None:
    assert fastjson.loads(EVENT) == json.loads(EVENT)
    assert fastjson.loads(EVENT.decode()) == json.loads(EVENT)
    huge = '{"spec": {"affinity": {"weight": 123456789012345678901234567890}}}'  # beyond 64 bits
    assert fastjson.loads(huge) == json.loads(huge)  # exact, not a float
    with pytest.raises(json.JSONDecodeError):  # what aiohttp's and kopf's callers expect
        fastjson.loads('{"truncated": ')


def test_kopf_watch_lines_go_through_the_hook() -> None:
    """If a kopf upgrade decodes its watch lines some other way, this fails rather than the
    operator silently losing the speed-up (or breaking)."""
    source = inspect.getsource(api.stream)
    assert "json.loads(" in source, "kopf's watch stream no longer calls json.loads: revisit fastjson.py"
    original = getattr(api, "json")  # noqa: B009 (kopf does not export the name)
    try:
        fastjson.use_for_kopf_watches()
        assert getattr(api, "json").loads is fastjson.loads_watch_event  # noqa: B009
        assert getattr(api, "json").dumps is json.dumps  # noqa: B009 (the rest stays the stdlib's)
    finally:
        setattr(api, "json", original)  # noqa: B010


def test_no_progress_storage_keeps_nothing_and_changes_nothing() -> None:
    storage = NoProgress()
    essence = kopf.BodyEssence()
    assert storage.clear(essence=essence) is essence
    body = kopf.Body({"metadata": {"name": "chat"}})
    patch = kopf.Patch()
    assert storage.fetch(key=kopf.HandlerId("x"), body=body) is None
    storage.store(key=kopf.HandlerId("x"), record={}, body=body, patch=patch)
    storage.touch(body=body, patch=patch, value="1")
    assert not patch


def test_watch_events_arrive_without_managed_fields_and_otherwise_whole() -> None:
    event = {
        "type": "MODIFIED",
        "object": {
            "metadata": {"name": "chat", "managedFields": [{"manager": "kube-controller-manager"}]},
            "status": {"readyReplicas": 1},
        },
    }
    got = fastjson.loads_watch_event(json.dumps(event))
    assert got == {
        "type": "MODIFIED",
        "object": {"metadata": {"name": "chat"}, "status": {"readyReplicas": 1}},
    }
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 410}}  # no metadata: as it came
    assert fastjson.loads_watch_event(json.dumps(error)) == error
