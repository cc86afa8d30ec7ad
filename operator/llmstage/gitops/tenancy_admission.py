"""The tenant boundary at `kubectl apply` time: a ValidatingAdmissionPolicy that denies what the
operator would refuse (llmstage.resolve.tenancy), so the author sees the refusal at once instead
of an InvalidSpec condition later.

The policy is fixed; the cluster admin's choices are its parameters, a ConfigMap the chart writes
from the same `tenancy` values it passes to the operator (`tenancy_params`), in the release
namespace. Without that ConfigMap the binding admits (parameterNotFoundAction Allow): the policy
does not know the admin's choices then, and a Deny there blocked every LLMService write while
`helm uninstall` removed the ConfigMap before the binding (seen in the test suite). A policy whose
parameters are there but cannot be evaluated fails closed (failurePolicy Fail). Either way the
operator checks the same rules on every reconcile, from its own flags, so an object admitted
without the policy (or created before it) is still refused there.
tests/integration/test_tenancy_live.py runs the cases of testkit/tenancy_cases.py through both.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml

from llmstage.gitops.admission import MATCH_LLMSERVICES, policy_and_binding
from llmstage.resolve.tenancy import (
    ANY,
    AUTOMOUNT_MESSAGE,
    DEFAULT_SERVICE_ACCOUNT,
    SERVICE_ACCOUNT_MESSAGE,
    TOKEN_VOLUME_MESSAGE,
    VOLUME_MESSAGE,
    TenancyPolicy,
)

POLICY_NAME = "llmstage-tenancy"
PARAMS_NAME = "llmstage-tenancy"
LABELS = {"app.kubernetes.io/name": "llmstage", "app.kubernetes.io/component": "tenancy-policy"}

# ConfigMap keys: comma-separated lists (ConfigMap values are strings; CEL's split reads them).
VOLUME_TYPES, CSI_DRIVERS, SERVICE_ACCOUNTS, TOKEN_AUTOMOUNT = (
    "volumeTypes", "csiDrivers", "serviceAccounts", "tokenAutomount",
)  # fmt: skip


def _list(key: str) -> str:
    return f"'{key}' in params.data && params.data.{key} != '' ? params.data.{key}.split(',') : []"


VARIABLES = [
    ("volumes", "has(object.spec.pod) && has(object.spec.pod.volumes) ? object.spec.pod.volumes : []"),
    ("volumeTypes", _list(VOLUME_TYPES)),
    ("csiDrivers", _list(CSI_DRIVERS)),
    ("serviceAccounts", _list(SERVICE_ACCOUNTS)),
    ("tokenAutomount", f"'{TOKEN_AUTOMOUNT}' in params.data && params.data.{TOKEN_AUTOMOUNT} == 'true'"),
    # A volume's type is its one key beside `name`; csi passes per driver (resolve/tenancy.py).
    (
        "refusedVolumes",
        "variables.volumes.filter(v, v.exists(k, k != 'name' && !(k in variables.volumeTypes) && "
        f"!(k == 'csi' && (variables.csiDrivers.exists(d, d == '{ANY}') || "
        "(has(v.csi.driver) && v.csi.driver in variables.csiDrivers)))))",
    ),
    (
        "tokenVolumes",
        "variables.tokenAutomount ? [] : variables.volumes.filter(v, has(v.projected) && "
        "has(v.projected.sources) && v.projected.sources.exists(s, has(s.serviceAccountToken)))",
    ),
    (
        "serviceAccount",
        "has(object.spec.pod) && has(object.spec.pod.serviceAccountName) ? "
        f"object.spec.pod.serviceAccountName : '{DEFAULT_SERVICE_ACCOUNT}'",
    ),
]


def cel_message(template: str, **expressions: str) -> str:
    """A messageExpression from one of resolve/tenancy.py's messages: each {placeholder} becomes the
    CEL expression given for it, the text around it a CEL string literal (JSON's escapes)."""
    parts = re.split(r"\{(\w+)\}", template)
    return " + ".join(
        expressions[part] if i % 2 else json.dumps(part) for i, part in enumerate(parts) if i % 2 or part
    )


VALIDATIONS = [
    {
        "expression": "size(variables.refusedVolumes) == 0",
        "messageExpression": json.dumps("spec.pod.volumes: ")
        + " + "
        + cel_message(
            VOLUME_MESSAGE,
            name="variables.refusedVolumes[0].name",
            kind="variables.refusedVolumes[0].filter(k, k != 'name').join(',')",
            allowed="variables.volumeTypes.join(', ')",
        ),
        "reason": "Forbidden",
    },
    {
        "expression": "size(variables.tokenVolumes) == 0",
        "messageExpression": json.dumps("spec.pod.volumes: ")
        + " + "
        + cel_message(TOKEN_VOLUME_MESSAGE, name="variables.tokenVolumes[0].name"),
        "reason": "Forbidden",
    },
    {
        "expression": (
            f"variables.serviceAccount == '{DEFAULT_SERVICE_ACCOUNT}' || variables.serviceAccounts.exists(a, "
            f"a == '{ANY}' || a == variables.serviceAccount || "
            "a == request.namespace + '/' + variables.serviceAccount)"
        ),
        "messageExpression": json.dumps("spec.pod.serviceAccountName: ")
        + " + "
        + cel_message(
            SERVICE_ACCOUNT_MESSAGE,
            name="variables.serviceAccount",
            permitted=f"(['{DEFAULT_SERVICE_ACCOUNT}'] + variables.serviceAccounts).join(', ')",
        ),
        "reason": "Forbidden",
    },
    {
        "expression": (
            "variables.tokenAutomount || !has(object.spec.pod) || "
            "!has(object.spec.pod.automountServiceAccountToken) || "
            "!object.spec.pod.automountServiceAccountToken"
        ),
        "message": f"spec.pod.automountServiceAccountToken: {AUTOMOUNT_MESSAGE}",
        "reason": "Forbidden",
    },
]


def tenancy_params(policy: TenancyPolicy, namespace: str) -> dict[str, Any]:
    """The ConfigMap the binding reads: the policy's lists as comma-separated strings."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": PARAMS_NAME, "namespace": namespace, "labels": dict(LABELS)},
        "data": {
            VOLUME_TYPES: ",".join(policy.volume_types),
            CSI_DRIVERS: ",".join(policy.csi_drivers),
            SERVICE_ACCOUNTS: ",".join(policy.service_accounts),
            TOKEN_AUTOMOUNT: "true" if policy.token_automount else "false",
        },
    }


def tenancy_policy(params_namespace: str) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding (cluster-scoped), reading the ConfigMap
    PARAMS_NAME in `params_namespace`."""
    spec = {
        "failurePolicy": "Fail",
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": copy.deepcopy(MATCH_LLMSERVICES),
        "variables": [{"name": name, "expression": expr} for name, expr in VARIABLES],
        "validations": [dict(v) for v in VALIDATIONS],
    }
    binding = {
        "validationActions": ["Deny"],
        # Allow without the ConfigMap: the module docstring says why.
        "paramRef": {"name": PARAMS_NAME, "namespace": params_namespace, "parameterNotFoundAction": "Allow"},
    }
    return policy_and_binding(POLICY_NAME, LABELS, spec, binding)


def tenancy_policy_yaml(params_namespace: str = "llmstage-system") -> str:
    header = (
        "# Generated by `make generate` from operator/llmstage/gitops/tenancy_admission.py.\n"
        "# Denies LLMServices whose spec.pod asks for more than the cluster admin allows; the\n"
        f"# parameters are the ConfigMap {PARAMS_NAME} (the chart writes it from its tenancy values).\n"
    )
    docs = [yaml.safe_dump(d, sort_keys=False, width=4096) for d in tenancy_policy(params_namespace)]
    return header + "---\n".join(docs)
