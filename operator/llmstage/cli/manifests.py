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

from llmstage.cli.common import guarded, parser_for

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
    p.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    from llmstage.gitops.admission import admission_policy_yaml
    from llmstage.gitops.health import argocd_cm_patch, argocd_health_lua

    if args.what == "admission-policy":
        sys.stdout.write(admission_policy_yaml())
    elif args.what == "argocd-health":
        sys.stdout.write(argocd_health_lua())
    else:
        sys.stdout.write(argocd_cm_patch(args.argocd_namespace))
    return 0
