"""`llmstage crd`: print the LLMService CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmstage.cli.common import add_output_option, format_objects, parser_for

EXAMPLES = """\
examples:
  llmstage crd > crds/llmservices.llmstage.io.yaml     # what `make generate` does
  llmstage crd | kubectl apply --server-side -f -
  llmstage crd -o json | jq '.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties | keys'
"""


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "crd", "print the LLMService CRD (YAML or JSON)", __doc__, EXAMPLES)
    add_output_option(p, "yaml", "json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmstage.api.crd import crd, crd_yaml

    # YAML as `make generate` writes it (with its header comment); JSON from the same object.
    sys.stdout.write(crd_yaml() if args.output == "yaml" else format_objects([crd()], "json"))
    return 0
