"""`llmstage manifests admission-policy`: a warn-only policy for the article's common mistakes.

Behaviour (the warnings kubectl prints, matching resolve()'s findings) is tested on the API
server in tests/integration/test_admission_policy.py; here: the shape the chart copies.
"""

from __future__ import annotations

import re

import pytest
import yaml
from llmstage.cli import main
from llmstage.gitops.admission import POLICY_NAME, admission_policy, admission_policy_yaml


def test_cli_prints_the_policy_and_binding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifests", "admission-policy"]) == 0
    out = capsys.readouterr().out
    assert out == admission_policy_yaml()
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs == admission_policy()
    assert [d["kind"] for d in docs] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert all(d["apiVersion"] == "admissionregistration.k8s.io/v1" for d in docs)


def test_only_warns_and_never_blocks() -> None:
    policy, binding = admission_policy()
    assert binding["spec"] == {"policyName": POLICY_NAME, "validationActions": ["Warn"]}
    assert policy["spec"]["failurePolicy"] == "Ignore"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule == {
        "apiGroups": ["llmstage.io"],
        "apiVersions": ["v1alpha1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["llmservices"],  # not llmservices/status: the operator's writes are not checked
    }


def test_each_warning_names_the_mistake_the_field_and_the_fix() -> None:
    policy, _ = admission_policy()
    messages = [v["messageExpression"] for v in policy["spec"]["validations"]]
    for reason, field in [
        ("OllamaInProduction", "spec.stage"),
        ("TooManyUsersForOllama", "spec.expectedConcurrency"),
        ("GGUFOnVLLM", "spec.model.format"),
    ]:
        (message,) = [m for m in messages if m.startswith(f"'{reason}: ")]
        assert field in message
    assert all("set spec." in m or "remove spec." in m for m in messages)


def test_variables_are_defined_before_use() -> None:
    policy, _ = admission_policy()
    defined: list[str] = []
    for var in policy["spec"]["variables"]:
        assert set(re.findall(r"variables\.(\w+)", var["expression"])) <= set(defined), var["name"]
        defined.append(var["name"])
    for validation in policy["spec"]["validations"]:
        used = re.findall(r"variables\.(\w+)", validation["expression"] + validation["messageExpression"])
        assert set(used) <= set(defined)
