"""llmstage.ollama_name against the cases of Ollama 0.17.4's own tests (types/model/name_test.go)."""

from __future__ import annotations

import re

import pytest
from llmstage import ollama_name
from llmstage.ollama_name import is_valid, parse, parse_bare

PART80 = "x" * 80
PART350 = "h" * 350


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        # TestNameIsValid's table (fully qualified names are valid; the rest are valid for
        # ParseName once it merges the defaults, except those marked invalid).
        ("host/namespace/model:tag", True),
        ("host/namespace/model", True),
        ("namespace/model", True),
        ("model", True),
        (f"{PART80}/{PART80}/{PART80}:{PART80}", True),
        (f"{PART350}/{PART80}/{PART80}:{PART80}", True),
        ("h/nn/mm:t", True),
        ("m", True),
        ("n/m:", False),
        ("@t", False),
        ("m@d", False),
        ("^", False),
        ("mm:", False),
        ("/nn/mm", False),
        ("//", False),
        ("//mm", False),
        ("hh//", False),
        ("//mm:@", False),
        ("00@", False),
        ("@", False),
        ("-hh/nn/mm:tt", False),
        ("hh/-nn/mm:tt", False),
        ("hh/nn/-mm:tt", False),
        ("hh/nn/mm:-tt", False),
        ("host:https/namespace/model:tag", True),
        ("host/name:space/model:tag", False),
        # TestNameIsValidPart: a namespace has no '.'; parts are at most 80 characters.
        ("a./model", False),
        (f"{'x' * 81}", False),
        ("a/b/c/d", False),
        # The names this project serves.
        ("llama3.1:8b", True),
        ("meta-llama/Llama-3.1-8B-Instruct", True),
        ("registry.internal:5000/library/smollm2:135m", True),
        ("chat", True),
        ("llama3.1@sha256:0123", False),  # 0.17.4 does not parse digests
    ],
)
def test_validity(name: str, valid: bool) -> None:
    assert is_valid(name) is valid


@pytest.mark.parametrize(
    ("name", "parts", "filepath"),
    [
        # TestParseNameParts
        (
            "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K",
            ("registry.ollama.ai", "library", "dolphin-mistral", "7b-v2.6-dpo-laser-q6_K"),
            "registry.ollama.ai/library/dolphin-mistral/7b-v2.6-dpo-laser-q6_K",
        ),
        ("scheme://host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag"), None),
        (
            "host:port/namespace/model",
            ("host:port", "namespace", "model", ""),
            "host:port/namespace/model/latest",
        ),
        ("namespace/model", ("", "namespace", "model", ""), "registry.ollama.ai/namespace/model/latest"),
        ("model", ("", "", "model", ""), "registry.ollama.ai/library/model/latest"),
        ("h/nn/mm:t", ("h", "nn", "mm", "t"), "h/nn/mm/t"),
    ],
)
def test_parse(name: str, parts: tuple[str, str, str, str], filepath: str | None) -> None:
    assert parse_bare(name) == parts
    if filepath:
        assert parse(name).filepath == filepath


def test_names_are_the_same_model_case_insensitively_with_defaults() -> None:
    assert parse("llama3.1").same(parse("Llama3.1:latest"))
    assert parse("chat").same(parse("registry.ollama.ai/library/chat:latest"))
    assert not parse("chat").same(parse("chat:v2"))
    assert str(parse("xx")) == "registry.ollama.ai/library/xx:latest"  # TestNameparseNameDefault


def test_the_cel_pattern_is_a_valid_re2_subset() -> None:
    """The pattern goes into the CRD as a CEL matches(): plain classes and bounded repetitions."""
    assert re.compile(ollama_name.NAME_PATTERN)
    assert "(?" not in ollama_name.NAME_PATTERN and "\\" not in ollama_name.NAME_PATTERN
