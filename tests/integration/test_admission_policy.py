"""Apply-time warnings: `kubectl apply` prints the policy's warnings and the API server accepts the
object. The warnings must match the findings resolve() reports for the same spec.

The policy and binding are cluster-scoped and shared with other test sessions: they are installed
by server-side apply (idempotent, same content from every session) and left in place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from llmstage.api.models import LLMService
from llmstage.gitops.admission import POLICY_NAME, admission_policy_yaml
from llmstage.resolve import resolve
from llmstage.resolve.errors import SpecError

from testkit import wait_until

MISTAKES = {"OllamaInProduction", "TooManyUsersForOllama", "GGUFOnVLLM"}
KEY = {"apiKeySecretRef": {"name": "llm-api-key"}}


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }


def warned(stderr: str) -> set[str]:
    return set(re.findall(r"Warning: .*?'" + POLICY_NAME + r"': (\w+): ", stderr))


@pytest.fixture(scope="module")
def policy(kubectl, crd_installed: None) -> None:
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=llmstage-tests", "-f", "-",
        stdin=admission_policy_yaml(),
    )  # fmt: skip
    typing = kubectl("get", "validatingadmissionpolicy", POLICY_NAME, "-o", "jsonpath={.status.typeChecking}")
    assert "expressionWarnings" not in typing.stdout, typing.stdout


def dry_run(kubectl, namespace: str, body: dict[str, Any]):
    return kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(body))


GGUF = {"name": "llama3.1:8b", "format": "gguf"}
ONE_GPU = {"gpu": {"count": 1}}
CASES: dict[str, dict[str, Any]] = {
    "production-runtime-ollama": {"stage": "production", "runtime": "ollama"},
    "production-cpu-only-many-users": {
        "stage": "production",
        "expectedConcurrency": 10,
        "resources": {"gpu": {"count": 0}},
    },
    "dev-many-users-no-gpu": {"expectedConcurrency": 8},
    "dev-many-users-gpu": {"expectedConcurrency": 8, "resources": ONE_GPU},
    "staging-vllm-gguf": {"stage": "staging", "runtime": "vllm", "resources": ONE_GPU, "model": GGUF},
    "production-gguf-quantization": {
        "stage": "production",
        "resources": ONE_GPU,
        "vllm": KEY,
        "model": {"name": "llama3.1:8b", "quantization": "q4_K_M"},
    },
    # vLLM's GGUF needs a GGUF checkpoint (on the catalog's safetensors repo it is InvalidSpec).
    "production-vllm-quantization-gguf": {
        "stage": "production",
        "resources": {"gpu": {"count": 2}},
        "model": {"name": "llama3.1:8b", "huggingFaceId": "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF"},
        "vllm": {**KEY, "quantization": "GGUF"},
    },
    "dev-ollama-gguf-is-fine": {
        "expectedConcurrency": 2,
        "model": {"name": "llama3.1:8b", "quantization": "q4_K_M"},
    },
    "dev-gpu-cost-gguf": {"optimizeFor": "gpuCost", "resources": ONE_GPU, "model": GGUF},
    "production-vllm-clean": {"stage": "production", "vllm": KEY, "expectedConcurrency": 50},
    "staging-explicit-ollama-few-users": {"stage": "staging", "runtime": "ollama", "expectedConcurrency": 4},
}


@pytest.mark.parametrize("case", CASES)
def test_warnings_match_the_operators_findings(case: str, policy: None, kubectl, namespace: str) -> None:
    body = manifest("svc", CASES[case])
    try:
        expected = {w.reason for w in resolve(LLMService.from_object(body)).warnings} & MISTAKES
    except SpecError as refused:
        # GGUF weights the pinned vLLM cannot load: the operator refuses them (InvalidSpec) and the
        # policy, which cannot tell a format from a level, warns at apply time.
        assert refused.field in ("spec.model.format", "spec.model.quantization", "spec.vllm.quantization")
        assert "GGUF" in refused.message.upper(), refused.message
        expected = {"GGUFOnVLLM"}
    # A new policy takes a moment to reach the admission plugin; the expected warnings then appear.
    results = []

    def matches() -> bool:
        results.append(dry_run(kubectl, namespace, body))
        return warned(results[-1].stderr) == expected

    wait_until(matches, timeout=30, interval=0.5, what=f"warnings {sorted(expected)}: {results[-1:]}")
    result = results[-1]
    assert "llmservice.llmstage.io/svc created (server dry run)" in result.stdout


def test_apply_prints_the_warning_and_the_object_is_accepted(policy: None, kubectl, namespace: str) -> None:
    body = manifest("prod", {"stage": "production", "runtime": "ollama", "expectedConcurrency": 20})
    wait_until(
        lambda: warned(dry_run(kubectl, namespace, body).stderr), timeout=30, interval=0.5, what="the policy"
    )
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    assert result.returncode == 0
    assert "llmservice.llmstage.io/prod created" in result.stdout
    assert "Warning:" in result.stderr
    assert "OllamaInProduction: spec.stage is production but spec.runtime is ollama" in result.stderr
    assert "TooManyUsersForOllama: spec.expectedConcurrency is 20 (more than 4)" in result.stderr
    assert "set spec.runtime auto or vllm" in result.stderr
    stored = json.loads(kubectl("get", "-n", namespace, "llmservice", "prod", "-o", "json").stdout)
    assert stored["spec"]["runtime"] == "ollama"
    # Updates are checked too: fixing the mistake makes the warnings go away.
    fixed = manifest("prod", {"stage": "production", "vllm": KEY, "expectedConcurrency": 20})
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(fixed))
    assert "llmservice.llmstage.io/prod configured" in result.stdout
    assert POLICY_NAME not in result.stderr
