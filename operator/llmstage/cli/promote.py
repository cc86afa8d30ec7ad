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
"""

from __future__ import annotations

import argparse
import difflib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from llmstage.api.manifest import GPUChoice, gpu_spec, is_llmservice
from llmstage.api.models import Runtime, Stage
from llmstage.api.validation import validation_message
from llmstage.cli.common import (
    STDIN,
    CliError,
    display_name,
    guarded,
    parse_gpu,
    parser_for,
    read_text,
    warn,
)
from llmstage.resolve.mistakes import is_gguf_quantization
from llmstage.resolve.resolved import Resolved

EXAMPLES = """\
examples:
  llmstage promote -f llmservice.yaml --to staging                 # in place, prints the diff
  llmstage promote -f staging.yaml --to production -o production.yaml \\
      --gpu NVIDIA-H100-80GB-HBM3 --api-key-secret llama31-8b-api-key
  llmstage promote -f llmservice.yaml --to production --gpu NVIDIA-L4:2 --dry-run
  cat llmservice.yaml | llmstage promote -f - --to staging -o -    # manifest to stdout, diff to stderr

Stages only move forward (dev -> staging -> production). Exit code 2 when the promotion is
refused (the message names the option or field to set); nothing is written then.
"""

ORDER = {Stage.DEV: 0, Stage.STAGING: 1, Stage.PRODUCTION: 2}


def register(subparsers: Any) -> None:
    p = parser_for(
        subparsers, "promote", "promote an LLMService manifest to the next stage", __doc__, EXAMPLES
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="LLMService manifest ('-': stdin)")
    p.add_argument(
        "--to", required=True, choices=[Stage.STAGING.value, Stage.PRODUCTION.value], help="target stage"
    )
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of FILE ('-': stdout)")
    p.add_argument(
        "--gpu",
        type=parse_gpu,
        metavar="PRODUCT[:COUNT]",
        help="set spec.resources.gpu, e.g. NVIDIA-L4 or NVIDIA-H100-80GB-HBM3:2 (vLLM needs one)",
    )
    p.add_argument(
        "--api-key-secret",
        metavar="NAME",
        help="set spec.vllm.apiKeySecretRef.name: a Secret with key 'api-key' (production vLLM needs one)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    p.set_defaults(func=run)


@dataclass
class Promotion:
    text: str  # the promoted file
    notes: list[str] = field(default_factory=list)  # what changed beyond the stage, and why
    warnings: list[str] = field(default_factory=list)  # the article's mistakes the result still makes


# ---------------------------------------------------------------- YAML that keeps comments


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    try:
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
        yaml.indent(
            mapping=indent or 2,
            sequence=(indent or 2) + (block_seq_indent or 0),
            offset=block_seq_indent or 0,
        )
    except Exception:  # multi-document files: keep ruamel's defaults
        yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _plain(value: Any) -> Any:
    """ruamel's commented containers and scalars as plain Python, for validation."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _child(parent: Any, key: str) -> Any:
    """parent[key] as a mapping, created (at the end) when absent."""
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(parent.get(key), dict):
        parent[key] = CommentedMap()
    return parent[key]


def _set_first(parent: Any, key: str, value: Any) -> None:
    if key in parent:
        parent[key] = value
    else:
        parent.insert(0, key, value)


# ---------------------------------------------------------------- the promotion


def _validate(doc: Any, label: str) -> Resolved:
    """The document as the API server and then the operator see it; errors name the fix."""
    from llmstage.api.models import LLMService
    from llmstage.resolve import SpecError, resolve

    try:
        service = LLMService.from_object(_plain(doc))
    except pydantic.ValidationError as err:
        message = validation_message(err)
        if "apiKeySecretRef" in message:
            raise CliError(_api_key_refusal(label)) from err
        raise CliError(f"{label}: the promoted manifest would be rejected: {message}") from err
    try:
        return resolve(service)
    except SpecError as err:
        if err.field == "spec.vllm.apiKeySecretRef":
            raise CliError(_api_key_refusal(label)) from err
        if err.field in ("spec.resources.gpu.count", "spec.vllm.tensorParallelSize"):
            raise CliError(f"{label}: {err}; or pass --gpu PRODUCT[:COUNT]") from err
        raise CliError(f"{label}: the promoted manifest cannot be served: {err}") from err


def _api_key_refusal(label: str) -> str:
    return (
        f"{label}: stage production serves vLLM only with an API key: pass --api-key-secret NAME "
        "(a Secret with key 'api-key' in the production namespace) or set spec.vllm.apiKeySecretRef.name"
    )


def _gpu_refusal(label: str, problem: str) -> str:
    return (
        f"{label}: stage production runs vLLM, which needs a GPU, but {problem}: pass --gpu PRODUCT[:COUNT] "
        "(e.g. --gpu NVIDIA-L4 or --gpu NVIDIA-H100-80GB-HBM3:2) or set spec.resources.gpu"
    )


def promote_document(
    doc: Any, label: str, target: Stage, gpu: GPUChoice | None, api_key: str | None
) -> Promotion:
    """Promote one LLMService document in place (a ruamel mapping). Raises CliError when refused."""
    before = _validate(doc, label)
    current = before.stage
    if ORDER[target] < ORDER[current]:
        raise CliError(
            f"{label}: is at stage {current}; promote moves forward only (dev -> staging -> production): "
            "to go back, edit spec.stage"
        )
    spec = doc["spec"]
    out = Promotion(text="")
    if target != current:
        _set_first(spec, "stage", target.value)
    if gpu is not None:
        gpu_node = _child(_child(spec, "resources"), "gpu")
        gpu_node.clear()
        gpu_node.update(gpu_spec(gpu))
        given = ", ".join(f"{k} {v}" for k, v in gpu_spec(gpu).items())
        out.notes.append(f"spec.resources.gpu set from --gpu: {given}")
    if api_key is not None:
        _child(_child(spec, "vllm"), "apiKeySecretRef")["name"] = api_key
        out.notes.append(f"spec.vllm.apiKeySecretRef.name set from --api-key-secret: {api_key}")

    if target == Stage.PRODUCTION and spec.get("runtime", "auto") != Runtime.OLLAMA.value:
        gpu_node = (spec.get("resources") or {}).get("gpu")
        if gpu_node is None:
            raise CliError(_gpu_refusal(label, "spec.resources.gpu is not set"))
        if gpu_node.get("count", 1) == 0:
            raise CliError(_gpu_refusal(label, "spec.resources.gpu.count is 0 (CPU-only)"))

    after = _validate(doc, label)
    if before.runtime == Runtime.OLLAMA and after.runtime == Runtime.VLLM:
        dropped = _drop_ollama_resources(spec)
        sized = _validate(doc, label).resources  # what the resolver gives vLLM instead
        out.notes += [
            f"spec.resources.{key} {value} removed: it was sized for Ollama; vLLM gets its GPU-sized "
            f"default, {key} {getattr(sized, key)}"
            for key, value in dropped.items()
        ]
        out.notes += _drop_ollama_only_fields(spec)
    replicas = spec.get("replicas")
    if target == Stage.PRODUCTION and isinstance(replicas, int) and replicas <= 1:
        del spec["replicas"]
        out.notes.append(
            f"spec.replicas {replicas} removed: production autoscales (2-8 replicas by default), since one "
            "replica cannot keep serving through a node drain"
        )
    after = _validate(doc, label)
    if (after.name, after.namespace, after.served_model_name) != (
        before.name,
        before.namespace,
        before.served_model_name,
    ):
        raise CliError(f"{label}: the promotion would change the name or served model name; report this bug")
    out.warnings = [f"{after.name}: {w.reason}: {w.message}" for w in after.warnings]
    out.notes.insert(
        0,
        f"{after.name}: stage {current} -> {target}, runtime {before.runtime} -> {after.runtime} "
        f"({after.runtime_reason})",
    )
    return out


def _drop_ollama_resources(spec: Any) -> dict[str, Any]:
    """Remove cpu and memory sized for Ollama; returns what was removed."""
    resources = spec.get("resources") or {}
    dropped = {key: resources[key] for key in ("cpu", "memory") if key in resources}
    for key in dropped:
        del resources[key]
    return dropped


def _drop_ollama_only_fields(spec: Any) -> list[str]:
    """Fields tuned for Ollama that would misconfigure vLLM (cpu and memory aside)."""
    notes = []
    scaling = spec.get("autoscaling") or {}
    if scaling.get("metric") == "cpu":
        del scaling["metric"]
        notes.append(
            "spec.autoscaling.metric cpu removed: vLLM scales on queue depth (auto); "
            "the CPU of GPU pods says little"
        )
    model = spec["model"]
    if model.get("format") == "gguf":
        del model["format"]
        notes.append("spec.model.format gguf removed: vLLM serves safetensors weights (GGUF on vLLM is slow)")
    quant = model.get("quantization")
    if isinstance(quant, str) and is_gguf_quantization(quant):
        del model["quantization"]
        notes.append(
            f"spec.model.quantization {quant} removed: a GGUF quantization; vLLM serves bf16 or awq/gptq/fp8"
        )
    return notes


def promote_text(
    text: str, source: str, target: Stage, gpu: GPUChoice | None = None, api_key: str | None = None
) -> Promotion:
    """Promote every LLMService in a manifest file's text; other documents are kept as they are."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = _yaml(text)
    try:
        docs = [d for d in yaml.load_all(text) if d is not None]
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise CliError(f"{where}: YAML syntax error: {err.problem or err.context}; fix the YAML") from err
    except YAMLError as err:
        raise CliError(f"{source}: YAML syntax error: {err}") from err
    services = [d for d in docs if is_llmservice(d)]
    if not services:
        raise CliError(
            f"{source}: no LLMService in the file; "
            "it needs apiVersion: llmstage.io/v1alpha1 and kind: LLMService"
        )
    result = Promotion(text="")
    for doc in services:
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        label = f"{source} (LLMService {name})" if name else source
        if not isinstance(doc.get("spec"), dict):
            raise CliError(f"{label}: spec is missing: add spec.model.name")
        one = promote_document(doc, label, target, gpu, api_key)
        result.notes += one.notes
        result.warnings += one.warnings
    buffer = io.StringIO()
    if len(docs) == 1:
        yaml.dump(docs[0], buffer)
    else:
        yaml.explicit_start = text.lstrip().startswith("---")
        yaml.dump_all(docs, buffer)
    result.text = buffer.getvalue()
    return result


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name)
    )


@guarded
def run(args: argparse.Namespace) -> int:
    if args.filename == STDIN and not args.output and not args.dry_run:
        raise CliError(
            "-f - reads stdin, so there is no file to update in place: pass -o OUT (or -o - for stdout)"
        )
    source = display_name(args.filename)
    text = read_text(args.filename)
    result = promote_text(text, source, Stage(args.to), args.gpu, args.api_key_secret)
    target = args.output or args.filename
    to_stdout = target == STDIN
    diff = unified_diff(text, result.text, source, display_name(target) if not to_stdout else "<stdout>")
    (sys.stderr if to_stdout else sys.stdout).write(diff or f"# {source}: nothing to change\n")
    for note in result.notes:
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
