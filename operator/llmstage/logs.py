"""The operator's logs: JSON lines (python-json-logger) or text, with the LLMService being
reconciled as fields.

Every line logged while a reconcile runs carries `namespace`, `name`, `generation` and
`reconcile_id` (one id per reconcile pass, to follow a pass across its lines); they come from a
context variable the reconciler sets, so no call site has to pass them. JSON is for log
pipelines, text for people: `--log-format auto` (the default) writes text to a terminal and
JSON anywhere else.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

# What the running reconcile is about; empty outside of one.
_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("llmstage_log_context", default={})  # noqa: B039
_ATTR = "llmstage_context"


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line of this task (and tasks it starts) inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def annotate(**fields: Any) -> None:
    """Add `fields` to the current context (e.g. the generation, once the reconcile read it)."""
    current = _CONTEXT.get()
    if current:
        current.update(fields)
    else:
        _CONTEXT.set(dict(fields))


class ContextFilter(logging.Filter):
    """Copies the context onto each record (as one attribute: `name` is taken by the logger's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, _ATTR):
            setattr(record, _ATTR, _CONTEXT.get())
        return True


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonLines(JsonFormatter):
    """{"time", "level", "logger", "message", then namespace, name, generation, reconcile_id
    inside a reconcile, then any `extra` fields, then "exc_info" for a traceback}."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            # kopf's per-object records carry its settings object and a reference: not fields.
            reserved_attrs=[*_RESERVED, _ATTR, "settings", "k8s_skip", "k8s_ref"],
        )

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_record["time"] = _utc(record)
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = str(log_record.get("level", record.levelname)).lower()
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):  # a kopf line about one object
            log_record.update({k: ref[k] for k in ("namespace", "name") if ref.get(k)})
        log_record.update(getattr(record, _ATTR, None) or {})


class Text(logging.Formatter):
    """`TIME LEVEL logger: message [namespace/name gen=N reconcile=ID]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = getattr(record, _ATTR, None) or {}
        if ctx:
            where = f"{ctx.get('namespace', '')}/{ctx.get('name', '')}"
            rest = " ".join(
                f"{short}={ctx[key]}"
                for key, short in (("generation", "gen"), ("reconcile_id", "reconcile"))
                if key in ctx
            )
            suffix = f" [{where} {rest}]" if rest else f" [{where}]"
            first, nl, tail = line.partition("\n")  # after the message, before a traceback
            line = first + suffix + nl + tail
        return line


_RESERVED = [
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname",
    "levelno", "lineno", "module", "msecs", "message", "msg", "name", "pathname", "process",
    "processName", "relativeCreated", "stack_info", "thread", "threadName", "taskName",
]  # fmt: skip


def resolve_format(fmt: str, stream: IO[str]) -> str:
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure(fmt: str, level: str, stream: IO[str] | None = None) -> str:
    """Route every logger to `stream` (stderr) in `fmt` (auto, text, json); returns the format used."""
    stream = stream or sys.stderr
    used = resolve_format(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines() if used == "json" else Text())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf logs every watch event at debug/info; keep it at warning unless debugging.
    logging.getLogger("kopf").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    return used
