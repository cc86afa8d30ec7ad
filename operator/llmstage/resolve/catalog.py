"""The model catalog: Ollama tag <-> Hugging Face id, plus the shape the memory-fit check needs.

The built-in entries live in llmstage/data/catalog.yaml (shipped with the package). Platform teams
extend or override them with entries of the same shape, e.g. from a ConfigMap the operator mounts:

    catalog = builtin_catalog().merged(parse_catalog(yaml.safe_load(text)))

Pure apart from `builtin_catalog`, which reads the packaged YAML once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from llmstage.api.constants import ModelFormat

# Quantization suffixes of Ollama tags, e.g. llama3.1:8b-instruct-q8_0, llama3.1:8b-instruct-fp16.
_OLLAMA_QUANT = re.compile(
    r"^(q[2-8](_[0-9a-z]+)*|iq[1-4]_[a-z0-9_]+|fp16|f16|bf16|fp32|f32)$", re.IGNORECASE
)


class CatalogEntry(BaseModel):
    """One model. Field names are camelCase in YAML, like the API."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True
    )

    name: str = Field(min_length=1, description="Canonical name: the Ollama tag, e.g. llama3.1:8b.")
    aliases: tuple[str, ...] = Field(default=(), description="Other names users write, e.g. llama3.1.")
    hugging_face_id: str = Field(
        min_length=3, description="What vLLM serves, e.g. meta-llama/Llama-3.1-8B-Instruct."
    )
    gated: bool = Field(
        default=False, description="The Hugging Face repo needs an accepted licence and a token."
    )
    parameters_billion: float = Field(gt=0)
    layers: int = Field(ge=1)
    attention_heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    intermediate_size: int | None = Field(
        default=None,
        ge=1,
        description="MLP hidden size; tensor parallelism must divide it. Unset: unchecked.",
    )
    hidden_size: int | None = Field(
        default=None, ge=1, description="hidden_size of config.json, where recorded."
    )
    vocab_size: int | None = Field(
        default=None, ge=1, description="vocab_size of config.json, where recorded."
    )
    context_length: int = Field(ge=128)
    native_format: ModelFormat = Field(
        default=ModelFormat.SAFETENSORS, description="Format of the HF weights."
    )
    native_dtype: str = Field(default="bfloat16", description="torch_dtype of the HF weights.")
    ollama_tag: str | None = Field(default=None, description="What `ollama pull` takes; default: name.")
    ollama_quantization: str = Field(default="q4_K_M", description="Quantization the plain Ollama tag pulls.")

    @property
    def pull_tag(self) -> str:
        return self.ollama_tag or self.name


@dataclass(frozen=True)
class OllamaTag:
    """An Ollama tag split into the catalog base and its variant suffix."""

    base: str  # e.g. "llama3.1:8b"
    quantization: str | None  # e.g. "q8_0", "fp16" when the tag names one


def parse_ollama_tag(name: str) -> OllamaTag:
    """'llama3.1:8b-instruct-q8_0' -> OllamaTag('llama3.1:8b', 'q8_0'). Names without ':' pass through."""
    if ":" not in name or "/" in name:
        return OllamaTag(name, None)
    family, tag = name.split(":", 1)
    parts = tag.split("-")
    quant = next((p for p in reversed(parts[1:]) if _OLLAMA_QUANT.match(p)), None)
    return OllamaTag(f"{family}:{parts[0]}", quant)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]
    _index: dict[str, CatalogEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, CatalogEntry] = {}
        # Later entries win, so merged user entries override built-in names and aliases.
        for entry in self.entries:
            for key in (entry.name, entry.pull_tag, entry.hugging_face_id, *entry.aliases):
                index[key.lower()] = entry
        object.__setattr__(self, "_index", index)

    def lookup(self, name: str) -> CatalogEntry | None:
        """By name, alias, Ollama tag (with any variant suffix) or Hugging Face id; case-insensitive."""
        key = name.lower()
        if key in self._index:
            return self._index[key]
        return self._index.get(parse_ollama_tag(key).base)

    def merged(self, extra: Iterable[CatalogEntry]) -> Catalog:
        """This catalog plus `extra`; an extra entry replaces the one of the same name and wins lookups."""
        extra = tuple(extra)
        names = {e.name.lower() for e in extra}
        return Catalog(tuple(e for e in self.entries if e.name.lower() not in names) + extra)

    def __len__(self) -> int:
        return len(self.entries)


def parse_catalog(data: Mapping[str, Any] | list[Any] | None) -> tuple[CatalogEntry, ...]:
    """Entries from parsed YAML: either {models: [...]} or a bare list. Raises pydantic.ValidationError."""
    if data is None:
        return ()
    items = data.get("models", []) if isinstance(data, Mapping) else data
    return tuple(CatalogEntry.model_validate(item) for item in items)


def catalog_from_yaml(text: str) -> Catalog:
    return Catalog(parse_catalog(yaml.safe_load(text)))


@cache
def builtin_catalog() -> Catalog:
    """The catalog shipped in llmstage/data/catalog.yaml."""
    text = resources.files("llmstage").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    return catalog_from_yaml(text)


def load_catalog(extra: Iterable[Mapping[str, Any]] | Mapping[str, Any] | None = None) -> Catalog:
    """The built-in catalog with user entries (parsed YAML from a file or ConfigMap) merged over it."""
    base = builtin_catalog()
    if extra is None:
        return base
    data = extra if isinstance(extra, Mapping) else list(extra)
    return base.merged(parse_catalog(data))
