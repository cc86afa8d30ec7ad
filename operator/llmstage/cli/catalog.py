"""`llmstage catalog`: the models llmstage knows by name, with what it derives from each.

A catalog model needs only `spec.model.name`: the catalog gives vLLM its Hugging Face repository
and the memory-fit check its shape (parameters, layers, heads, context). A model outside the
catalog works too, with `spec.model.huggingFaceId` for vLLM and `spec.model.architecture` for the
fit (docs/api.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmstage.cli.common import add_output_option, dump_yaml, format_table, guarded, parser_for

EXAMPLES = """\
examples:
  llmstage catalog
  llmstage catalog -o yaml                                   # every field, as the catalog file has it
  llmstage catalog -o json | jq -r '.[] | select(.gated) | .name'
"""


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "catalog", "the models llmstage knows by name", __doc__, EXAMPLES)
    add_output_option(p, "table", "yaml", "json")
    p.set_defaults(func=run)


def row(entry: Any) -> list[str]:
    return [
        entry.name,
        entry.hugging_face_id + (" (gated)" if entry.gated else ""),
        f"{entry.parameters_billion:g}B",
        str(entry.context_length),
        ", ".join(entry.aliases) or "-",
    ]


@guarded
def run(args: argparse.Namespace) -> int:
    import json

    from llmstage.resolve.catalog import builtin_catalog

    entries = builtin_catalog().entries
    if args.output == "table":
        headers = ["NAME", "HUGGING FACE ID (vLLM)", "PARAMETERS", "CONTEXT", "ALIASES"]
        sys.stdout.write(format_table(headers, [row(e) for e in entries]))
        return 0
    dumped = [e.model_dump(by_alias=True, exclude_none=True, mode="json") for e in entries]
    sys.stdout.write(dump_yaml(dumped) if args.output == "yaml" else json.dumps(dumped, indent=2) + "\n")
    return 0
