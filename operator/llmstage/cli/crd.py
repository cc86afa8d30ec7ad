"""`llmstage crd`: print the LLMService CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmstage.cli.common import parser_for

EXAMPLES = """\
examples:
  llmstage crd > crds/llmservices.llmstage.io.yaml     # what `make generate` does
  llmstage crd | kubectl apply --server-side -f -
"""


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "crd", "print the LLMService CRD (YAML)", __doc__, EXAMPLES)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmstage.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0
