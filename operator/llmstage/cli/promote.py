"""`llmstage promote`: move an LLMService manifest to the next stage and show the diff.

What changes: spec.stage, --gpu / --api-key-secret when given, and fields that only made sense
for the old runtime when the promotion switches Ollama -> vLLM (CPU/memory sized for Ollama, a
cpu autoscaling metric, a GGUF format or quantization), plus a fixed single replica going to
production (production's autoscaler keeps at least two). What never changes: metadata.name,
namespace and the served model name, so clients keep their URL and `model` string.

The result goes through the same validation as the API server (the CRD's rules) and the
operator (resolve); the promotion is refused, with the option that fixes it, when the target
stage lacks something it needs: a GPU for vLLM, an API key Secret in production. Comments and
formatting of the file are kept.

--require-benchmark also asks the cluster for the service's stored `llmstage benchmark` result
(the LLMService named in the file, in -n NAMESPACE, default the file's metadata.namespace, else
the context's) and refuses the promotion when there is none, when it measured an older
generation of the service, or when it misses the promoted file's spec.latencyTarget at the
users the target stage expects (docs/decision-framework.md).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from llmstage.api.constants import Stage
from llmstage.cli.common import (
    STDIN,
    CliError,
    add_gpu_option,
    display_name,
    guarded,
    parser_for,
    read_text,
    warn,
)
from llmstage.gitops.promotion import promote_text

EXAMPLES = """\
examples:
  llmstage promote -f llmservice.yaml --to staging                 # in place, prints the diff
  llmstage promote -f staging.yaml --to production --output-file production.yaml \\
      --gpu NVIDIA-H100-80GB-HBM3 --api-key-secret llama31-8b-api-key
  llmstage promote -f llmservice.yaml --to production --gpu NVIDIA-L4:2 --dry-run
  llmstage promote -f llmservice.yaml --to production --cpu --api-key-secret smol-api-key
  cat llmservice.yaml | llmstage promote -f - --to staging -o yaml # manifest to stdout, diff to stderr
  llmstage promote -f staging.yaml --to production --gpu NVIDIA-L4 --api-key-secret chat-key \
      --require-benchmark -n llm-staging                           # needs a current benchmark result

-o is the output format, as in every llmstage command: diff (the default) writes the manifest
(in place, or to --output-file) and prints the diff; yaml prints the promoted manifest instead
and writes nothing.

Stages only move forward (dev -> staging -> production). Exit code 2 when the promotion is
refused (the message names the option or field to set); nothing is written then.
"""


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "promote", "promote an LLMService manifest to the next stage", __doc__, EXAMPLES
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="LLMService manifest ('-': stdin)")
    p.add_argument(
        "--to", required=True, choices=[Stage.STAGING.value, Stage.PRODUCTION.value], help="target stage"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "-o",
        "--output",
        type=output_format,
        default="diff",
        metavar="FORMAT",
        help="diff (default): write the manifest, print the diff; yaml: print the manifest (diff on stderr)",
    )
    p.add_argument(
        "--output-file", metavar="FILE", help="write the manifest here instead of into -f FILE ('-': stdout)"
    )
    where = p.add_mutually_exclusive_group()
    add_gpu_option(where, "set spec.resources.gpu, e.g. NVIDIA-L4 or NVIDIA-H100-80GB-HBM3:2 (vLLM on GPUs)")
    where.add_argument(
        "--cpu",
        action="store_true",
        help="vLLM's CPU image on CPU nodes: sets spec.runtime vllm and spec.resources.gpu.count 0",
    )
    p.add_argument(
        "--api-key-secret",
        metavar="NAME",
        help="set spec.vllm.apiKeySecretRef.name: a Secret with key 'api-key' (production vLLM needs one)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    p.add_argument(
        "--require-benchmark",
        action="store_true",
        help="refuse without a current stored benchmark that meets the promoted spec.latencyTarget",
    )
    p.add_argument("-n", "--namespace", metavar="NS", help="with --require-benchmark: where the service runs")
    p.add_argument("--kubeconfig", metavar="FILE", help="with --require-benchmark: kubeconfig file")
    p.add_argument("--context", help="with --require-benchmark: kubeconfig context")
    p.set_defaults(func=run)


FORMATS = ("diff", "yaml")


def output_format(value: str) -> str:
    """-o takes a format; a file name there (what -o meant here before) gets the option it needs."""
    if value in FORMATS:
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not an output format (diff, yaml): -o names the format, as in every llmstage "
        f"command; to write the manifest to a file, pass --output-file {value}"
    )


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name)
    )


def require_benchmark(args: argparse.Namespace, promoted: str, source: str) -> list[str]:
    """The gate (benchmark/gate.py) for every LLMService of the promoted file; its notes."""
    from llmstage.api.manifest import parse_llmservices
    from llmstage.benchmark.gate import GateRefused, check
    from llmstage.benchmark.store import StoredResultError, config_map_name, read_result
    from llmstage.cli.kubeclient import KubeCluster, client_for
    from llmstage.resolve import resolve

    api, context_namespace = client_for(args.kubeconfig, args.context)
    cluster = KubeCluster(api)
    notes: list[str] = []
    for manifest in parse_llmservices(promoted, source):
        body_ns = manifest.body.get("metadata", {}).get("namespace")
        namespace = args.namespace or body_ns or context_namespace
        name = manifest.service.metadata.name
        where = f"{namespace}/{name}"
        live = cluster.get_service(namespace, name)
        if live is None:
            raise CliError(
                f"--require-benchmark: no LLMService {where} in the cluster to take a benchmark from; pass "
                "-n NAMESPACE where it runs"
            )
        cm = cluster.get_config_map(namespace, config_map_name(name))
        resolved = resolve(manifest.service)
        try:
            stored = read_result(cm) if cm is not None else None
        except StoredResultError as err:
            raise CliError(
                f"--require-benchmark: {err}; run `llmstage benchmark {name} -n {namespace}`"
            ) from err
        try:
            notes += check(
                stored,
                where=where,
                name=name,
                namespace=namespace,
                live_generation=int(live["metadata"].get("generation", 0)),
                stage=resolved.stage,
                users=resolved.expected_concurrency,
                target=resolved.latency_target,
            )
        except GateRefused as err:
            raise CliError(str(err)) from err
    return notes


@guarded
def run(args: argparse.Namespace) -> int:
    to_stdout = args.output == "yaml" or args.output_file == STDIN
    if args.output == "yaml" and args.output_file not in (None, STDIN):
        raise CliError("-o yaml prints the manifest and writes no file: drop --output-file, or -o yaml")
    if args.filename == STDIN and not args.output_file and not to_stdout and not args.dry_run:
        raise CliError(
            "-f - reads stdin, so there is no file to update in place: pass --output-file FILE, or -o yaml "
            "for stdout"
        )
    source = display_name(args.filename)
    text = read_text(args.filename)
    result = promote_text(text, source, Stage(args.to), args.gpu, args.api_key_secret, cpu=args.cpu)
    notes = list(result.notes)
    if args.require_benchmark:
        notes += require_benchmark(args, result.text, source)
    target = STDIN if to_stdout else args.output_file or args.filename
    diff = unified_diff(text, result.text, source, display_name(target) if not to_stdout else "<stdout>")
    (sys.stderr if to_stdout else sys.stdout).write(diff or f"# {source}: nothing to change\n")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in result.warnings:
        warn(warning)
    if args.dry_run:
        return 0
    if to_stdout:
        sys.stdout.write(result.text)
    else:
        Path(target).write_text(result.text, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    return 0
