"""spec.pod settings the tenant boundary refuses or admits, shared by the operator's tests
(tests/unit/test_tenancy_rules.py: resolve/tenancy.py and the reconciler's status) and the admission
policy's (tests/integration/test_tenancy_live.py: the same cases on the API server).

Every case is checked against the default policy unless it names one; `field` is the operator's
SpecError field, `admission_field` the prefix of the admission policy's message (CEL cannot name
the list index).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from llmstage.resolve.tenancy import TenancyPolicy


@dataclass(frozen=True)
class Case:
    id: str
    pod: dict[str, Any]
    field: str | None  # None: admitted
    policy: TenancyPolicy = dataclasses.field(default_factory=TenancyPolicy)

    @property
    def admission_field(self) -> str | None:
        if self.field is None:
            return None
        return "spec.pod.volumes" if self.field.startswith("spec.pod.volumes[") else self.field


TOKEN = {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
CONFIG = {"configMap": {"name": "ca"}}


def one(volume: dict[str, Any]) -> dict[str, Any]:
    return {"volumes": [{"name": "extra", **volume}]}


REFUSED = [
    Case("hostpath", one({"hostPath": {"path": "/"}}), "spec.pod.volumes[0].hostPath"),
    Case("nfs", one({"nfs": {"server": "nfs.example", "path": "/"}}), "spec.pod.volumes[0].nfs"),
    Case(
        "hostpath-after-an-allowed-volume",
        {"volumes": [{"name": "ca", **CONFIG}, {"name": "root", "hostPath": {"path": "/var/run"}}]},
        "spec.pod.volumes[1].hostPath",
    ),
    Case(
        "csi-of-a-driver-not-allowed",
        one({"csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True}}),
        "spec.pod.volumes[0].csi",
    ),
    Case(
        "projected-service-account-token",
        one({"projected": {"sources": [CONFIG, TOKEN]}}),
        "spec.pod.volumes[0].projected.sources[1].serviceAccountToken",
    ),
    Case("another-service-account", {"serviceAccountName": "admin-sa"}, "spec.pod.serviceAccountName"),
    Case(
        "service-account-allowed-in-another-namespace-only",
        {"serviceAccountName": "irsa"},
        "spec.pod.serviceAccountName",
        TenancyPolicy(service_accounts=("elsewhere/irsa",)),
    ),
    Case("token-automount", {"automountServiceAccountToken": True}, "spec.pod.automountServiceAccountToken"),
    Case(
        "secret-volume-when-the-admin-removed-secret",
        one({"secret": {"secretName": "s"}}),
        "spec.pod.volumes[0].secret",
        TenancyPolicy(volume_types=("configMap", "emptyDir")),
    ),
]

ADMITTED = [
    Case("no-pod-settings", {}, None),
    Case(
        "every-safe-type",
        {
            "volumes": [
                {"name": "a", **CONFIG},
                {"name": "b", "secret": {"secretName": "s"}},
                {"name": "c", "projected": {"sources": [CONFIG]}},
                {
                    "name": "d",
                    "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]},
                },
                {"name": "e", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "f", "persistentVolumeClaim": {"claimName": "c"}},
                {
                    "name": "g",
                    "ephemeral": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "1Gi"}},
                            }
                        }
                    },
                },
                {"name": "h", "image": {"reference": "registry.example/models/x:1"}},
            ]
        },
        None,
    ),
    Case("default-service-account-by-name", {"serviceAccountName": "default"}, None),
    Case(
        "hostpath-the-admin-allows",
        one({"hostPath": {"path": "/data"}}),
        None,
        TenancyPolicy(volume_types=("configMap", "hostPath")),
    ),
    Case(
        "csi-of-an-allowed-driver",
        one({"csi": {"driver": "secrets-store.csi.k8s.io"}}),
        None,
        TenancyPolicy(csi_drivers=("secrets-store.csi.k8s.io",)),
    ),
    Case("csi-any-driver", one({"csi": {"driver": "x.example"}}), None, TenancyPolicy(csi_drivers=("*",))),
    Case(
        "service-account-by-name",
        {"serviceAccountName": "irsa"},
        None,
        TenancyPolicy(service_accounts=("irsa",)),
    ),
    Case(
        "service-account-in-this-namespace",
        {"serviceAccountName": "irsa"},
        None,
        TenancyPolicy(service_accounts=("NAMESPACE/irsa",)),
    ),
    Case("any-service-account", {"serviceAccountName": "x"}, None, TenancyPolicy(service_accounts=("*",))),
    Case(
        "token-the-admin-allows",
        {"automountServiceAccountToken": True, **one({"projected": {"sources": [TOKEN]}})},
        None,
        TenancyPolicy(token_automount=True),
    ),
]

CASES = REFUSED + ADMITTED


def in_namespace(policy: TenancyPolicy, namespace: str) -> TenancyPolicy:
    """The policy with NAMESPACE/ entries pointed at the test's namespace."""
    return TenancyPolicy(
        volume_types=policy.volume_types,
        csi_drivers=policy.csi_drivers,
        service_accounts=tuple(a.replace("NAMESPACE/", f"{namespace}/") for a in policy.service_accounts),
        token_automount=policy.token_automount,
    )
