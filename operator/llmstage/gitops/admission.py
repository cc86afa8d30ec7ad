"""Apply-time warnings for the article's common mistakes, without a webhook.

A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) and its binding with
validationActions [Warn]: `kubectl apply` prints "Warning: ..." and the API server accepts the
object. The operator reports the same findings later in the FollowsBestPractices condition;
this makes them visible at the moment someone applies the mistake (or Argo CD / Flux syncs it).

The policy can only see the object, so it re-derives the runtime that `runtime: auto` picks from
the fields the decision uses (llmstage.resolve.decision): no GPU -> Ollama; production, more than 4
users or optimizeFor gpuCost -> vLLM; otherwise Ollama. The warnings match resolve()'s findings
OllamaInProduction, TooManyUsersForOllama and GGUFOnVLLM (a cluster test compares them).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from llmstage.api.constants import GROUP, PLURAL, VERSION
from llmstage.resolve.decision import CONCURRENCY_THRESHOLD

POLICY_NAME = "llmstage-common-mistakes"
LABELS = {"app.kubernetes.io/name": "llmstage", "app.kubernetes.io/component": "admission-policy"}
# GGUF (llama.cpp) quantization names, e.g. q4_K_M, q8_0, iq3_xs: what vLLM should not be given.
GGUF_QUANTIZATION_RE2 = "^(?i)i?q[1-8](_[0-9a-z]+)*$"
FIX_RUNTIME = "give it a GPU (spec.resources.gpu.count >= 1) and set spec.runtime auto or vllm"

VARIABLES = [
    ("stage", "has(object.spec.stage) ? object.spec.stage : 'dev'"),
    ("runtime", "has(object.spec.runtime) ? object.spec.runtime : 'auto'"),
    ("users", "has(object.spec.expectedConcurrency) ? object.spec.expectedConcurrency : 1"),
    # GPUs per replica after stage defaults: production gets one unless the spec says otherwise.
    (
        "gpus",
        "has(object.spec.resources) && has(object.spec.resources.gpu) ? "
        "(has(object.spec.resources.gpu.count) ? object.spec.resources.gpu.count : 1) : "
        "(variables.stage == 'production' ? 1 : 0)",
    ),
    # The runtime `auto` resolves to, in the decision framework's order.
    (
        "ollama",
        "variables.runtime == 'ollama' || (variables.runtime == 'auto' && (variables.gpus < 1 || !("
        f"variables.stage == 'production' || variables.users > {CONCURRENCY_THRESHOLD} || "
        "(has(object.spec.optimizeFor) && object.spec.optimizeFor == 'gpuCost'))))",
    ),
    (
        "why",
        "variables.runtime == 'ollama' ? 'spec.runtime is ollama' : "
        "'spec.runtime auto picks Ollama because there is no GPU (spec.resources.gpu.count 0)'",
    ),
    (
        "gguf",
        "(has(object.spec.model.format) && object.spec.model.format == 'gguf') || "
        "(has(object.spec.model.quantization) && "
        f"object.spec.model.quantization.matches('{GGUF_QUANTIZATION_RE2}')) || "
        "(has(object.spec.vllm) && has(object.spec.vllm.quantization) && "
        "object.spec.vllm.quantization.lowerAscii() == 'gguf')",
    ),
]

VALIDATIONS = [
    {
        # "Using Ollama for production serving. Works until traffic spikes."
        "expression": "!(variables.ollama && variables.stage == 'production')",
        "messageExpression": (
            "'OllamaInProduction: spec.stage is production but ' + variables.why + "
            "': Ollama works until traffic spikes, then requests queue and latency climbs; "
            f"{FIX_RUNTIME}'"
        ),
    },
    {
        # "The inflection point is concurrent users. Below 4, Ollama's simplicity wins."
        "expression": f"!(variables.ollama && variables.users > {CONCURRENCY_THRESHOLD})",
        "messageExpression": (
            "'TooManyUsersForOllama: spec.expectedConcurrency is ' + string(variables.users) + "
            f"' (more than {CONCURRENCY_THRESHOLD}) but ' + variables.why + "
            f"': Ollama throughput stays flat beyond about {CONCURRENCY_THRESHOLD} parallel requests; "
            f"{FIX_RUNTIME}'"
        ),
    },
    {
        # "Ollama handles GGUF quantized models well. vLLM prefers FP16/BF16 weights." (0.32: only them.)
        "expression": "!(!variables.ollama && variables.gguf)",
        "messageExpression": (
            "'GGUFOnVLLM: the runtime is vLLM but spec.model.format or quantization is GGUF: the pinned "
            "vLLM loads no GGUF weights (the operator stops a gguf format as InvalidSpec and serves the "
            "Hugging Face weights for a GGUF quantization level); remove spec.model.format gguf and the "
            "GGUF spec.model.quantization (set spec.vllm.quantization awq, gptq or fp8 to quantize on "
            "vLLM)'"
        ),
    },
]


# Creates and updates of LLMServices: what both policies (this one, tenancy_admission.py) match.
MATCH_LLMSERVICES = {
    "resourceRules": [
        {
            "apiGroups": [GROUP],
            "apiVersions": [VERSION],
            "operations": ["CREATE", "UPDATE"],
            "resources": [PLURAL],
        }
    ]
}


def policy_and_binding(
    name: str, labels: dict[str, str], spec: dict[str, Any], binding_spec: dict[str, Any]
) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding (both cluster-scoped, both named `name`)."""
    metadata = {"name": name, "labels": dict(labels)}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": metadata,
            "spec": spec,
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": dict(metadata, labels=dict(labels)),
            "spec": {"policyName": name, **binding_spec},
        },
    ]


def admission_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding (both cluster-scoped)."""
    spec = {
        # Warnings only: a policy that cannot be evaluated must never block an apply.
        "failurePolicy": "Ignore",
        "matchConstraints": copy.deepcopy(MATCH_LLMSERVICES),
        "variables": [{"name": name, "expression": expr} for name, expr in VARIABLES],
        "validations": [dict(v) for v in VALIDATIONS],
    }
    return policy_and_binding(POLICY_NAME, LABELS, spec, {"validationActions": ["Warn"]})


def admission_policy_yaml() -> str:
    header = (
        "# Generated by `llmstage manifests admission-policy` from operator/llmstage/gitops/admission.py.\n"
        "# Apply-time warnings (never rejections) for the article's common mistakes.\n"
    )
    docs = [yaml.safe_dump(d, sort_keys=False, width=4096) for d in admission_policy()]
    return header + "---\n".join(docs)
