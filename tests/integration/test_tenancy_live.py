"""The tenant boundary on a real API server: the admission policy refuses exactly what the operator
refuses (testkit/tenancy_cases.py), with the same message; a tenant who may create LLMServices and
nothing else (the chart's edit role, impersonated) cannot get a hostPath, a privileged container or
another ServiceAccount's token through one; and the operator refuses such a spec on its own when
it bypassed admission (InvalidSpec, no Deployment).

The policy is cluster-scoped and shared with the other tests of the session, so its bindings here
match only namespaces labelled for this module; each distinct policy of the cases gets its own
namespace, parameter ConfigMap and binding.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from llmstage.api.models import LLMService
from llmstage.gitops.tenancy_admission import POLICY_NAME, tenancy_params, tenancy_policy
from llmstage.resolve.tenancy import TenancyPolicy, tenancy_problem

from testkit import wait_until
from testkit.chart import template
from testkit.services import LLMServices, llmservice
from testkit.tenancy_cases import CASES, Case, in_namespace

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
LABEL = "llmstage.io/tenancy-test"
TENANT = "tenant@example.com"
# A spec every policy of the cases refuses (none allows nfs): the binding is in force once it is.
CANARY = {"volumes": [{"name": "canary", "nfs": {"server": "nfs.example", "path": "/"}}]}


def body(name: str, pod: dict[str, Any]) -> dict[str, Any]:
    return llmservice(name, pod=pod)


def create(
    kubectl: Kubectl, namespace: str, obj: dict[str, Any], *, dry_run: bool = True, user: str = ""
) -> Any:
    args = ["create", "-n", namespace, "-f", "-", *(["--dry-run=server"] if dry_run else [])]
    return kubectl(*args, *(["--as", user] if user else []), check=False, stdin=json.dumps(obj))


def denied_message(stderr: str) -> str | None:
    match = re.search(
        rf"ValidatingAdmissionPolicy '{POLICY_NAME}[^']*' with binding '[^']*' denied request: (.*)", stderr
    )
    return match.group(1).strip() if match else None


class Bed:
    """One namespace per distinct policy, each bound to the policy with its own parameters."""

    def __init__(self, kubectl: Kubectl, api: client.ApiClient, prefix: str) -> None:
        self.kubectl, self.core, self.prefix = kubectl, client.CoreV1Api(api), prefix
        self.namespaces: dict[TenancyPolicy, str] = {}

    def namespace_for(self, policy: TenancyPolicy) -> str:
        if policy not in self.namespaces:
            name = f"{self.prefix}ten-{len(self.namespaces)}"
            self.core.create_namespace(
                {"metadata": {"name": name, "labels": {LABEL: name, "llmstage.io/test": "true"}}}
            )
            params = tenancy_params(in_namespace(policy, name), name)
            _, binding = tenancy_policy(name)
            binding["metadata"]["name"] = f"{POLICY_NAME}-{name}"
            binding["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {LABEL: name}}}
            self.kubectl(
                "apply",
                "-f",
                "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [params, binding]}),
            )
            wait_until(
                lambda: denied_message(create(self.kubectl, name, body("canary", CANARY)).stderr),
                timeout=30,
                what=f"the tenancy binding of {name} in force",
            )
            self.namespaces[policy] = name
        return self.namespaces[policy]

    def close(self) -> None:
        for name in self.namespaces.values():
            self.kubectl(
                "delete", "validatingadmissionpolicybinding", f"{POLICY_NAME}-{name}", "--ignore-not-found"
            )
            self.core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def bed(
    kubectl: Kubectl, api_client: client.ApiClient, crd_installed: None, namespace_prefix: str
) -> Iterator[Bed]:
    policy, _ = tenancy_policy("unused")
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=llmstage-tests", "-f", "-",
        stdin=json.dumps(policy),
    )  # fmt: skip
    typing = kubectl("get", "validatingadmissionpolicy", POLICY_NAME, "-o", "jsonpath={.status.typeChecking}")
    assert "expressionWarnings" not in typing.stdout, typing.stdout
    b = Bed(kubectl, api_client, namespace_prefix)
    yield b
    b.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_admission_refuses_what_the_operator_refuses_with_its_message(
    case: Case, bed: Bed, kubectl: Kubectl
) -> None:
    namespace = bed.namespace_for(case.policy)
    obj = body(case.id[:50], case.pod)
    res = create(kubectl, namespace, obj)
    message = denied_message(res.stderr)
    if case.admission_field is None:
        assert res.returncode == 0, res.stderr
        return
    assert res.returncode != 0 and message is not None, res.stderr
    field, _, text = message.partition(": ")
    assert field == case.admission_field
    service = LLMService.from_object({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    problem = tenancy_problem(service, in_namespace(case.policy, namespace))
    assert problem is not None and text == problem.message


# ---------------------------------------------------------------- a tenant with LLMServices only


@pytest.fixture(scope="module")
def tenant_namespace(bed: Bed, kubectl: Kubectl) -> str:
    """The default policy's namespace, where TENANT holds the chart's edit role and nothing else."""
    namespace = bed.namespace_for(TenancyPolicy())
    roles = [
        d for d in template({}) if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "llmstage-edit"
    ]
    kubectl("apply", "--server-side", "--field-manager=llmstage-tests", "-f", "-", stdin=json.dumps(roles[0]))
    kubectl(
        "create", "rolebinding", "tenant", "-n", namespace, "--clusterrole=llmstage-edit", f"--user={TENANT}"
    )
    kubectl("create", "serviceaccount", "admin-sa", "-n", namespace)
    return namespace


def can_i(kubectl: Kubectl, verb: str, resource: str, namespace: str) -> bool:
    resource, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    res = kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace, "--as", TENANT, check=False)
    return res.stdout.strip() == "yes"


def test_the_tenant_may_manage_llmservices_and_nothing_else(tenant_namespace: str, kubectl: Kubectl) -> None:
    for verb in ("create", "update", "delete", "get", "list"):
        assert can_i(kubectl, verb, "llmservices.llmstage.io", tenant_namespace)
    for verb, resource in [
        ("create", "pods"),
        ("create", "deployments.apps"),
        ("get", "secrets"),
        ("create", "serviceaccounts/token"),
        ("update", "llmservices.llmstage.io/status"),
    ]:
        assert not can_i(kubectl, verb, resource, tenant_namespace), (verb, resource)


PRIVILEGED = {
    "hostPath": {
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "volumeMounts": [{"name": "root", "mountPath": "/host"}],
    },
    "another-service-accounts-identity": {"serviceAccountName": "admin-sa"},
    "a-token-by-automount": {"automountServiceAccountToken": True},
    "another-service-accounts-token-by-projection": {
        "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    },
}


@pytest.mark.parametrize("pod", PRIVILEGED.values(), ids=list(PRIVILEGED))
def test_the_tenant_cannot_get_more_through_an_llmservice(
    pod: dict[str, Any], tenant_namespace: str, kubectl: Kubectl
) -> None:
    res = create(kubectl, tenant_namespace, body("escalate", pod), dry_run=False, user=TENANT)
    assert res.returncode != 0 and denied_message(res.stderr), res.stderr


@pytest.mark.parametrize(
    "spec",
    [
        {"pod": {"securityContext": {"privileged": True}}},
        {"ollama": {"securityContext": {"privileged": True}}},
        {"pod": {"hostNetwork": True}},
        {"pod": {"hostPID": True}},
    ],
    ids=["pod-security-context", "container-security-context", "host-network", "host-pid"],
)
def test_there_is_no_field_for_privileges(
    spec: dict[str, Any], tenant_namespace: str, kubectl: Kubectl
) -> None:
    """A privileged container or the host's namespaces: the schema has no such field (strict field
    validation refuses it instead of dropping it)."""
    obj = llmservice("privileged", **spec)
    res = kubectl(
        "create", "-n", tenant_namespace, "--as", TENANT, "-f", "-", check=False, stdin=json.dumps(obj)
    )
    assert res.returncode != 0 and "unknown field" in res.stderr, res.stderr


def test_what_the_tenant_gets_is_unprivileged(
    tenant_namespace: str, kubectl: Kubectl, operator: Any, api_client: client.ApiClient
) -> None:
    """An admitted LLMService, reconciled by the operator: the pod template runs as non-root,
    without privileges, host access, a token or another ServiceAccount."""
    pod = {
        "volumes": [{"name": "ca", "configMap": {"name": "ca"}}],
        "volumeMounts": [{"name": "ca", "mountPath": "/etc/ca"}],
    }
    res = create(kubectl, tenant_namespace, body("chat", pod), dry_run=False, user=TENANT)
    assert res.returncode == 0, res.stderr
    apps = client.AppsV1Api(api_client)
    deployment = wait_until(
        lambda: next(iter(apps.list_namespaced_deployment(tenant_namespace).items), None),
        timeout=60,
        what="the Deployment of chat",
    )
    spec = api_client.sanitize_for_serialization(deployment.spec.template.spec)
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    assert all(
        set(v) - {"name"} <= {"configMap", "emptyDir", "persistentVolumeClaim", "ephemeral"}
        for v in spec["volumes"]
    )
    assert spec["securityContext"]["runAsNonRoot"] is True
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in context


def test_the_operator_refuses_what_bypassed_admission(
    namespace: str, operator: Any, api_client: client.ApiClient
) -> None:
    """No binding matches this namespace (as when the chart's policy is off, or the object predates
    it): the operator refuses on its own, names the field and creates nothing."""
    services = LLMServices(api_client, namespace)
    services.create("root", pod={"volumes": [{"name": "root", "hostPath": {"path": "/"}}]})
    stalled = services.wait_condition("root", "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("spec.pod.volumes[0].hostPath: volume root is a hostPath volume")
    assert client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items == []
