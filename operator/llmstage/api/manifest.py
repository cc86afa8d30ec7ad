"""LLMService manifests: YAML text in, validated LLMServices out; and the smallest manifest for a
few answers (what `llmstage recommend` and `llmstage pipeline init` start from).

No printing and no exit codes: a problem is a ManifestError whose message names the file, the
document or the field, and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
import yaml
from llmstage.api.constants import API_VERSION, KIND
from llmstage.api.models import LLMService
from llmstage.api.validation import validation_message


class ManifestError(ValueError):
    """A manifest that cannot be read as LLMServices; the message says where and how to fix it."""


def yaml_documents(text: str, source: str) -> list[Any]:
    """Every non-empty document; a syntax error becomes `FILE:LINE:COL: ...`."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = err.problem or err.context
        raise ManifestError(f"{where}: YAML syntax error: {problem}; fix the YAML") from err
    except yaml.YAMLError as err:
        raise ManifestError(f"{source}: YAML syntax error: {' '.join(str(err).split())}") from err


@dataclass(frozen=True)
class Manifest:
    """One LLMService document of a file, parsed and validated like the API server would."""

    source: str  # file name for messages
    index: int  # position among the file's documents, from 0
    body: dict[str, Any]
    service: LLMService


def is_llmservice(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == KIND


def parse_llmservice(body: dict[str, Any], source: str) -> LLMService:
    try:
        return LLMService.from_object(body)
    except pydantic.ValidationError as err:
        name = (body.get("metadata") or {}).get("name") if isinstance(body.get("metadata"), dict) else None
        label = f"{source} ({KIND} {name})" if name else source
        raise ManifestError(f"{label}: {validation_message(err)}") from err


def parse_llmservices(text: str, source: str) -> list[Manifest]:
    """Every LLMService in a (multi-document) YAML text; other kinds are skipped."""
    docs = yaml_documents(text, source)
    out = []
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ManifestError(f"{source}: document {index + 1} is not a mapping (a Kubernetes object)")
        if is_llmservice(doc):
            out.append(Manifest(source, index, doc, parse_llmservice(doc, source)))
    if not out:
        raise ManifestError(
            f"{source}: no LLMService in the file; it needs apiVersion: llmstage.io/v1alpha1 and kind: {KIND}"
        )
    return out


@dataclass(frozen=True)
class GPUChoice:
    count: int | None  # None: only the product was given (1, or as many as `recommend` finds fit)
    product: str | None


def gpu_spec(choice: GPUChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"count": 1 if choice.count is None else choice.count}
    if choice.product:
        out["product"] = choice.product
    return out


def llmservice_object(  # noqa: PLR0913 - keyword-only: one argument per field the CLI sets
    *,
    name: str,
    stage: str,
    model: str,
    users: int,
    namespace: str | None = None,
    hugging_face_id: str | None = None,
    gpu: GPUChoice | None = None,
    api_key_secret: str | None = None,
    hf_token_secret: str | None = None,
) -> dict[str, Any]:
    """The smallest LLMService for these answers: everything else is a stage default."""
    spec: dict[str, Any] = {"stage": stage, "model": {"name": model}, "expectedConcurrency": users}
    if hugging_face_id:
        spec["model"]["huggingFaceId"] = hugging_face_id
    if gpu is not None:
        spec["resources"] = {"gpu": gpu_spec(gpu)}
    if api_key_secret:
        spec["vllm"] = {"apiKeySecretRef": {"name": api_key_secret}}
    if hf_token_secret:
        spec["huggingFaceTokenSecretRef"] = {"name": hf_token_secret}
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
