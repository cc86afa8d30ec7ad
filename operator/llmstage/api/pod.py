"""spec.pod: pod-level settings of the serving pods (identity, pull secrets, metadata, volumes)."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from llmstage.api.base import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_VALUE,
    QUALIFIED_NAME,
    ApiModel,
    CelRule,
    LocalObjectReference,
    cel_list,
)
from llmstage.api.constants import (
    MANAGED_ANNOTATIONS,
    MANAGED_LABEL_PREFIXES,
    MANAGED_MOUNT_PATHS,
    MANAGED_VOLUME_PREFIX,
    MANAGED_VOLUMES,
)
from llmstage.api.quantity import QUANTITY_PATTERN
from pydantic import AfterValidator, Field


class VolumeMount(ApiModel):
    """Where one of spec.pod.volumes appears in the server and the model download step."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="A volume of spec.pod.volumes."
    )
    mount_path: str = Field(
        min_length=2,
        max_length=1024,
        pattern=r"^(/[^/:]+)+$",
        description="Absolute path in the containers, e.g. /etc/ssl/mirror (no trailing '/', no ':').",
    )
    read_only: bool | None = Field(default=None, description="Mount read-only.")
    sub_path: str | None = Field(
        default=None, max_length=1024, pattern=r"^[^/].*$", description="A path inside the volume (relative)."
    )


EMPTY_DIR_SIZE_MESSAGE = (
    "spec.pod.volumes[].emptyDir needs a sizeLimit (e.g. 1Gi): without one the pod may fill the node's "
    "disk (or, with medium Memory, its memory)"
)


def _check_volume(volume: dict[str, Any]) -> dict[str, Any]:
    name = volume.get("name")
    if not isinstance(name, str) or not re.match(DNS_LABEL, name) or len(name) > 63:
        raise ValueError("a volume needs a name: a DNS label of at most 63 characters (e.g. 'ca-bundle')")
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("sizeLimit") is None:
        raise ValueError(EMPTY_DIR_SIZE_MESSAGE)
    return volume


Volume = Annotated[dict[str, Any], AfterValidator(_check_volume)]


def _mount_path_taken(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in MANAGED_MOUNT_PATHS)


class PodSettings(ApiModel):
    """Pod-level settings of the serving pods (both runtimes): identity, pull secrets, metadata, volumes."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.labels) || !self.labels.exists(k, "
                + " || ".join(f"k.startsWith('{p}')" for p in MANAGED_LABEL_PREFIXES)
                + ")"
            ),
            message=(
                "spec.pod.labels must not use the prefixes "
                + ", ".join(MANAGED_LABEL_PREFIXES)
                + ": llmstage's selectors use them; choose another key"
            ),
            check=lambda s: not any(k.startswith(MANAGED_LABEL_PREFIXES) for k in s.labels),
            field_path=".labels",
        ),
        CelRule(
            rule=(
                f"!has(self.annotations) || !self.annotations.exists(k, k in {cel_list(MANAGED_ANNOTATIONS)}"
                " || k.startsWith('llmstage.io/'))"
            ),
            message=(
                "spec.pod.annotations must not set "
                + ", ".join(MANAGED_ANNOTATIONS)
                + " or llmstage.io/* annotations: llmstage sets them"
            ),
            check=lambda s: (
                not any(k in MANAGED_ANNOTATIONS or k.startswith("llmstage.io/") for k in s.annotations)
            ),
            field_path=".annotations",
        ),
        CelRule(
            rule=(
                f"!has(self.volumes) || self.volumes.all(v, !(v.name in {cel_list(MANAGED_VOLUMES)}) && "
                f"!v.name.startsWith('{MANAGED_VOLUME_PREFIX}'))"
            ),
            message=(
                "spec.pod.volumes[].name must not be "
                + ", ".join(MANAGED_VOLUMES)
                + f" or start with {MANAGED_VOLUME_PREFIX}: llmstage's own volumes have these names; "
                "rename the volume"
            ),
            check=lambda s: (
                not any(
                    v.get("name") in MANAGED_VOLUMES or str(v.get("name")).startswith(MANAGED_VOLUME_PREFIX)
                    for v in s.volumes
                )
            ),
            field_path=".volumes",
        ),
        CelRule(
            rule="!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
            message="spec.pod.volumes[].name must be unique: rename or remove the duplicate",
            check=lambda s: len({v.get("name") for v in s.volumes}) == len(s.volumes),
            field_path=".volumes",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || self.volumeMounts.all(m, "
                "has(self.volumes) && self.volumes.exists(v, v.name == m.name))"
            ),
            message="spec.pod.volumeMounts[].name must name a volume of spec.pod.volumes: add the volume",
            check=lambda s: all(any(v.get("name") == m.name for v in s.volumes) for m in s.volume_mounts),
            field_path=".volumeMounts",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || self.volumeMounts.all(m, "
                "!"
                + cel_list(MANAGED_MOUNT_PATHS)
                + ".exists(p, m.mountPath == p || m.mountPath.startsWith(p + '/')))"
            ),
            message=(
                "spec.pod.volumeMounts[].mountPath must not be at or under "
                + ", ".join(MANAGED_MOUNT_PATHS)
                + ": llmstage mounts the model cache, HOME, /tmp and shared memory there; choose another path"
            ),
            check=lambda s: not any(_mount_path_taken(m.mount_path) for m in s.volume_mounts),
            field_path=".volumeMounts",
        ),
        CelRule(
            rule=(
                "!has(self.volumeMounts) || "
                "self.volumeMounts.all(m, self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))"
            ),
            message="spec.pod.volumeMounts[].mountPath must be unique: remove the duplicate",
            check=lambda s: len({m.mount_path for m in s.volume_mounts}) == len(s.volume_mounts),
            field_path=".volumeMounts",
        ),
    )

    service_account_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=(
            "ServiceAccount of the serving pods, e.g. one annotated for IRSA (EKS) or Workload Identity "
            "(GKE, AKS) to read models from a bucket. Default: the namespace's default ServiceAccount."
        ),
    )
    automount_service_account_token: bool = Field(
        default=False,
        description=(
            "Mount the ServiceAccount's API token. The servers never call the Kubernetes API, so the "
            "default is false; IRSA and Azure Workload Identity inject their own projected token."
        ),
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Secrets (type kubernetes.io/dockerconfigjson) for pulling the runtime image from a private "
            "registry."
        ),
    )
    labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict,
        max_length=32,
        description=(
            "Extra labels of the serving pods, e.g. sidecar.istio.io/inject: 'false'. The app.kubernetes.io/ "
            "and llmstage.io/ prefixes are llmstage's."
        ),
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra annotations of the serving pods, e.g. for a service mesh or a log shipper.",
        json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 316}},
    )
    volumes: list[Volume] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Extra core/v1 Volumes of the serving pods (e.g. a ConfigMap with a CA bundle, a CSI secret "
            "store). Checked by the API server when llmstage applies the Deployment: a wrong one shows as "
            "Stalled with reason ApplyRejected and the API server's message."
        ),
        json_schema_extra={
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "description": "Name of the volume, for spec.pod.volumeMounts[].name.",
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 63,
                        "pattern": DNS_LABEL,
                    },
                    # Declared so that the rule below can see sizeLimit (CEL reads declared fields only).
                    "emptyDir": {
                        "description": "A core/v1 EmptyDirVolumeSource; needs a sizeLimit.",
                        "type": "object",
                        "properties": {
                            "medium": {
                                "description": "'' (the node's disk) or Memory.",
                                "type": "string",
                                "maxLength": 64,
                            },
                            "sizeLimit": {
                                "description": "Most the volume may hold, e.g. 1Gi.",
                                "x-kubernetes-int-or-string": True,
                                "anyOf": [{"type": "integer"}, {"type": "string"}],
                                "pattern": QUANTITY_PATTERN,
                            },
                        },
                        "x-kubernetes-validations": [
                            {"rule": "has(self.sizeLimit)", "message": EMPTY_DIR_SIZE_MESSAGE}
                        ],
                    },
                },
                "x-kubernetes-preserve-unknown-fields": True,
            }
        },
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list,
        max_length=16,
        description="Where spec.pod.volumes appear in the server container and the model download step.",
    )
