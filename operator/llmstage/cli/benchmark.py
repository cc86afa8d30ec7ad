"""`llmstage benchmark`: measure a served LLMService the way the article did, with GuideLLM.

Runs a Job in the service's namespace that drives the service's OpenAI API (status.endpoint)
with GuideLLM at each concurrency level in turn, shows each level as it ends, then prints a
table per level and the knee (the concurrency beyond which throughput stops scaling), and
stores the result and a chart in the ConfigMap NAME-benchmark, owned by the service: the
operator reports it in status.benchmark and FollowsBestPractices, `llmstage status` shows it,
`promote --require-benchmark` checks it. The Job and its pod are deleted when it ends.

Default levels: 1, 2, 4, 8, 16, 32, 50 up to the first at least twice spec.expectedConcurrency
(one step beyond what the stage expects). With an API key (spec.vllm.apiKeySecretRef, or
spec.ollama.apiKeySecretRef checked by the gateway), the pod reads it from the service's Secret
by reference; this command never reads the Secret.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from llmstage.benchmark.job import DEFAULT_IMAGE, MAX_LEVEL, MAX_LEVELS, Options, default_levels, job_name
from llmstage.benchmark.knee import find_knee
from llmstage.benchmark.result import BenchmarkResult
from llmstage.benchmark.runner import (
    BenchmarkFailed,
    BenchmarkRefused,
    measured_service,
    network_policy_note,
    run,
    store,
    target_for,
)
from llmstage.benchmark.store import CHART_KEY, StoredResultError, config_map_name, read_result
from llmstage.cli.common import CliError, add_output_option, dump_yaml, format_table, guarded, parser_for
from llmstage.cli.kubeclient import KubeCluster, client_for

EXAMPLES = """\
examples:
  llmstage benchmark smollm2 -n llm-dev                      # default levels, 30 s each
  llmstage benchmark llama31-8b -n llm-prod --levels 1,8,32,64 --prompt-tokens 512 --output-tokens 256
  llmstage benchmark smollm2 -n llm-dev --levels 1,2 --duration 10 --chart smollm2.svg
  llmstage benchmark smollm2 -n llm-dev --last -o json      # the stored result, without running

Exit code 0 when the benchmark ran and its result is stored; 1 when it failed (the cluster, the
pod, the service's answers); 2 for bad input or a service that cannot be measured.
"""


def levels_arg(value: str) -> tuple[int, ...]:
    try:
        levels = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a comma-separated list of numbers, e.g. 1,2,4"
        ) from None
    if not levels:
        raise argparse.ArgumentTypeError("no level given, e.g. --levels 1,2,4")
    if len(set(levels)) > MAX_LEVELS:
        raise argparse.ArgumentTypeError(f"{len(set(levels))} levels: at most {MAX_LEVELS} in one benchmark")
    bad = [level for level in levels if level < 1 or level > MAX_LEVEL]
    if bad:
        raise argparse.ArgumentTypeError(
            f"level {bad[0]}: a level is a number of concurrent users, from 1 to {MAX_LEVEL}"
        )
    return tuple(sorted(set(levels)))


def bounded(low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value} must be from {low} to {high}")
        return number

    return parse


def secret_arg(value: str) -> tuple[str, str]:
    name, _, key = value.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give NAME or NAME:KEY of a Secret in the service's namespace"
        )
    return name, key or "api-key"


def node_selector_arg(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, val


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "benchmark", "measure a served LLMService with GuideLLM", __doc__, EXAMPLES)
    p.add_argument("name", metavar="NAME", help="the LLMService")
    p.add_argument("-n", "--namespace", metavar="NS", help="its namespace (default: the context's)")
    p.add_argument(
        "--levels",
        type=levels_arg,
        metavar="N,N,...",
        help="concurrency levels (default: 1,2,4,8,16,32,50 up to twice spec.expectedConcurrency)",
    )
    p.add_argument(
        "--prompt-tokens", type=bounded(1, 32768), default=256, metavar="N", help="default %(default)s"
    )
    p.add_argument(
        "--output-tokens", type=bounded(1, 32768), default=128, metavar="N", help="default %(default)s"
    )
    p.add_argument(
        "--duration",
        type=bounded(5, 3600),
        default=30,
        metavar="SECONDS",
        help="per level (default %(default)s)",
    )
    p.add_argument("--image", default=DEFAULT_IMAGE, help="the benchmark image (default %(default)s)")
    p.add_argument(
        "--tokenizer",
        metavar="DIR_OR_HF_ID",
        help="tokenizer for the synthetic prompts (default: SmolLM2's, in the image; a Hub id needs network)",
    )
    p.add_argument(
        "--api-key-secret",
        type=secret_arg,
        metavar="NAME[:KEY]",
        help="Secret with the key to send (default: the serving runtime's spec.*.apiKeySecretRef)",
    )
    p.add_argument(
        "--node-selector",
        type=node_selector_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="where the benchmark pod may run (repeatable)",
    )
    p.add_argument(
        "--toleration",
        action="append",
        default=[],
        metavar="KEY",
        help="taint key the pod tolerates (repeatable)",
    )
    p.add_argument("--chart", type=Path, metavar="FILE", help="also write the chart (SVG) here")
    p.add_argument("--last", action="store_true", help="show the stored result instead of running")
    p.add_argument("--keep-job", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    add_output_option(p, "table", "yaml", "json")
    p.set_defaults(func=run_command)


def table(result: BenchmarkResult) -> str:
    rows = []
    for lv in sorted(result.levels, key=lambda lv: lv.concurrency):
        ttft, itl = lv.time_to_first_token_ms, lv.inter_token_latency_ms
        rows.append(
            [
                str(lv.concurrency),
                f"{lv.requests_per_second:.2f}",
                f"{lv.output_tokens_per_second:.1f}",
                f"{ttft.p50:.0f} / {ttft.p95:.0f} / {ttft.p99:.0f}",
                f"{itl.p50:.1f} / {itl.p95:.1f} / {itl.p99:.1f}",
                f"{lv.requests.completed}",
                f"{lv.requests.errored}",
            ]
        )
    return format_table(
        ["USERS", "REQ/S", "OUT TOK/S", "TTFT MS P50/P95/P99", "ITL MS P50/P95/P99", "OK", "ERRORS"], rows
    )


def report(result: BenchmarkResult, stored_as: str) -> str:
    service, settings = result.service, result.settings
    knee = find_knee(result.levels)
    head = (
        f"{service.namespace}/{service.name}: {service.runtime.value} in stage {service.stage.value}, "
        f"{service.ready_replicas} ready pod(s), model {service.served_model_name}; "
        f"{settings.prompt_tokens} prompt and {settings.output_tokens} output tokens per request, "
        f"{settings.duration_seconds:g} s per level ({settings.tool}), "
        f"{result.finished_at:%Y-%m-%d %H:%M} UTC\n\n"
    )
    where = (
        f"knee at {knee.concurrency} concurrent users"
        if knee.concurrency is not None
        else f"no knee up to {knee.highest} concurrent users"
    )
    errors = [
        f"  errors at {lv.concurrency} users: {'; '.join(lv.errors)}\n" for lv in result.levels if lv.errors
    ]
    return (
        head
        + table(result)
        + "".join(errors)
        + f"\n{where}: {knee.message}\n"
        + f"stored in ConfigMap {stored_as} (result.json, chart.svg); status.benchmark follows\n"
    )


def _progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def result_document(result: BenchmarkResult, stored_as: str) -> dict[str, Any]:
    """What `-o json|yaml` prints: the stored result, with the knee and where it is stored."""
    return {
        "configMap": stored_as,
        "knee": find_knee(result.levels).concurrency,
        **result.model_dump(mode="json"),
    }


def _output(
    result: BenchmarkResult, stored_as: str, output: str, chart: str, chart_file: Path | None
) -> None:
    if chart_file is not None:
        chart_file.write_text(chart)
        print(f"wrote {chart_file}", file=sys.stderr)
    if output == "table":
        sys.stdout.write(report(result, stored_as))
        return
    doc = result_document(result, stored_as)
    if output == "json":
        import json

        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(dump_yaml(doc))


def _service(cluster: KubeCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.get_service(namespace, name)
    if obj is None:
        raise CliError(
            f"no LLMService {name} in namespace {namespace}: `llmstage status -n {namespace}` lists them"
        )
    return obj


def _options(args: argparse.Namespace, service: dict[str, Any]) -> Options:
    users = int((service.get("spec") or {}).get("expectedConcurrency", 1))
    return Options(
        levels=args.levels or default_levels(users),
        prompt_tokens=args.prompt_tokens,
        output_tokens=args.output_tokens,
        duration_seconds=args.duration,
        image=args.image,
        tokenizer=args.tokenizer,
        node_selector=dict(args.node_selector),
        tolerations=tuple(args.toleration),
    )


def _show_last(cluster: KubeCluster, namespace: str, name: str, args: argparse.Namespace) -> int:
    cm = cluster.get_config_map(namespace, config_map_name(name))
    if cm is None:
        raise CliError(
            f"{namespace}/{name} has no stored benchmark (ConfigMap {config_map_name(name)}): run "
            f"`llmstage benchmark {name} -n {namespace}`",
            1,
        )
    try:
        result = read_result(cm)
    except StoredResultError as err:
        raise CliError(f"{err}; run `llmstage benchmark {name} -n {namespace}` to replace it", 1) from err
    _output(result, config_map_name(name), args.output, (cm.get("data") or {}).get(CHART_KEY, ""), args.chart)
    return 0


@guarded
def run_command(args: argparse.Namespace) -> int:
    api, context_namespace = client_for(args.kubeconfig, args.context)
    namespace = args.namespace or context_namespace
    cluster = KubeCluster(api)
    if args.last:
        return _show_last(cluster, namespace, args.name, args)
    service = _service(cluster, namespace, args.name)
    try:
        target = target_for(service, args.api_key_secret)
        options = _options(args, service)
        note = network_policy_note(service)
        if note:
            _progress(f"note: {note}")
        result = run(cluster, target, measured_service(service), options, _progress, keep_job=args.keep_job)
    except BenchmarkRefused as err:
        raise CliError(str(err)) from err
    except BenchmarkFailed as err:
        raise CliError(f"{err} (Job {job_name(args.name)} deleted)", 1) from err
    stored_as = store(cluster, result, target.uid)
    from llmstage.benchmark.chart import svg_chart

    _output(result, stored_as, args.output, svg_chart(result), args.chart)
    return 0
