"""The watch cache: ownership index, slimming, and no roll-back to older versions."""

from __future__ import annotations

from typing import Any

from llmstage.controller.cache import WatchCache


def child(rv: str, uid: str = "u1", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "chat-ollama",
            "namespace": "team",
            "uid": uid,
            "resourceVersion": rv,
            "managedFields": [{"manager": "llmstage"}],
            "ownerReferences": [{"kind": "LLMService", "name": "chat", "controller": True}],
        },
        "spec": {"replicas": replicas},
    }


def test_children_are_indexed_by_their_controlling_llmservice_and_slimmed() -> None:
    cache = WatchCache()
    assert cache.put_child(child("5")) == ("team", "chat")
    stored = cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]
    assert "managedFields" not in stored["metadata"]
    orphan = child("6")
    orphan["metadata"]["ownerReferences"] = []
    assert cache.put_child(orphan) is None


def test_a_late_watch_event_does_not_roll_the_cache_back() -> None:
    cache = WatchCache()
    cache.put_child(child("10", replicas=2))  # our apply's response
    cache.put_child(child("9", replicas=1))  # the watch event of an older version, arriving late
    assert cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]["spec"]["replicas"] == 2
    cache.put_child(child("11", replicas=3))
    assert cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]["spec"]["replicas"] == 3


def test_a_stale_delete_of_an_old_object_keeps_the_new_one_with_the_same_name() -> None:
    cache = WatchCache()
    cache.put_child(child("20", uid="new"))
    cache.put_child(child("3", uid="old"), deleted=True)
    assert ("Deployment", "chat-ollama") in cache.children[("team", "chat")]
    cache.put_child(child("21", uid="new"), deleted=True)
    assert ("Deployment", "chat-ollama") not in cache.children[("team", "chat")]


def test_endpoint_slices_and_pods_are_found_by_labels() -> None:
    cache = WatchCache()
    eps = {
        "metadata": {
            "name": "chat-x1",
            "namespace": "team",
            "labels": {"kubernetes.io/service-name": "chat", "app.kubernetes.io/managed-by": "llmstage"},
        },
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
    }
    assert cache.put_slice(eps) == ("team", "chat")
    foreign = {
        "metadata": {"name": "db-1", "namespace": "team", "labels": {"kubernetes.io/service-name": "db"}}
    }
    assert cache.put_slice(foreign) is None
    pod = {
        "metadata": {
            "name": "chat-ollama-1",
            "namespace": "team",
            "labels": {"app.kubernetes.io/name": "llmstage", "app.kubernetes.io/instance": "chat"},
        },
        "spec": {"containers": [{"name": "big"}]},
        "status": {"phase": "Pending"},
    }
    assert cache.put_pod(pod) == ("team", "chat")
    assert "spec" not in cache.pods[("team", "chat")]["chat-ollama-1"]  # only what status needs
    assert cache.counts() == {
        "llmservices": 0,
        "children": 0,
        "endpointslices": 1,
        "pods": 1,
        "podclaims": 0,
        "benchmarks": 0,
    }


def test_claims_per_pod_are_kept_by_service_with_class_modes_and_phase_only() -> None:
    cache = WatchCache()
    labels = {
        "app.kubernetes.io/name": "llmstage",
        "app.kubernetes.io/instance": "chat",
        "app.kubernetes.io/component": "cache",
        "llmstage.io/runtime": "vllm",
    }
    claim: dict[str, Any] = {
        "metadata": {
            "name": "chat-vllm-1-model-cache",
            "namespace": "team",
            "labels": labels,
            "ownerReferences": [{"kind": "Pod", "name": "chat-vllm-1", "controller": True}],
        },
        "spec": {"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }
    # Kept for the Unschedulable message; the pod's own events bring the reconcile, not the claim's.
    assert cache.put_pod_claim(claim) == ("team", "chat") and not cache.changed
    stored = cache.pod_claims[("team", "chat")]["chat-vllm-1-model-cache"]
    assert stored["spec"] == {"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]}
    assert cache.put_pod_claim({**claim, "status": {"phase": "Bound"}}) and not cache.changed
    assert cache.pod_claims[("team", "chat")]["chat-vllm-1-model-cache"]["status"] == {"phase": "Bound"}
    # Our shared claim (managed-by) is a child, not a claim per pod; foreign claims are not ours.
    shared = {
        **claim,
        "metadata": {**claim["metadata"], "labels": {**labels, "app.kubernetes.io/managed-by": "llmstage"}},
    }
    assert cache.put_pod_claim(shared) is None
    assert cache.put_pod_claim({**claim, "metadata": {**claim["metadata"], "labels": {}}}) is None
    assert cache.put_pod_claim(claim, deleted=True) == ("team", "chat") and not cache.changed
    assert cache.counts()["podclaims"] == 0


def test_a_child_event_that_changes_nothing_a_reconcile_reads_is_not_a_change() -> None:
    cache = WatchCache()
    cache.put_child(child("30"))
    assert cache.changed
    cache.put_child(child("31"))  # a new resourceVersion only: kopf's re-list, our own write
    assert not cache.changed
    busy = child("32")
    busy["status"] = {"updatedReplicas": 1, "conditions": [{"type": "Progressing", "status": "True"}]}
    cache.put_child(busy)  # Deployment status a reconcile does not read
    assert not cache.changed
    busy["metadata"]["resourceVersion"] = "33"
    busy["status"]["readyReplicas"] = 1  # read: replica counts feed the LLMService status
    cache.put_child(busy)
    assert cache.changed
    cache.put_child(child("34", replicas=5))
    assert cache.changed


def test_what_other_controllers_add_to_our_children_is_not_a_change() -> None:
    """The revision annotation, the binder's annotations, volume name and finalizer: each written
    once per object by Kubernetes, none read by a reconcile, so none may cost one."""
    cache = WatchCache()
    dep = child("40")
    dep["metadata"]["annotations"] = {"llmstage.io/model": "llama3.1:8b"}
    cache.put_child(dep)
    dep["metadata"] = {**dep["metadata"], "resourceVersion": "41"}
    dep["metadata"]["annotations"] = {
        **dep["metadata"]["annotations"],
        "deployment.kubernetes.io/revision": "1",
    }
    cache.put_child(dep)
    assert not cache.changed
    stored = cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]
    assert stored["metadata"]["annotations"] == {"llmstage.io/model": "llama3.1:8b"}
    dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}  # ours removed by hand
    dep["metadata"]["resourceVersion"] = "42"
    cache.put_child(dep)
    assert cache.changed  # the reconcile must see it to put it back

    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "chat-ollama-cache",
            "namespace": "team",
            "uid": "c1",
            "resourceVersion": "50",
            "ownerReferences": [{"kind": "LLMService", "name": "chat", "controller": True}],
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    }
    cache.put_child(claim)
    assert cache.changed
    bound = {
        **claim,
        "metadata": {
            **claim["metadata"],
            "resourceVersion": "51",
            "finalizers": ["kubernetes.io/pvc-protection"],
            "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "volume.kubernetes.io/selected-node": "node-1",
            },
        },
        "spec": {**claim["spec"], "volumeName": "pvc-c1", "storageClassName": "standard"},
    }
    cache.put_child(bound)
    assert cache.changed  # the class the server defaulted is read (keep_immutable_claim_fields)
    bound["metadata"] = {**bound["metadata"], "resourceVersion": "52", "finalizers": []}
    cache.put_child(bound)
    assert not cache.changed
    stored = cache.children_of(("team", "chat"))[("PersistentVolumeClaim", "chat-ollama-cache")]
    assert "volumeName" not in stored["spec"] and "annotations" not in stored["metadata"]


def test_an_endpoint_slice_without_endpoints_is_no_news() -> None:
    cache = WatchCache()
    labels = {"kubernetes.io/service-name": "chat", "app.kubernetes.io/managed-by": "llmstage"}
    empty = {"metadata": {"name": "chat-x1", "namespace": "team", "labels": labels}, "endpoints": None}
    cache.put_slice(empty)
    assert not cache.changed  # created with the Service, before any pod
    ready = {**empty, "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}]}
    cache.put_slice(ready)
    assert cache.changed
    cache.put_slice(empty)
    assert cache.changed  # the endpoint went away: that is news
    cache.put_slice(empty, deleted=True)
    assert not cache.changed


def test_children_come_back_unpacked_with_their_resource_version_and_are_fresh_copies() -> None:
    cache = WatchCache()
    cache.put_child(child("40", replicas=2))
    first = cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]
    assert first["metadata"]["resourceVersion"] == "40"
    assert first["metadata"]["ownerReferences"][0]["name"] == "chat"
    first["spec"]["replicas"] = 99  # the planner may change what it gets
    again = cache.children_of(("team", "chat"))[("Deployment", "chat-ollama")]
    assert again["spec"]["replicas"] == 2
    assert cache.children_of(("team", "other")) == {}


def llmservice(rv: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {
            "name": "chat",
            "namespace": "team",
            "uid": "s1",
            "resourceVersion": rv,
            "generation": 1,
        },
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def test_an_llmservice_status_change_is_kept_but_needs_no_reconcile() -> None:
    cache = WatchCache()
    cache.put_service(llmservice("1", {"stage": "dev"}))
    assert cache.changed
    cache.put_service(llmservice("2", {"stage": "dev"}, {"runtime": "ollama"}))  # our status patch
    assert not cache.changed
    stored = cache.service(("team", "chat"))
    assert stored is not None and stored["status"] == {"runtime": "ollama"}
    assert stored["metadata"]["resourceVersion"] == "2"
    cache.put_service(llmservice("1", {"stage": "dev"}))  # a late event of an older version
    assert cache.service(("team", "chat"))["status"] == {"runtime": "ollama"}
    cache.put_service(llmservice("3", {"stage": "staging"}, {"runtime": "ollama"}))
    assert cache.changed
    cache.put_service(llmservice("3", {"stage": "staging"}), deleted=True)
    assert cache.service(("team", "chat")) is None


def test_a_pod_in_an_init_container_is_stored_with_its_step() -> None:
    """The status says which step a starting pod is at (pull-model, download-model)."""
    cache = WatchCache()
    pod = {
        "metadata": {
            "name": "chat-vllm-1",
            "namespace": "team",
            "labels": {"app.kubernetes.io/name": "llmstage", "app.kubernetes.io/instance": "chat"},
        },
        "status": {"initContainerStatuses": [{"name": "download-model", "state": {"running": {}}}]},
    }
    cache.put_pod(pod)
    assert cache.changed
    assert cache.pods[("team", "chat")]["chat-vllm-1"]["status"]["initializing"] == "download-model"
    cache.put_pod(pod)
    assert not cache.changed  # still downloading: nothing new to say
    pod["status"] = {"initContainerStatuses": [{"name": "download-model", "state": {"terminated": {}}}]}
    cache.put_pod(pod)
    assert cache.changed
    assert "initializing" not in cache.pods[("team", "chat")]["chat-vllm-1"]["status"]
