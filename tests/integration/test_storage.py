"""The model cache on the local cluster (docs/storage.md): a claim per pod on the default class,
which supports ReadWriteOnce only (hack/cluster/storage.yaml, kwok-rwo, like the default classes of
EKS, GKE and AKS); a shared ReadWriteMany claim only when asked for; an existing claim by name.

Each test has its own namespace; the operator is the session's (tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from testkit import OperatorProcess, wait_until
from testkit.services import GROUP, PLURAL, VERSION, LLMServices

H100 = "NVIDIA-H100-80GB-HBM3"
# The test bed's classes (hack/cluster/storage.yaml).
RWO_ONLY_CLASS = "kwok-rwo"
ANY_MODE_CLASS = "kwok-volume"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


class Bed(LLMServices):
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.storage = client.StorageV1Api(api)

    def claims(self) -> dict[str, client.V1PersistentVolumeClaim]:
        return {c.metadata.name: c for c in self.core.list_namespaced_persistent_volume_claim(self.ns).items}

    def pods(self, name: str) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/instance={name}"
        return [
            p
            for p in self.core.list_namespaced_pod(self.ns, label_selector=selector).items
            if not p.metadata.deletion_timestamp
        ]

    def default_class(self) -> str | None:
        for sc in self.storage.list_storage_class().items:
            if (sc.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                return str(sc.metadata.name)
        return None

    def has_class(self, name: str) -> bool:
        return any(sc.metadata.name == name for sc in self.storage.list_storage_class().items)


@pytest.fixture
def bed(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Bed:
    b = Bed(api_client, namespace)
    b.create_api_key_secret()
    return b


def production(**extra: Any) -> dict[str, Any]:
    """Production vLLM without storage settings: the stage's autoscaling (2 to 8 pods)."""
    return {
        "stage": "production",
        "resources": {"gpu": {"count": 1, "product": H100}},
        "vllm": {"apiKeySecretRef": {"name": "llm-api-key"}},
        **extra,
    }


def test_production_without_storage_settings_gets_a_claim_per_pod_that_binds_on_a_rwo_only_class(
    bed: Bed,
) -> None:
    default = bed.default_class()
    if default != RWO_ONLY_CLASS:
        pytest.skip(
            f"the default StorageClass is {default}, not the test bed's ReadWriteOnce-only {RWO_ONLY_CLASS}"
        )
    bed.create("prod", **production())
    bed.wait_condition("prod", "Ready", timeout=120)

    def two_bound() -> list[client.V1PersistentVolumeClaim] | None:
        pods = [p for p in bed.pods("prod") if p.spec.node_name]
        claims = bed.claims()
        mine = [claims.get(f"{p.metadata.name}-model-cache") for p in pods]
        bound = [c for c in mine if c is not None and c.status.phase == "Bound"]
        return bound if len(pods) >= 2 and len(bound) == len(pods) else None

    claims = wait_until(two_bound, timeout=90, what="a Bound claim for each scheduled pod")
    for claim in claims:
        assert claim.spec.storage_class_name == RWO_ONLY_CLASS
        assert claim.spec.access_modes == ["ReadWriteOnce"]
        (owner,) = claim.metadata.owner_references
        assert owner.kind == "Pod" and owner.controller  # Kubernetes deletes it with its pod
        assert claim.metadata.labels["app.kubernetes.io/instance"] == "prod"
        assert "app.kubernetes.io/managed-by" not in claim.metadata.labels
    assert "prod-vllm-cache" not in bed.claims()  # no shared claim
    strategy = (
        client.AppsV1Api(bed.core.api_client).read_namespaced_deployment("prod-vllm", bed.ns).spec.strategy
    )
    assert strategy.type == "RollingUpdate"


def test_a_shared_read_write_many_claim_on_a_rwo_only_class_stalls_naming_the_class(bed: Bed) -> None:
    if not bed.has_class(RWO_ONLY_CLASS):
        pytest.skip(f"no StorageClass {RWO_ONLY_CLASS} (the local test bed's)")
    bed.create(
        "shared", replicas=2, cache={"accessMode": "ReadWriteMany", "storageClassName": RWO_ONLY_CLASS}
    )
    stalled = bed.wait_condition("shared", "Stalled", timeout=90)
    assert stalled["reason"] == "Unschedulable", stalled
    assert (
        f"The model cache claim shared-ollama-cache (StorageClass {RWO_ONLY_CLASS}, ReadWriteMany) is Pending"
        in stalled["message"]
    ), stalled["message"]
    assert "remove spec.cache.accessMode for a claim per pod" in stalled["message"]
    # The way out the message gives: without accessMode, a claim per pod, which the class provides.
    bed.patch_spec("shared", {"cache": {"accessMode": None, "storageClassName": RWO_ONLY_CLASS}})
    bed.wait_condition("shared", "Ready", timeout=120)
    wait_until(lambda: "shared-ollama-cache" not in bed.claims(), timeout=60, what="the shared claim pruned")


def test_a_claim_per_pod_that_stays_pending_stalls_naming_the_pod_claim_and_class(bed: Bed) -> None:
    bed.create("nodisk", replicas=2, cache={"storageClassName": "no-such-class"})
    stalled = bed.wait_condition("nodisk", "Stalled", timeout=90)
    assert stalled["reason"] == "Unschedulable", stalled
    message = stalled["message"]
    assert "-model-cache of pod nodisk-ollama-" in message, message
    assert "(one claim per pod; StorageClass no-such-class, ReadWriteOnce) is Pending" in message, message


def test_a_shared_claim_read_write_many_on_a_class_that_supports_it_serves_every_pod(bed: Bed) -> None:
    if not bed.has_class(ANY_MODE_CLASS):
        pytest.skip(f"no StorageClass {ANY_MODE_CLASS} (the local test bed's)")
    bed.create("nfs", replicas=2, cache={"accessMode": "ReadWriteMany", "storageClassName": ANY_MODE_CLASS})
    bed.wait_condition("nfs", "Ready", timeout=120)
    claim = wait_until(
        lambda: (c := bed.claims().get("nfs-ollama-cache")) is not None and c.status.phase == "Bound" and c,
        timeout=60,
        what="the shared claim to bind",
    )
    assert claim.spec.access_modes == ["ReadWriteMany"]
    assert not [n for n in bed.claims() if n.endswith("-model-cache")]  # no claim per pod


def test_an_existing_claim_is_mounted_and_outlives_the_service(bed: Bed) -> None:
    bed.core.create_namespaced_persistent_volume_claim(
        bed.ns,
        {
            "metadata": {"name": "weights"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
        },
    )
    bed.create("mine", cache={"claimName": "weights"})
    bed.wait_condition("mine", "Ready", timeout=120)
    (pod,) = bed.pods("mine")
    volume = next(v for v in pod.spec.volumes if v.name == "model-cache")
    assert volume.persistent_volume_claim.claim_name == "weights"
    assert set(bed.claims()) == {"weights"}  # nothing created beside it
    bed.custom.delete_namespaced_custom_object(GROUP, VERSION, bed.ns, PLURAL, "mine")
    wait_until(lambda: not bed.pods("mine"), timeout=90, what="the service's pods to go")
    claim = bed.claims()["weights"]
    assert claim.metadata.deletion_timestamp is None and not claim.metadata.owner_references


def test_a_single_pod_keeps_a_shared_claim_and_a_second_replica_switches_to_claims_per_pod(bed: Bed) -> None:
    bed.create("grow", replicas=1)
    bed.wait_condition("grow", "Ready", timeout=120)
    assert bed.claims()["grow-ollama-cache"].spec.access_modes == ["ReadWriteOnce"]
    bed.patch_spec("grow", {"replicas": 2})

    def switched() -> bool:
        claims = bed.claims()
        pods = [p for p in bed.pods("grow") if p.spec.node_name]
        per_pod = [claims.get(f"{p.metadata.name}-model-cache") for p in pods]
        return (
            "grow-ollama-cache" not in claims
            and len(pods) == 2
            and all(c is not None and c.status.phase == "Bound" for c in per_pod)
        )

    # The shared claim is pruned at once and goes when its last pod is gone (pvc-protection).
    wait_until(switched, timeout=120, what="two pods with a claim each and the shared claim pruned")
    bed.wait_condition("grow", "Ready", timeout=60)
