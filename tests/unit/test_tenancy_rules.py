"""The tenant boundary in the operator: what spec.pod may add to the serving pods
(resolve/tenancy.py), and a refused spec stalls with InvalidSpec, an Event and nothing applied."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from llmstage.api.models import LLMService
from llmstage.controller.cache import WatchCache
from llmstage.controller.kube import Kube
from llmstage.controller.reconciler import Reconciler, Settings
from llmstage.gitops.tenancy_admission import cel_message, tenancy_params, tenancy_policy
from llmstage.resolve.resolved import ClusterFacts
from llmstage.resolve.tenancy import SAFE_VOLUME_TYPES, VOLUME_MESSAGE, TenancyPolicy, tenancy_problem

from testkit.tenancy_cases import CASES, REFUSED, Case, in_namespace

NAMESPACE = "team"


def body(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {
            "name": "chat",
            "namespace": NAMESPACE,
            "uid": "u1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"model": {"name": "llama3.1:8b"}, "pod": pod},
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_policy_refuses_exactly_the_cases_field(case: Case) -> None:
    problem = tenancy_problem(LLMService.from_object(body(case.pod)), in_namespace(case.policy, NAMESPACE))
    assert (problem.field if problem else None) == case.field
    if problem is not None:
        # The fix is named: the author's, and the chart value the cluster admin would change.
        assert "ask the cluster admin" in problem.message and "tenancy." in problem.message


def test_the_default_policy_is_the_restricted_standards_volumes_without_csi_plus_image() -> None:
    assert set(TenancyPolicy().volume_types) == {
        "configMap", "secret", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim", "ephemeral",
        "image",
    }  # fmt: skip
    assert TenancyPolicy().service_accounts == () and TenancyPolicy().token_automount is False


class RecordingKube:
    def __init__(self) -> None:
        self.status: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []

    async def patch_status(
        self, kind: Any, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.status = status
        return {**body({}), "status": status}

    async def create(self, kind: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        self.events.append(obj)
        return obj

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a refused spec must not be applied")


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_a_refused_spec_stalls_with_invalid_spec_and_applies_nothing(case: Case) -> None:
    kube, cache = RecordingKube(), WatchCache()
    cache.put_service(body(case.pod))
    settings = Settings(tenancy=in_namespace(case.policy, NAMESPACE))
    reconciler = Reconciler(cast(Kube, kube), cache, ClusterFacts(), settings)

    _, result = asyncio.run(reconciler.reconcile((NAMESPACE, "chat")))

    assert result == "stalled" and kube.status is not None
    stalled = next(c for c in kube.status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert stalled["message"].startswith(f"{case.field}: ")
    assert [(e["type"], e["reason"]) for e in kube.events] == [("Warning", "InvalidSpec")]


def test_the_admission_message_is_the_operators_with_cel_for_the_placeholders() -> None:
    cel = cel_message(VOLUME_MESSAGE, name="v.name", kind="k", allowed="a.join(', ')")
    assert cel.startswith('"volume " + v.name + " is a " + k + " volume, ')
    assert "{" not in cel.replace("{name}", "")  # every placeholder replaced


def test_the_params_carry_the_policy_and_the_binding_reads_them() -> None:
    policy = TenancyPolicy(csi_drivers=("a", "b"), service_accounts=("x", "ns/y"), token_automount=True)
    params = tenancy_params(policy, "llmstage-system")
    assert params["data"] == {
        "volumeTypes": ",".join(SAFE_VOLUME_TYPES),
        "csiDrivers": "a,b",
        "serviceAccounts": "x,ns/y",
        "tokenAutomount": "true",
    }
    vap, binding = tenancy_policy("llmstage-system")
    assert binding["spec"]["paramRef"] == {
        "name": params["metadata"]["name"],
        "namespace": "llmstage-system",
        "parameterNotFoundAction": "Allow",  # the operator refuses on its own (docs/security.md)
    }
    assert binding["spec"]["validationActions"] == ["Deny"] and vap["spec"]["failurePolicy"] == "Fail"


def test_run_flags_make_the_policy_and_help_lists_the_default_volume_types() -> None:
    from llmstage.cli import build_parser
    from llmstage.cli.run import DEFAULT_VOLUME_TYPES, tenancy_policy

    assert ",".join(SAFE_VOLUME_TYPES) == DEFAULT_VOLUME_TYPES
    parser = build_parser()
    assert tenancy_policy(parser.parse_args(["run"])) == TenancyPolicy()
    args = parser.parse_args(
        [
            "run",
            "--allowed-volume-types=configMap, hostPath",
            "--allowed-csi-drivers=",
            "--allowed-service-accounts=irsa,team/x",
            "--allow-service-account-token",
        ]
    )
    assert tenancy_policy(args) == TenancyPolicy(("configMap", "hostPath"), (), ("irsa", "team/x"), True)
