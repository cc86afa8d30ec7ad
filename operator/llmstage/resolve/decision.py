"""The article's decision framework ("Local LLM Runtimes: When to Use Ollama vs vLLM") as code.

The article's table, and how each row maps onto an LLMService:

| Question                     | If yes | If no          | Input                                     |
|------------------------------|--------|----------------|-------------------------------------------|
| More than 4 concurrent users?| vLLM   | Either works   | spec.expectedConcurrency > 4              |
| Deploying to production?     | vLLM   | Ollama         | spec.stage == production                  |
| Running on laptop/desktop?   | Ollama | Consider vLLM  | spec.stage == dev (the laptop of a team)  |
| Need sub-hour setup?         | Ollama | vLLM acceptable| spec.optimizeFor == setupTime             |
| Optimizing GPU costs?        | vLLM   | Ollama fine    | spec.optimizeFor == gpuCost               |
| CPU-only inference?          | Ollama | vLLM needs GPU | no GPU (spec.resources.gpu.count 0/unset) |

The rows disagree on some inputs, so they are applied in this order, first decisive answer wins:
CPU-only > production > more than 4 users > GPU cost > sub-hour setup > laptop/desktop (dev) >
otherwise Ollama ("start simple; migrate when needed").

CPU-only still picks Ollama, although vLLM now runs on CPUs (its CPU image; `runtime: vllm`
without GPUs). The evidence: on CPUs Ollama serves quantized GGUF weights with llama.cpp's kernels,
while vLLM's CPU backend serves 16- or 32-bit weights and needs AVX-512 BF16 or AMX for bf16 (on
other CPUs it runs float32, four bytes a weight: a 7-8B model needs about four times the memory
of its Q4 GGUF). Measured on one CPU core with a 135M model, vLLM's batching did win from 2 users
(docs/benchmarks.md), which says little about 8B models on memory-bound CPUs; `llmstage benchmark`
measures the user's own model and nodes, and the explicit choice is always available.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmstage.api.constants import OptimizeFor, Runtime, RuntimeChoice, Stage

# "The inflection point is concurrent users. Below 4, Ollama's simplicity wins."
CONCURRENCY_THRESHOLD = 4


class Rule(StrEnum):
    """Which row of the article's table decided."""

    EXPLICIT = "Explicit"
    CPU_ONLY = "CPUOnly"
    PRODUCTION = "Production"
    CONCURRENT_USERS = "ConcurrentUsers"
    GPU_COST = "GPUCost"
    SETUP_TIME = "SetupTime"
    LAPTOP_DESKTOP = "LaptopDesktop"
    START_SIMPLE = "StartSimple"


@dataclass(frozen=True)
class DecisionInput:
    stage: Stage
    expected_concurrency: int
    gpu_count: int  # after stage defaults: production gets one GPU unless the spec says otherwise
    optimize_for: OptimizeFor | None = None


@dataclass(frozen=True)
class Decision:
    runtime: Runtime
    rule: Rule  # machine-readable: the table row that decided
    reason: str  # readable, e.g. "stage production and 50 expected users > 4: vLLM"


def _users(n: int) -> str:
    return f"{n} expected user{'' if n == 1 else 's'}"


def decide_runtime(inputs: DecisionInput) -> Decision:
    """runtime: auto. First decisive row of the article's table wins (order in the module docstring)."""
    users = inputs.expected_concurrency
    many = users > CONCURRENCY_THRESHOLD
    users_text = f"{_users(users)} {'>' if many else '<='} {CONCURRENCY_THRESHOLD}"
    if inputs.gpu_count < 1:
        return Decision(
            Runtime.OLLAMA,
            Rule.CPU_ONLY,
            f"stage {inputs.stage}, no GPU (CPU-only inference) and {_users(users)}: Ollama "
            "(quantized GGUF on llama.cpp's CPU kernels; runtime vllm runs vLLM's CPU backend instead)",
        )
    if inputs.stage == Stage.PRODUCTION:
        return Decision(Runtime.VLLM, Rule.PRODUCTION, f"stage production and {users_text}: vLLM")
    if many:
        return Decision(Runtime.VLLM, Rule.CONCURRENT_USERS, f"stage {inputs.stage} and {users_text}: vLLM")
    if inputs.optimize_for == OptimizeFor.GPU_COST:
        return Decision(
            Runtime.VLLM, Rule.GPU_COST, f"stage {inputs.stage}, {users_text} and optimizing GPU cost: vLLM"
        )
    if inputs.optimize_for == OptimizeFor.SETUP_TIME:
        return Decision(
            Runtime.OLLAMA,
            Rule.SETUP_TIME,
            f"stage {inputs.stage}, {users_text} and sub-hour setup wanted: Ollama",
        )
    if inputs.stage == Stage.DEV:
        return Decision(
            Runtime.OLLAMA,
            Rule.LAPTOP_DESKTOP,
            f"stage dev (laptop/desktop-style work) and {users_text}: Ollama",
        )
    return Decision(
        Runtime.OLLAMA,
        Rule.START_SIMPLE,
        f"stage {inputs.stage} and {users_text}: Ollama (start simple, vLLM when needed)",
    )


def choose_runtime(requested: RuntimeChoice, inputs: DecisionInput) -> Decision:
    """An explicit runtime always wins; auto goes through the decision framework."""
    if requested == RuntimeChoice.AUTO:
        return decide_runtime(inputs)
    runtime = Runtime(requested.value)
    label = "vLLM" if runtime == Runtime.VLLM else "Ollama"
    auto = decide_runtime(inputs)
    note = "" if auto.runtime == runtime else f" (auto would choose {auto.reason})"
    return Decision(runtime, Rule.EXPLICIT, f"runtime {requested.value} set in spec.runtime: {label}{note}")
