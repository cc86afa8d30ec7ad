"""`llmstage render`: print exactly the objects the operator applies for an LLMService, offline.

Same code path as the operator (resolve, then llmstage.render.desired.desired_objects: the renderers
plus the ownerReference), so a pull request can show the Deployment, Service, autoscaler, ...
a change produces. The output is the steady state; during a runtime cutover the operator also
keeps the old runtime's objects until the Service's endpoints have moved.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmstage.cli.common import (
    CliError,
    add_defaults_option,
    add_output_option,
    format_objects,
    guarded,
    load_defaults,
    load_llmservices,
    parser_for,
    warn,
)
from llmstage.controller.config import DEFAULT_MONITORING_NAMESPACE

EXAMPLES = """\
examples:
  llmstage render -f examples/llama31-8b-production.yaml
  llmstage render -f llmservice.yaml -n team-a --pod-monitor > rendered.yaml
  kubectl kustomize overlays/production | llmstage render -f -
  llmstage render -f llmservice.yaml | kubectl diff -f -      # after the LLMService exists (--uid)
  llmstage render -f llmservice.yaml --defaults serving-defaults.yaml   # the install's defaults too

The ownerReference needs the LLMService's uid, which exists only in the cluster: it is taken from
metadata.uid or --uid, and left empty otherwise. Warnings (the article's common mistakes that
apply) go to stderr, the objects to stdout.
"""


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "render", "print the objects the operator would apply (YAML or JSON)", __doc__, EXAMPLES
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="LLMService manifest ('-': stdin)")
    p.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="namespace to render for (default: metadata.namespace, else 'default')",
    )
    p.add_argument("--uid", help="uid of the LLMService for the ownerReference (default: metadata.uid)")
    add_output_option(p, "yaml", "json")
    add_defaults_option(p)
    facts = p.add_argument_group("cluster facts (what the operator detects at start-up)")
    facts.add_argument(
        "--pod-monitor",
        action="store_true",
        help="the cluster has the PodMonitor CRD (monitoring.coreos.com/v1): render vLLM's PodMonitor",
    )
    facts.add_argument(
        "--monitoring-namespace",
        default=DEFAULT_MONITORING_NAMESPACE,
        metavar="NS",
        help="the operator's --monitoring-namespace, admitted to vLLM's /metrics (default: %(default)s)",
    )
    p.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    from llmstage.render.desired import desired_objects
    from llmstage.render.rollout import rollout_findings
    from llmstage.resolve import SpecError, resolve
    from llmstage.resolve.resolved import ClusterFacts

    facts = ClusterFacts(
        pod_monitor_crd=args.pod_monitor, monitoring_namespace=args.monitoring_namespace or None
    )
    serving_defaults = load_defaults(args.defaults)
    manifests = load_llmservices(args.filename)
    if args.uid and len(manifests) > 1:
        raise CliError(f"--uid applies to one LLMService, but {args.filename} has {len(manifests)}")
    out: list[str] = []
    objects: list[dict[str, Any]] = []
    for manifest in manifests:
        meta: dict[str, Any] = {}
        if args.namespace:
            meta["namespace"] = args.namespace
        if args.uid:
            meta["uid"] = args.uid
        service = manifest.service.model_copy(
            update={"metadata": manifest.service.metadata.model_copy(update=meta)}
        )
        label = f"{manifest.source} (LLMService {service.metadata.name})"
        try:
            resolved = resolve(service, serving_defaults=serving_defaults)
        except SpecError as err:
            raise CliError(f"{label}: {err}") from err
        for finding in resolved.warnings + rollout_findings(resolved):
            warn(f"{service.metadata.namespace}/{service.metadata.name}: {finding.reason}: {finding.message}")
        header = (
            f"# LLMService {resolved.namespace}/{resolved.name}: {resolved.runtime_reason}\n"
            f"# ModelFits {resolved.memory_fit.reason}: {resolved.memory_fit.message}\n"
        )
        if not resolved.uid:
            header += (
                "# ownerReferences[].uid is empty: the operator sets the LLMService's uid (or pass --uid)\n"
            )
        rendered = desired_objects(resolved, facts)
        objects.extend(rendered)
        out.append(format_objects(rendered, "yaml", header))
    # JSON has no comments: the decision and the fit are in the warnings on stderr and in status.
    sys.stdout.write("---\n".join(out) if args.output == "yaml" else format_objects(objects, "json"))
    return 0
