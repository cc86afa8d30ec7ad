"""The tenant boundary: what an LLMService may ask the operator to put into its pods.

    tenancy_problem(service, policy) -> SpecError | None      pure

The operator applies Deployments with its own rights, so without a boundary anyone who may create
an LLMService could get through it what they may not create themselves: a hostPath volume (root
on the node, where the namespace enforces no Pod Security level), the identity of any
ServiceAccount of the namespace, or an API token. llmstage's own pod settings never do that (no
host namespaces, no privileges, non-root, no token); the free-form parts of spec.pod are checked
here against the cluster admin's policy (`llmstage run --allowed-*`, the chart's `tenancy`
values), which the chart also hands to a ValidatingAdmissionPolicy (gitops/tenancy_admission.py) so that
most refusals come at `kubectl apply` time. The admission policy and this module must agree:
tests/integration/test_tenancy_live.py runs the same cases through both.

Checked:

- spec.pod.volumes[]: the volume type (the one key beside `name`) must be in
  `policy.volume_types`; the default is the set the `restricted` Pod Security Standard allows,
  plus `image`, minus `csi`: an inline CSI volume is as safe as its driver, so drivers are allowed
  one by one (`policy.csi_drivers`) unless `csi` itself is in the list.
- a projected volume with a serviceAccountToken source is a token: allowed with token automount.
- spec.pod.serviceAccountName: `default`, or a name in `policy.service_accounts` (NAME in any
  namespace, NAMESPACE/NAME in one, or `*`).
- spec.pod.automountServiceAccountToken: true only with `policy.token_automount`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmstage.api.models import LLMService
from llmstage.resolve.errors import SpecError

# What PodSecurity "restricted" allows (k8s.io/pod-security-admission v0.37.2,
# policy/check_restrictedVolumes.go), without csi (see the module's docstring).
SAFE_VOLUME_TYPES = (
    "configMap", "secret", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim", "ephemeral",
    "image",
)  # fmt: skip
DEFAULT_SERVICE_ACCOUNT = "default"
ANY = "*"
# The refusals, worded once for the operator (str.format) and the admission policy (CEL); each
# ends with the fix: the author's, or the chart value the cluster admin would change.
_ADMIN = (
    "or ask the cluster admin to allow {what} in the operator's configuration ({value} in the chart's values)"
)
VOLUME_MESSAGE = (
    "volume {name} is a {kind} volume, which LLMServices may not use in this cluster: use one of {allowed} "
    + _ADMIN.format(
        what="it", value="tenancy.allowedVolumeTypes, or tenancy.allowedCSIDrivers for a CSI driver,"
    )
)
TOKEN_VOLUME_MESSAGE = (
    "volume {name} projects a ServiceAccount token, which LLMServices may not mount in this cluster: "
    "remove the serviceAccountToken source (the servers never call the Kubernetes API; IRSA and "
    "Workload Identity inject their own token) "
    + _ADMIN.format(what="tokens", value="tenancy.allowServiceAccountToken")
)
SERVICE_ACCOUNT_MESSAGE = (
    "ServiceAccount {name} is not one LLMServices may run as in this cluster (permitted: {permitted}): "
    f"remove the field to run as {DEFAULT_SERVICE_ACCOUNT} "
    + _ADMIN.format(what="it", value="tenancy.allowedServiceAccounts")
)
AUTOMOUNT_MESSAGE = (
    "true mounts an API token into the serving pods, which LLMServices may not do in this cluster: "
    "remove the field (the servers never call the Kubernetes API; IRSA and Workload Identity inject "
    "their own token) " + _ADMIN.format(what="tokens", value="tenancy.allowServiceAccountToken")
)


@dataclass(frozen=True)
class TenancyPolicy:
    """What the cluster admin lets LLMService authors add to the serving pods."""

    volume_types: tuple[str, ...] = SAFE_VOLUME_TYPES
    csi_drivers: tuple[str, ...] = ()
    # NAME (any namespace), NAMESPACE/NAME, or "*"; `default` is always allowed.
    service_accounts: tuple[str, ...] = ()
    token_automount: bool = False

    def allows_service_account(self, namespace: str, name: str) -> bool:
        return name == DEFAULT_SERVICE_ACCOUNT or any(
            entry in (ANY, name, f"{namespace}/{name}") for entry in self.service_accounts
        )

    def allows_volume(self, kind: str, source: Any) -> bool:
        if kind in self.volume_types:
            return True
        driver = source.get("driver") if isinstance(source, dict) else None
        return kind == "csi" and (ANY in self.csi_drivers or driver in self.csi_drivers)


def volume_types(volume: dict[str, Any]) -> list[str]:
    """The source keys of a core/v1 Volume (exactly one in a valid volume)."""
    return sorted(k for k in volume if k != "name")


def _token_sources(volume: dict[str, Any]) -> list[int]:
    projected = volume.get("projected")
    sources = projected.get("sources") if isinstance(projected, dict) else None
    if not isinstance(sources, list):
        return []
    return [j for j, s in enumerate(sources) if isinstance(s, dict) and "serviceAccountToken" in s]


def tenancy_problem(service: LLMService, policy: TenancyPolicy) -> SpecError | None:
    """The first thing in spec.pod the policy does not allow, as the SpecError to report."""
    pod = service.spec.pod
    if pod is None:
        return None
    for i, volume in enumerate(pod.volumes):
        for kind in volume_types(volume):
            if not policy.allows_volume(kind, volume[kind]):
                return SpecError(
                    f"spec.pod.volumes[{i}].{kind}",
                    VOLUME_MESSAGE.format(
                        name=volume.get("name"), kind=kind, allowed=", ".join(policy.volume_types)
                    ),
                )
        if not policy.token_automount:
            for j in _token_sources(volume):
                return SpecError(
                    f"spec.pod.volumes[{i}].projected.sources[{j}].serviceAccountToken",
                    TOKEN_VOLUME_MESSAGE.format(name=volume.get("name")),
                )
    account = pod.service_account_name
    if account is not None and not policy.allows_service_account(service.metadata.namespace or "", account):
        permitted = ", ".join((DEFAULT_SERVICE_ACCOUNT, *policy.service_accounts))
        return SpecError(
            "spec.pod.serviceAccountName", SERVICE_ACCOUNT_MESSAGE.format(name=account, permitted=permitted)
        )
    if pod.automount_service_account_token and not policy.token_automount:
        return SpecError("spec.pod.automountServiceAccountToken", AUTOMOUNT_MESSAGE)
    return None
