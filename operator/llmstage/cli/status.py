"""`llmstage status`: a table of LLMServices and what, if anything, is wrong with each.

Columns: namespace (with -A), name, stage, runtime, ready (the Ready condition and ready/desired
pods), endpoint, the last benchmark (status.benchmark: its knee, the runtime and stage it measured,
its date; `llmstage benchmark NAME --last` shows it whole), and the message of every condition
that is not as it should be (Ready not True,
Stalled or Reconciling True, RuntimeSelected / ModelFits / FollowsBestPractices False), or that
the operator has not yet observed the latest generation.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmstage.cli.common import CliError, add_output_option, format_objects, format_table, guarded, parser_for
from llmstage.cli.kubeclient import client_for

EXAMPLES = """\
examples:
  llmstage status                       # the kubeconfig context's namespace
  llmstage status -n team-a
  llmstage status -A --kubeconfig .cluster/kubeconfig

Exit code 0 when the list could be read, whatever the services' health; 1 when the API server
cannot be reached or refuses; 2 for a missing or broken kubeconfig.
"""

GROUP, VERSION, PLURAL = "llmstage.io", "v1alpha1", "llmservices"
# The status each condition should have; any other status is shown with its message.
EXPECTED = {
    "Ready": "True",
    "Stalled": "False",
    "Reconciling": "False",
    "RuntimeSelected": "True",
    "ModelFits": "True",
    "FollowsBestPractices": "True",
}
# Shown only when False: Unknown means the fit could not be computed, which is not a problem.
ONLY_WHEN_FALSE = {"ModelFits"}


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "status", "table of LLMServices with their readiness and problems", __doc__, EXAMPLES
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    add_output_option(p, "table", "yaml", "json")
    p.set_defaults(func=run)


def problems(obj: dict[str, Any]) -> list[str]:
    """`Type: message` for every condition that is not as it should be, most important first."""
    status = obj.get("status") or {}
    if not status:
        return ["no status yet: is the llmstage operator running and watching this namespace?"]
    out = []
    generation = obj.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed != generation:
        out.append(f"generation {generation} not yet observed by the operator (observed: {observed})")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    for ctype, expected in EXPECTED.items():
        cond = conditions.get(ctype)
        if cond is None or cond.get("status") == expected:
            continue
        if ctype in ONLY_WHEN_FALSE and cond.get("status") != "False":
            continue
        if ctype == "Reconciling" and conditions.get("Ready", {}).get("status") != "True":
            continue  # its message repeats Ready's
        if ctype == "Ready" and conditions.get("Stalled", {}).get("status") == "True":
            continue  # Stalled says the same, with the reason
        message = cond.get("message") or cond.get("reason") or ""
        out.append(f"{ctype}={cond.get('status')} {cond.get('reason', '')}: {message}".rstrip(": "))
    return out


def benchmark_cell(status: dict[str, Any]) -> str:
    """status.benchmark in a few words: 'knee 4 on ollama/staging 2026-12-07'."""
    bench = status.get("benchmark")
    if not bench:
        return "-"
    levels = bench.get("levels") or []
    knee = f"knee {bench['knee']}" if bench.get("knee") else f"no knee to {max(levels, default='?')}"
    day = str(bench.get("finishedAt", ""))[:10]
    return f"{knee} on {bench.get('runtime', '?')}/{bench.get('stage', '?')} {day}".rstrip()


def row(obj: dict[str, Any], with_namespace: bool) -> list[str]:
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    spec = obj.get("spec") or {}
    ready_cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    ready = ready_cond.get("status", "Unknown") if ready_cond else "Unknown"
    pods = f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"
    cells = [
        meta.get("name", ""),
        status.get("stage") or spec.get("stage", "dev"),
        status.get("runtime") or "-",
        f"{ready} {pods}",
        status.get("endpoint") or "-",
        benchmark_cell(status),
        "\n".join(problems(obj)) or "-",
    ]
    return [meta.get("namespace", ""), *cells] if with_namespace else cells


def table(items: list[dict[str, Any]], with_namespace: bool) -> str:
    headers = ["NAME", "STAGE", "RUNTIME", "READY", "ENDPOINT", "BENCHMARK", "PROBLEMS"]
    if with_namespace:
        headers = ["NAMESPACE", *headers]
    ordered = sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return format_table(headers, [row(o, with_namespace) for o in ordered])


@guarded
def run(args: argparse.Namespace) -> int:
    from llmstage.cli.kubeclient import LLMSERVICE
    from llmstage.kubeapi.errors import ApiError

    api, context_namespace = client_for(args.kubeconfig, args.context)
    namespace = None if args.all_namespaces else (args.namespace or context_namespace)
    try:
        items = api.list(LLMSERVICE, namespace)
    except ApiError as err:
        if err.status == 404:
            raise CliError(
                "the LLMService CRD is not installed: `llmstage crd | kubectl apply --server-side -f -` "
                "(or install the llmstage chart)",
                1,
            ) from err
        raise
    if args.output != "table":
        # The LLMServices as the API server has them (status included), for scripts.
        sys.stdout.write(format_objects(items, args.output, as_list=True))
        return 0
    if not items:
        where = "in any namespace" if namespace is None else f"in namespace {namespace}"
        print(f"No LLMServices found {where}.", file=sys.stderr)
        return 0
    sys.stdout.write(table(items, with_namespace=namespace is None))
    return 0
