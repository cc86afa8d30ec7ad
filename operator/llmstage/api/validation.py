"""A pydantic ValidationError of the API models as one line: the field and the fix.

One formatter for every place that reports an invalid LLMService: `llmstage render` and the other
commands, and the operator's InvalidSpec condition.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic


def _field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_message(err: pydantic.ValidationError) -> str:
    """The first problem of a ValidationError as `field: message`, naming the field and the fix."""
    errors = err.errors(include_url=False)
    if not errors:
        return str(err)
    first = errors[0]
    field = _field_path(first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field: check the spelling (`kubectl explain llmservice.spec` lists the fields)"
    elif first["type"] == "missing":
        msg = "required field is missing: add it"
    elif first["type"] == "literal_error" and field in ("apiVersion", "kind"):
        msg = f"{msg} (got {first.get('input')!r})"
    # CEL rule messages already start with the field they are about.
    text = msg if msg.startswith(("spec.", "metadata.")) or not field else f"{field}: {msg}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text
