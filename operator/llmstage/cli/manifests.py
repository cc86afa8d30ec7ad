"""`llmstage manifests`: print the cluster-level manifests that ship next to the operator.

One source for the Helm chart, the docs and the tests: the chart copies these outputs (and a
test fails when its copies drift).

  admission-policy  ValidatingAdmissionPolicy + binding: apply-time warnings (validationActions
                    [Warn]) for Ollama in production, Ollama above 4 users and GGUF on vLLM
  argocd-health     the Argo CD Lua health check for llmstage.io/LLMService
  argocd-cm         the same check as an argocd-cm ConfigMap patch
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from llmstage.cli.common import CliError, add_output_option, format_objects, guarded, parser_for

EXAMPLES = """\
examples:
  llmstage manifests admission-policy | kubectl apply --server-side -f -
  llmstage manifests argocd-cm > argocd-cm-llmstage.yaml
  kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm-llmstage.yaml
  llmstage manifests argocd-health > health.lua
"""

WHAT = ("admission-policy", "argocd-health", "argocd-cm")


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "manifests", "print the admission policy or the Argo CD health check", __doc__, EXAMPLES
    )
    p.add_argument("what", choices=WHAT, help="which manifest")
    p.add_argument(
        "--argocd-namespace",
        default="argocd",
        metavar="NS",
        help="namespace of argocd-cm (default: %(default)s)",
    )
    add_output_option(p, "yaml", "json")
    p.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    from llmstage.gitops.admission import admission_policy, admission_policy_yaml
    from llmstage.gitops.health import argocd_cm_patch, argocd_health_lua

    if args.what == "argocd-health":
        if args.output == "json":
            raise CliError(
                "argocd-health is a Lua script, not an object: drop -o json (argocd-cm is the object)"
            )
        sys.stdout.write(argocd_health_lua())
    elif args.output == "yaml":
        text = (
            admission_policy_yaml()
            if args.what == "admission-policy"
            else argocd_cm_patch(args.argocd_namespace)
        )
        sys.stdout.write(text)
    else:
        objects = (
            admission_policy()
            if args.what == "admission-policy"
            else [yaml.safe_load(argocd_cm_patch(args.argocd_namespace))]
        )
        sys.stdout.write(format_objects(objects, "json"))
    return 0
