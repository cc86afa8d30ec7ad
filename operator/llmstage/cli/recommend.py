"""`llmstage recommend`: the article's decision framework as a readable answer.

Builds the LLMService a team would start from (model, expected users, stage, GPU), resolves it
exactly as the operator would, and explains the result: the runtime and why, replicas, the
per-replica concurrency (OLLAMA_NUM_PARALLEL or --max-num-seqs), tensor parallelism and the
memory-fit numbers. For vLLM it also lists the GPU products the model fits on. `--output yaml`
prints that LLMService, ready to apply (the CRD accepts it).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from llmstage.api.constants import MAX_NODES, Runtime, Stage
from llmstage.api.manifest import llmservice_object
from llmstage.cli.common import (
    CliError,
    add_gpu_option,
    dump_yaml,
    format_objects,
    format_table,
    guarded,
    parser_for,
    positive_int,
)
from llmstage.resolve.fit import layout
from llmstage.resolve.resolved import Resolved, ScaleMetric
from llmstage.resolve.sizing import GPUOption, gpu_options, resolve_object

EXAMPLES = """\
examples:
  llmstage recommend --users 2 --stage dev
  llmstage recommend --users 50 --stage production --gpu NVIDIA-L4
  llmstage recommend --users 32 --stage production --model llama3.1:70b --gpu NVIDIA-H100-80GB-HBM3:4
  llmstage recommend --users 50 --stage production --gpu NVIDIA-L4 --output yaml > llmservice.yaml

The decision (first matching row wins): no GPU -> Ollama; production -> vLLM; more than 4 users ->
vLLM; otherwise Ollama. Without --gpu, dev and staging are CPU-only and production gets one GPU
of unknown product (pass --gpu for the memory-fit check).

With --benchmark NAME (a served LLMService, -n its namespace) or --benchmark-file FILE (what
`llmstage benchmark -o json` printed), the answer also compares the users with the knee that
benchmark measured, e.g. "staging measured a knee at 4 concurrent users on ollama; stage
production expects 50".
"""

DEFAULT_MODEL = "llama3.1:8b"
# SpecErrors of the generated spec, in terms of this command's options.
OPTION_HINTS = {
    "spec.model.huggingFaceId": (
        "--model {model} is not in the catalog, so vLLM does not know which Hugging Face repository to "
        "serve: pass --hugging-face-id ORG/MODEL"
    ),
    "spec.resources.gpu.count": "--gpu: {err.message}",
    "spec.vllm.tensorParallelSize": "--gpu: {err.message}",
}


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "recommend", "runtime and sizing for a model, users and stage", __doc__, EXAMPLES
    )
    p.add_argument("--users", type=positive_int, required=True, metavar="N", help="expected concurrent users")
    p.add_argument("--stage", required=True, choices=[s.value for s in Stage], help="lifecycle stage")
    add_gpu_option(p, "GPUs per replica, e.g. NVIDIA-L4, NVIDIA-H100-80GB-HBM3:2, or 0 for CPU-only")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="M",
        help="Ollama tag or catalog name (default: %(default)s)",
    )
    p.add_argument(
        "--hugging-face-id", metavar="ORG/MODEL", help="what vLLM serves, for models outside the catalog"
    )
    p.add_argument("--name", help="metadata.name of the LLMService (default: from the model)")
    measured = p.add_mutually_exclusive_group()
    measured.add_argument(
        "--benchmark",
        metavar="SERVICE",
        help="compare with the stored benchmark of this LLMService (cluster)",
    )
    measured.add_argument(
        "--benchmark-file", metavar="FILE", help="compare with a saved `llmstage benchmark -o json` result"
    )
    p.add_argument("-n", "--namespace", metavar="NS", help="with --benchmark: its namespace")
    p.add_argument("--kubeconfig", metavar="FILE", help="with --benchmark: kubeconfig file")
    p.add_argument("--context", help="with --benchmark: kubeconfig context")
    p.add_argument(
        "--output",
        "-o",
        type=_format,
        default="table",
        metavar="{table,yaml,json}",
        help="table (default), or the LLMService as YAML (with the reasons as comments) or JSON",
    )
    p.set_defaults(func=run)


def _format(value: str) -> str:
    """table, yaml or json, like `status` and `catalog`; `text`, this command's old name for its
    table, is still taken."""
    if value == "text":
        return "table"
    if value in ("table", "yaml", "json"):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from 'table', 'yaml', 'json')")


def name_from_model(model: str) -> str:
    """'llama3.1:8b' -> 'llama3-1-8b': a valid LLMService name (DNS label, starts with a letter)."""
    name = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:52].strip("-") or "llm"
    return "llm" if name == "vllm" else name


def complete_for_runtime(obj: dict[str, Any], resolved: Resolved) -> dict[str, Any]:
    """Secret references the resolved runtime needs, and nothing it ignores."""
    from llmstage.resolve.catalog import builtin_catalog

    spec = obj["spec"]
    if resolved.runtime != Runtime.VLLM:
        spec.pop("vllm", None)
        return obj
    entry = builtin_catalog().lookup(spec["model"]["name"])
    if entry is not None and entry.gated:
        spec["huggingFaceTokenSecretRef"] = {"name": "hf-token"}
    return obj


def _replicas(resolved: Resolved) -> str:
    scale = resolved.autoscaling
    if scale is None:
        return f"{resolved.replicas} (fixed)"
    metric = (
        f"queue depth ({scale.queue_metric_name}, target {scale.target} waiting per pod)"
        if scale.metric == ScaleMetric.QUEUE
        else f"CPU ({scale.target}% of the request)"
    )
    return f"autoscaled {scale.min_replicas}-{scale.max_replicas} on {metric}"


def _cache_row(resolved: Resolved) -> str:
    cache = resolved.cache
    if cache.claim_name:
        return f"existing claim {cache.claim_name}, shared"
    if cache.per_pod:
        return f"{cache.size} {cache.access_mode} per pod (each pod downloads the model)"
    return f"{cache.size} {cache.access_mode}, shared"


def explain(resolved: Resolved, options: list[GPUOption]) -> str:
    """The readable answer."""
    baseline = (
        resolved.replicas
        if resolved.replicas is not None
        else (resolved.autoscaling.min_replicas if resolved.autoscaling else 1)
    )
    rows: list[tuple[str, str]] = [
        ("Runtime", "vLLM" if resolved.runtime == Runtime.VLLM else "Ollama"),
        ("Why", resolved.runtime_reason),
        ("Replicas", _replicas(resolved)),
    ]
    share = f"{resolved.expected_concurrency} users / {max(1, baseline or 1)} replica(s)"
    if resolved.ollama is not None:
        rows += [
            ("Parallel", f"OLLAMA_NUM_PARALLEL={resolved.ollama.num_parallel} per replica ({share})"),
            ("Context", f"OLLAMA_CONTEXT_LENGTH={resolved.ollama.context_length} tokens"),
        ]
    if resolved.vllm is not None:
        rows += [
            (
                "Batch",
                f"--max-num-seqs={resolved.vllm.max_num_seqs} per replica (spec.vllm.maxNumSeqs; {share})"
                if resolved.vllm.max_num_seqs
                else f"vLLM's default (continuous batching); {share} at full context in the KV cache",
            ),
            ("Context", f"--max-model-len={resolved.vllm.max_model_len} tokens"),
            ("Tensor parallel", f"--tensor-parallel-size={resolved.vllm.tensor_parallel_size}"),
        ]
    gpu = resolved.resources.gpu
    if gpu is not None and resolved.vllm is not None and gpu.nodes > 1:
        rows.append(
            (
                "Layout",
                f"{layout(gpu.nodes, gpu.count, gpu.product or 'GPU')}; one LeaderWorkerSet group of "
                f"{gpu.nodes} pods per replica (--pipeline-parallel-size="
                f"{resolved.vllm.pipeline_parallel_size}; needs LeaderWorkerSet in the cluster)",
            )
        )
    gpus = f", {gpu.count} x {gpu.product or 'GPU (product not given)'}" if gpu else ", no GPU"
    if gpu is not None and gpu.nodes > 1:
        gpus = f", {gpu.nodes} pods (one per node) of cpu {resolved.resources.cpu}, memory " + (
            f"{resolved.resources.memory}, {gpu.count} x {gpu.product or 'GPU (product not given)'} each"
        )
    rows += [
        (
            "Per replica",
            gpus.removeprefix(", ")
            if gpu is not None and gpu.nodes > 1
            else f"cpu {resolved.resources.cpu}, memory {resolved.resources.memory}{gpus}",
        ),
        ("Model cache", _cache_row(resolved)),
        ("Memory fit", f"{resolved.memory_fit.reason}: {resolved.memory_fit.message}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [
        f"{resolved.model.name} for {resolved.expected_concurrency} users in stage {resolved.stage.value}",
        "",
    ]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    if resolved.warnings:
        lines += ["", "Common mistakes that apply (from the article):"]
        lines += [f"  - {w.reason}: {w.message}" for w in resolved.warnings]
    if options:
        lines += [
            "",
            "GPU products for vLLM (fewest GPUs per replica that fit these settings; NODES x GPUS: one "
            "replica over several nodes):",
            "",
        ]
        table = format_table(
            ["PRODUCT", "GPUS", "FIT"],
            [
                [
                    o.product,
                    (f"{o.nodes} x {o.count}" if o.nodes > 1 else str(o.count)) if o.count else "-",
                    o.message if o.count else f"does not fit on {MAX_NODES} nodes of 8",
                ]
                for o in options
            ],
        )
        lines += ["  " + line for line in table.rstrip("\n").split("\n")]
    return "\n".join(lines) + "\n"


def yaml_output(obj: dict[str, Any], resolved: Resolved, argv_hint: str) -> str:
    header = [f"# Starting point from `{argv_hint}`.", f"# runtime auto: {resolved.runtime_reason}."]
    secrets = []
    spec = obj["spec"]
    if "vllm" in spec:
        secrets.append(
            f"kubectl create secret generic {spec['vllm']['apiKeySecretRef']['name']} "
            "--from-literal=api-key=$(openssl rand -hex 32)"
        )
    if "huggingFaceTokenSecretRef" in spec:
        secrets.append(
            "kubectl create secret generic hf-token --from-literal=token=$HF_TOKEN   # gated model"
        )
    if secrets:
        header.append("# Create the Secrets in the target namespace first:")
        header += [f"#   {s}" for s in secrets]
    return "\n".join(header) + "\n" + dump_yaml(obj)


@guarded
def run(args: argparse.Namespace) -> int:
    from llmstage.resolve import SpecError

    stage = Stage(args.stage)
    name = args.name or name_from_model(args.model)
    wants_key = stage == Stage.PRODUCTION
    obj = llmservice_object(
        model=args.model,
        users=args.users,
        stage=stage.value,
        gpu=args.gpu,
        name=name,
        hugging_face_id=args.hugging_face_id,
        api_key_secret=f"{name}-api-key" if wants_key else None,
    )
    try:
        resolved = resolve_object(obj, "--model/--gpu/--name")
        if args.gpu and args.gpu.product and args.gpu.count is None and resolved.runtime == Runtime.VLLM:
            # Only a product given: as many of it as the model needs (one when the fit is unknown).
            fitting = gpu_options(obj, (args.gpu.product,))
            if fitting and fitting[0].count:
                obj["spec"]["resources"]["gpu"]["count"] = fitting[0].count
        obj = complete_for_runtime(obj, resolved)
        resolved = resolve_object(obj, "--model/--gpu/--name")
        gpu = resolved.resources.gpu
        if gpu is not None and gpu.nodes > 1:
            # Chosen by the memory fit; written out, so the manifest says what it deploys.
            obj["spec"]["resources"]["gpu"]["nodes"] = gpu.nodes
    except SpecError as err:
        raise CliError(OPTION_HINTS.get(err.field, str(err)).format(err=err, model=args.model)) from err
    if args.output == "json":
        sys.stdout.write(format_objects([obj], "json"))
        return 0
    if args.output == "yaml":
        hint = (
            " ".join(["llmstage", *sys.argv[1:]]) if sys.argv[1:2] == ["recommend"] else "llmstage recommend"
        )
        sys.stdout.write(yaml_output(obj, resolved, hint))
        return 0
    options = gpu_options(obj) if resolved.runtime == Runtime.VLLM else []
    text = explain(resolved, options)
    measured = measured_result(args)
    if measured is not None:
        from llmstage.benchmark.advice import recommendation_notes

        notes = recommendation_notes(
            measured, resolved.runtime, resolved.stage, resolved.expected_concurrency
        )
        text += "\nMeasured (llmstage benchmark):\n" + "".join(f"  {line}\n" for line in notes)
    sys.stdout.write(text)
    return 0


def measured_result(args: argparse.Namespace) -> Any:
    """The BenchmarkResult of --benchmark (from the cluster) or --benchmark-file, or None."""
    import json

    import pydantic

    from llmstage.api.validation import validation_message
    from llmstage.benchmark.result import BenchmarkResult
    from llmstage.benchmark.store import StoredResultError, config_map_name, read_result

    if args.benchmark_file:
        from llmstage.cli.common import read_text

        try:
            doc = json.loads(read_text(args.benchmark_file))
            doc = {k: v for k, v in doc.items() if k not in ("configMap", "knee")}
            return BenchmarkResult.model_validate(doc)
        except (ValueError, AttributeError) as err:
            detail = validation_message(err) if isinstance(err, pydantic.ValidationError) else str(err)
            raise CliError(
                f"{args.benchmark_file}: not a result of `llmstage benchmark -o json`: {detail}"
            ) from err
    if not args.benchmark:
        return None
    from llmstage.cli.kubeclient import KubeCluster, client_for

    api, context_namespace = client_for(args.kubeconfig, args.context)
    namespace = args.namespace or context_namespace
    cm = KubeCluster(api).get_config_map(namespace, config_map_name(args.benchmark))
    if cm is None:
        raise CliError(
            f"--benchmark: {namespace}/{args.benchmark} has no stored benchmark (ConfigMap "
            f"{config_map_name(args.benchmark)}): run `llmstage benchmark {args.benchmark} -n {namespace}`",
            1,
        )
    try:
        return read_result(cm)
    except StoredResultError as err:
        raise CliError(f"--benchmark: {err}", 1) from err
