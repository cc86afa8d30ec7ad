"""The article's decision framework: every row of its table, both answers, and the order of the rows."""

from __future__ import annotations

import pytest
from llmstage.api.models import OptimizeFor, Runtime, RuntimeChoice, Stage
from llmstage.resolve.decision import (
    CONCURRENCY_THRESHOLD,
    DecisionInput,
    Rule,
    choose_runtime,
    decide_runtime,
)

DEV, STAGING, PROD = Stage.DEV, Stage.STAGING, Stage.PRODUCTION
OLLAMA, VLLM = Runtime.OLLAMA, Runtime.VLLM
SETUP, COST = OptimizeFor.SETUP_TIME, OptimizeFor.GPU_COST

# (article row, answer, stage, users, GPUs, optimizeFor) -> (runtime, deciding rule)
TABLE = [
    # "More than 4 concurrent users?  Yes: vLLM | No: either works"
    ("more than 4 users", "yes", STAGING, 5, 1, None, VLLM, Rule.CONCURRENT_USERS),
    ("more than 4 users", "yes (dev too)", DEV, 50, 1, None, VLLM, Rule.CONCURRENT_USERS),
    ("more than 4 users", "no: either works, stage decides", STAGING, 4, 1, None, OLLAMA, Rule.START_SIMPLE),
    # "Deploying to production?  Yes: vLLM | No: Ollama"
    ("production", "yes", PROD, 1, 1, None, VLLM, Rule.PRODUCTION),
    ("production", "yes, even when asked for fast setup", PROD, 2, 1, SETUP, VLLM, Rule.PRODUCTION),
    ("production", "no", STAGING, 2, 1, None, OLLAMA, Rule.START_SIMPLE),
    # "Running on laptop/desktop?  Yes: Ollama | No: consider vLLM" (dev is the laptop of a team)
    ("laptop/desktop", "yes", DEV, 1, 1, None, OLLAMA, Rule.LAPTOP_DESKTOP),
    ("laptop/desktop", "no: consider vLLM when GPU cost matters", STAGING, 1, 1, COST, VLLM, Rule.GPU_COST),
    # "Need sub-hour setup?  Yes: Ollama | No: vLLM acceptable"
    ("sub-hour setup", "yes", STAGING, 3, 2, SETUP, OLLAMA, Rule.SETUP_TIME),
    (
        "sub-hour setup",
        "no: vLLM acceptable (users decide)",
        STAGING,
        8,
        2,
        None,
        VLLM,
        Rule.CONCURRENT_USERS,
    ),
    # "Optimizing GPU costs?  Yes: vLLM | No: Ollama fine"
    ("GPU cost", "yes", DEV, 2, 1, COST, VLLM, Rule.GPU_COST),
    ("GPU cost", "no: Ollama fine", STAGING, 2, 1, None, OLLAMA, Rule.START_SIMPLE),
    # "CPU-only inference?  Yes: Ollama | No: vLLM needs GPU"
    ("CPU-only", "yes", DEV, 1, 0, None, OLLAMA, Rule.CPU_ONLY),
    ("CPU-only", "yes, beats production", PROD, 50, 0, None, OLLAMA, Rule.CPU_ONLY),
    ("CPU-only", "yes, beats GPU cost", STAGING, 2, 0, COST, OLLAMA, Rule.CPU_ONLY),
    ("CPU-only", "no: vLLM possible", PROD, 50, 1, None, VLLM, Rule.PRODUCTION),
]


@pytest.mark.parametrize(
    ("row", "answer", "stage", "users", "gpus", "optimize", "runtime", "rule"),
    TABLE,
    ids=[f"{row}: {answer}" for row, answer, *_ in TABLE],
)
def test_article_decision_table(
    row: str,
    answer: str,
    stage: Stage,
    users: int,
    gpus: int,
    optimize: OptimizeFor | None,
    runtime: Runtime,
    rule: Rule,
) -> None:
    decision = decide_runtime(DecisionInput(stage, users, gpus, optimize))
    assert (decision.runtime, decision.rule) == (runtime, rule), decision.reason


def test_every_rule_is_covered_by_the_table() -> None:
    assert {rule for *_, rule in TABLE} == set(Rule) - {Rule.EXPLICIT}


def test_threshold_is_the_articles_four_users() -> None:
    assert CONCURRENCY_THRESHOLD == 4
    at = decide_runtime(DecisionInput(STAGING, 4, 1))
    above = decide_runtime(DecisionInput(STAGING, 5, 1))
    assert (at.runtime, above.runtime) == (OLLAMA, VLLM)


def test_reasons_are_readable() -> None:
    assert (
        decide_runtime(DecisionInput(PROD, 50, 1)).reason
        == "stage production and 50 expected users > 4: vLLM"
    )
    assert decide_runtime(DecisionInput(DEV, 1, 0)).reason == (
        "stage dev, no GPU (CPU-only inference) and 1 expected user: Ollama "
        "(quantized GGUF on llama.cpp's CPU kernels; runtime vllm runs vLLM's CPU backend instead)"
    )
    assert decide_runtime(DecisionInput(DEV, 2, 1)).reason == (
        "stage dev (laptop/desktop-style work) and 2 expected users <= 4: Ollama"
    )


def test_explicit_runtime_wins_and_says_what_auto_would_do() -> None:
    decision = choose_runtime(RuntimeChoice.OLLAMA, DecisionInput(PROD, 50, 1))
    assert decision.runtime == OLLAMA and decision.rule == Rule.EXPLICIT
    assert decision.reason == (
        "runtime ollama set in spec.runtime: Ollama "
        "(auto would choose stage production and 50 expected users > 4: vLLM)"
    )
    same = choose_runtime(RuntimeChoice.VLLM, DecisionInput(PROD, 50, 1))
    assert same.reason == "runtime vllm set in spec.runtime: vLLM"


def test_auto_goes_through_the_framework() -> None:
    inputs = DecisionInput(STAGING, 10, 1)
    assert choose_runtime(RuntimeChoice.AUTO, inputs) == decide_runtime(inputs)
