"""`llmstage crd`: print the LLMService CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXAMPLES = """\
examples:
  llmstage crd > crds/llmservices.llmstage.io.yaml     # what `make generate` does
  llmstage crd | kubectl apply --server-side -f -
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "crd",
        help="print the LLMService CRD (YAML)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmstage.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0
