"""Promote an LLMService manifest to the next stage, in place, keeping its comments and layout.

    promote_text(text, source, target, gpu, api_key) -> Promotion     raises PromotionRefused

What changes: spec.stage, the GPU (or vLLM on CPU nodes) and API key Secret when given, and
fields that only made sense for the old runtime when the promotion switches Ollama -> vLLM;
metadata.name, the namespace and the served model name never change. The result is validated as
the API server and the operator would (`llmstage promote` prints the diff and the notes).
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

import pydantic

from llmstage.api.constants import Runtime, Stage
from llmstage.api.manifest import GPUChoice, gpu_spec, is_llmservice
from llmstage.api.validation import validation_message
from llmstage.resolve.mistakes import is_gguf_quantization
from llmstage.resolve.resolved import Resolved

ORDER = {Stage.DEV: 0, Stage.STAGING: 1, Stage.PRODUCTION: 2}


class PromotionRefused(ValueError):
    """The promotion cannot be done as asked; the message names the option or field to set."""


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
            raise PromotionRefused(_api_key_refusal(label)) from err
        raise PromotionRefused(f"{label}: the promoted manifest would be rejected: {message}") from err
    try:
        return resolve(service)
    except SpecError as err:
        if err.field == "spec.vllm.apiKeySecretRef":
            raise PromotionRefused(_api_key_refusal(label)) from err
        if err.field in ("spec.resources.gpu.count", "spec.vllm.tensorParallelSize"):
            raise PromotionRefused(f"{label}: {err}; or pass --gpu PRODUCT[:COUNT]") from err
        raise PromotionRefused(f"{label}: the promoted manifest cannot be served: {err}") from err


def _api_key_refusal(label: str) -> str:
    return (
        f"{label}: stage production serves vLLM only with an API key: pass --api-key-secret NAME "
        "(a Secret with key 'api-key' in the production namespace) or set spec.vllm.apiKeySecretRef.name"
    )


def _gpu_refusal(label: str, problem: str) -> str:
    return (
        f"{label}: stage production runs vLLM, on GPUs unless told otherwise, but {problem}: pass --gpu "
        "PRODUCT[:COUNT] (e.g. --gpu NVIDIA-L4 or --gpu NVIDIA-H100-80GB-HBM3:2) or set spec.resources.gpu, "
        "or pass --cpu for vLLM's CPU image on CPU nodes"
    )


def promote_document(  # noqa: C901, PLR0915 - the rewrite, field by field, in manifest order
    doc: Any, label: str, target: Stage, gpu: GPUChoice | None, api_key: str | None, cpu: bool = False
) -> Promotion:
    """Promote one LLMService document in place (a ruamel mapping). Raises PromotionRefused when refused."""
    before = _validate(doc, label)
    current = before.stage
    if ORDER[target] < ORDER[current]:
        raise PromotionRefused(
            f"{label}: is at stage {current}; promote moves forward only (dev -> staging -> production): "
            "to go back, edit spec.stage"
        )
    spec = doc["spec"]
    out = Promotion(text="")
    if target != current:
        _set_first(spec, "stage", target.value)
    scaling = spec.get("autoscaling") or {}
    if target == Stage.PRODUCTION and scaling.get("minReplicas") == 0:
        del scaling["minReplicas"]
        out.notes.append(
            "spec.autoscaling.minReplicas 0 removed: production does not scale to zero (the first request "
            "would wait for the model to load); the production default, 2, applies"
        )
    if gpu is not None:
        gpu_node = _child(_child(spec, "resources"), "gpu")
        gpu_node.clear()
        gpu_node.update(gpu_spec(gpu))
        given = ", ".join(f"{k} {v}" for k, v in gpu_spec(gpu).items())
        out.notes.append(f"spec.resources.gpu set from --gpu: {given}")
    if cpu:
        _set_first(spec, "runtime", Runtime.VLLM.value)
        gpu_node = _child(_child(spec, "resources"), "gpu")
        gpu_node.clear()
        gpu_node["count"] = 0
        out.notes.append("spec.runtime vllm and spec.resources.gpu.count 0 set from --cpu: vLLM's CPU image")
    if api_key is not None:
        _child(_child(spec, "vllm"), "apiKeySecretRef")["name"] = api_key
        out.notes.append(f"spec.vllm.apiKeySecretRef.name set from --api-key-secret: {api_key}")

    runtime = spec.get("runtime", "auto")
    if target == Stage.PRODUCTION and runtime != Runtime.OLLAMA.value:
        gpu_node = (spec.get("resources") or {}).get("gpu")
        if gpu_node is None:
            raise PromotionRefused(_gpu_refusal(label, "spec.resources.gpu is not set"))
        if gpu_node.get("count", 1) == 0 and runtime != Runtime.VLLM.value:
            raise PromotionRefused(_gpu_refusal(label, "spec.resources.gpu.count is 0 (CPU-only)"))

    # The runtime after the promotion, from a copy without the fields only Ollama can serve: vLLM
    # refuses a GGUF format (SpecError), and the runtime choice does not read those fields.
    probe = copy.deepcopy(doc)
    _drop_ollama_only_fields(probe["spec"])
    after = _validate(probe, label)
    if before.runtime == Runtime.OLLAMA and after.runtime == Runtime.VLLM:
        dropped = _drop_ollama_resources(spec)
        only_ollama = _drop_ollama_only_fields(spec)
        sized = _validate(doc, label).resources  # what the resolver gives vLLM instead
        sizing = "GPU-sized" if after.resources.gpu else "CPU-backend"
        out.notes += [
            f"spec.resources.{key} {value} removed: it was sized for Ollama; vLLM gets its {sizing} "
            f"default, {key} {getattr(sized, key)}"
            for key, value in dropped.items()
        ]
        out.notes += only_ollama
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
        raise PromotionRefused(
            f"{label}: the promotion would change the name or served model name; report this bug"
        )
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
        notes.append("spec.model.format gguf removed: vLLM serves safetensors weights (no GGUF loader)")
    quant = model.get("quantization")
    if isinstance(quant, str) and is_gguf_quantization(quant):
        del model["quantization"]
        notes.append(
            f"spec.model.quantization {quant} removed: a GGUF quantization; vLLM serves bf16 or awq/gptq/fp8"
        )
    return notes


def promote_text(
    text: str,
    source: str,
    target: Stage,
    gpu: GPUChoice | None = None,
    api_key: str | None = None,
    cpu: bool = False,
) -> Promotion:
    """Promote every LLMService in a manifest file's text; other documents are kept as they are."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = _yaml(text)
    try:
        docs = [d for d in yaml.load_all(text) if d is not None]
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PromotionRefused(
            f"{where}: YAML syntax error: {err.problem or err.context}; fix the YAML"
        ) from err
    except YAMLError as err:
        raise PromotionRefused(f"{source}: YAML syntax error: {err}") from err
    services = [d for d in docs if is_llmservice(d)]
    if not services:
        raise PromotionRefused(
            f"{source}: no LLMService in the file; "
            "it needs apiVersion: llmstage.io/v1alpha1 and kind: LLMService"
        )
    result = Promotion(text="")
    for doc in services:
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        label = f"{source} (LLMService {name})" if name else source
        if not isinstance(doc.get("spec"), dict):
            raise PromotionRefused(f"{label}: spec is missing: add spec.model.name")
        one = promote_document(doc, label, target, gpu, api_key, cpu)
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
