"""In-memory copies of what the watches saw, indexed by the LLMService they belong to.

The reconciler reads children from here instead of asking the API server, so a reconcile that
changes nothing costs no request at all. Bodies are slimmed (managedFields dropped) and kept
packed (compressed bytes, see Packed) to keep the operator's memory flat at thousands of
services: a reconcile unpacks only the LLMService it works on and its few children.
"""

from __future__ import annotations

import hashlib
import marshal
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmstage.benchmark.store import INSTANCE_LABEL as STORE_INSTANCE
from llmstage.benchmark.store import RESULT_KEY, RESULT_SELECTOR
from llmstage.render.labels import (
    APP_NAME,
    CACHE,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
)

ServiceKey = tuple[str, str]  # (namespace, name) of an LLMService
ChildKey = tuple[str, str]  # (kind, name)

LLMSERVICE_KIND = "LLMService"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def slim(body: dict[str, Any], *, keep_status: bool = True) -> dict[str, Any]:
    """A shallow copy without managedFields and kubectl's last-applied annotation (never read)."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        meta["annotations"] = {
            k: v for k, v in annotations.items() if k != "kubectl.kubernetes.io/last-applied-configuration"
        }
    out = {k: v for k, v in body.items() if keep_status or k != "status"}
    out["metadata"] = meta
    return out


# Annotations on our children that a reconcile compares: the ones we render. Others are written
# by Kubernetes' controllers once each (deployment.kubernetes.io/revision, the claim binder's
# pv.kubernetes.io/bind-completed and volume.kubernetes.io/selected-node, ...) and cost a no-op
# reconcile per object if they reach the digest (docs/benchmarks.md).
OUR_ANNOTATION_PREFIX = "llmstage.io/"
# Fields other controllers set on our children and a reconcile never reads: the claim's bound
# volume (the binder) and the protection finalizers.
_CHILD_METADATA_DROPPED = ("finalizers",)
_CHILD_SPEC_DROPPED = {"PersistentVolumeClaim": ("volumeName",)}


def slim_child(body: dict[str, Any]) -> dict[str, Any]:
    """A child as a reconcile reads it: no status (the Deployment's is summarised by the
    caller), only our annotations, none of the fields the binder or the finalizers add."""
    stored = slim(body, keep_status=False)
    meta = stored["metadata"]
    for key in _CHILD_METADATA_DROPPED:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if annotations:
        ours = {k: v for k, v in annotations.items() if k.startswith(OUR_ANNOTATION_PREFIX)}
        if ours:
            meta["annotations"] = ours
        else:
            del meta["annotations"]
    dropped = _CHILD_SPEC_DROPPED.get(body.get("kind", ""))
    if dropped and isinstance(stored.get("spec"), dict):
        stored["spec"] = {k: v for k, v in stored["spec"].items() if k not in dropped}
    return stored


# The kinds that run the pods: their status is kept (a LeaderWorkerSet's reads like a Deployment's,
# in groups: replicas, readyReplicas, the Available condition).
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")
# What a reconcile reads of a Deployment's status (observed.deployment_available, replica counts,
# ReplicaFailure); the rest (updatedReplicas, Progressing, timestamps) changes often and is noise.
_DEPLOYMENT_CONDITIONS = ("Available", "ReplicaFailure")
# Container waiting reasons that are just a pod starting, not a problem to report.
_STARTING = ("ContainerCreating", "PodInitializing")


def _deployment_status(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "observedGeneration": status.get("observedGeneration", 0),
        "replicas": status.get("replicas", 0),
        "readyReplicas": status.get("readyReplicas", 0),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
            if c.get("type") in _DEPLOYMENT_CONDITIONS
        ],
    }


def _problems_only(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for cs in statuses or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] not in _STARTING:
            out.append({"name": cs.get("name"), "state": {"waiting": waiting}})
    return out


def _running_init_container(status: dict[str, Any]) -> str | None:
    """The init container a starting pod is in (pull-model, download-model), for the status to
    say which step it is at. It changes twice per pod start, so it costs two reconciles."""
    for cs in status.get("initContainerStatuses") or []:
        if (cs.get("state") or {}).get("running") is not None:
            return str(cs.get("name"))
    return None


def _older_than(incoming: dict[str, Any], uid: str | None, resource_version: str | None) -> bool:
    """True when `incoming` is an older version of the cached object (`uid`, `resource_version`).
    Our own write responses and the watch stream race; a late watch event must not roll the
    cache back. resourceVersions are etcd revisions (integers) on every real API server; if one
    is not, take the incoming object."""
    if uid is None or incoming["metadata"].get("uid") != uid:
        return False
    try:
        return int(incoming["metadata"]["resourceVersion"]) < int(resource_version or "")
    except (KeyError, ValueError):
        return False


@dataclass(slots=True)
class Packed:
    """An object as a reconcile reads it, packed: the slimmed body without its resourceVersion,
    marshalled and compressed, so two versions that differ only in what a reconcile does not
    read have the same digest. A fifth of the memory of interned dicts (docs/benchmarks.md), and
    packing costs less per watch event than interning did. marshal, not JSON: several times
    faster both ways, and the bytes never leave the process. Format 2 has no back-references,
    so equal bodies give equal bytes."""

    uid: str | None
    resource_version: str | None
    digest: bytes
    data: bytes

    @classmethod
    def pack(cls, stored: dict[str, Any], previous: Packed | None, *, ignore: str | None = None) -> Packed:
        """`ignore`: a top-level field left out of the digest (it may change; it is kept)."""
        meta = stored["metadata"]
        rv = meta.pop("resourceVersion", None)
        blob = marshal.dumps(stored, 2)
        if ignore is None:
            digest = hashlib.blake2b(blob, digest_size=16).digest()
            same = previous is not None and previous.digest == digest
        else:
            view = {k: v for k, v in stored.items() if k != ignore}
            digest = hashlib.blake2b(marshal.dumps(view, 2), digest_size=16).digest()
            same = False  # the ignored part may differ: keep the new bytes
        data = previous.data if same and previous else zlib.compress(blob, 1)
        return cls(meta.get("uid"), rv, digest, data)

    def unpack(self) -> dict[str, Any]:
        body: dict[str, Any] = marshal.loads(zlib.decompress(self.data))
        if self.resource_version is not None:
            body["metadata"]["resourceVersion"] = self.resource_version
        return body


def controller_owner(body: dict[str, Any]) -> ServiceKey | None:
    """The LLMService that controls this object, from its ownerReferences."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == LLMSERVICE_KIND and ref.get("controller"):
            return body["metadata"].get("namespace", ""), ref["name"]
    return None


def _labelled_owner(body: dict[str, Any], selector: dict[str, str], owner_label: str) -> ServiceKey | None:
    """The LLMService `owner_label` names, for an object whose labels match `selector`; else None."""
    labels = body.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in selector.items()) or owner_label not in labels:
        return None
    return body["metadata"]["namespace"], labels[owner_label]


# The labels that make an object ours: EndpointSlices inherit them from our Services, claims per
# pod from the pod template.
_OUR_SERVICES = {MANAGED_BY_LABEL: MANAGER}
_OUR_PODS = {NAME_LABEL: APP_NAME}
_OUR_POD_CLAIMS = {NAME_LABEL: APP_NAME, COMPONENT_LABEL: CACHE}


def _slice_endpoints(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """What observed.ready_endpoints reads: addresses, readiness and the pod behind each."""
    return {
        "metadata": {"name": name},
        "endpoints": [
            {
                "addresses": ep.get("addresses") or [],
                "conditions": {"ready": (ep.get("conditions") or {}).get("ready")},
                "targetRef": {"name": (ep.get("targetRef") or {}).get("name", "")},
            }
            for ep in body.get("endpoints") or []
        ],
    }


def _slice_without_endpoints(name: str) -> dict[str, Any]:
    # The endpoint controller creates a slice with its Service, before any pod: it says nothing yet.
    return {"metadata": {"name": name}, "endpoints": []}


def _pod_problems(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Problems only: a pod that cannot be scheduled, a container that cannot start, and the step
    a starting pod is at. Pods becoming ready reach the status through the Deployment and the
    endpoints."""
    status = body.get("status") or {}
    stored: dict[str, Any] = {
        "metadata": {"name": name},
        "status": {
            "conditions": [
                c
                for c in status.get("conditions") or []
                if c.get("type") == "PodScheduled" and c.get("status") == "False"
            ],
            "containerStatuses": _problems_only(status.get("containerStatuses") or []),
            "initContainerStatuses": _problems_only(status.get("initContainerStatuses") or []),
        },
    }
    step = _running_init_container(status)
    if step:
        stored["status"]["initializing"] = step
    return stored


def _healthy_pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [], "containerStatuses": [], "initContainerStatuses": []},
    }


class WatchCache:
    """`changed` says whether the last put_* changed anything a reconcile reads; the watch
    handlers enqueue a reconcile only then. Our own writes' responses are put first, so their
    watch events (and kopf's re-lists of a quiet cluster) cost no reconcile at all."""

    def __init__(self) -> None:
        self.changed = True
        self.services: dict[ServiceKey, Packed] = {}
        self.children: dict[ServiceKey, dict[ChildKey, Packed]] = defaultdict(dict)
        self.slices: dict[ServiceKey, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.pods: dict[ServiceKey, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.pod_claims: dict[ServiceKey, dict[str, dict[str, Any]]] = defaultdict(dict)
        # `llmstage benchmark` results: ConfigMap NAME-benchmark's result.json, by its service.
        self.benchmarks: dict[ServiceKey, tuple[str, str]] = {}

    # LLMServices -------------------------------------------------------------------------------
    def put_service(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey:
        key = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        before = self.services.get(key)
        if deleted:
            self.services.pop(key, None)
            self.changed = True
        elif before is None or not _older_than(body, before.uid, before.resource_version):
            # Status is ours: its changes (our own patches coming back) need no reconcile.
            packed = Packed.pack(slim(body), before, ignore="status")
            self.services[key] = packed
            self.changed = before is None or packed.digest != before.digest
        else:
            self.changed = False
        return key

    def service(self, key: ServiceKey) -> dict[str, Any] | None:
        """The LLMService, unpacked (a fresh dict the caller may change)."""
        packed = self.services.get(key)
        return packed.unpack() if packed is not None else None

    # owned children: Deployments, Services, HPAs, PDBs, PVCs, PodMonitors ------------------------
    def put_child(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey | None:
        owner = controller_owner(body)
        if owner is None:
            return None
        child = body["kind"], body["metadata"]["name"]
        current = self.children[owner].get(child)
        self.changed = False
        if deleted:
            # A stale DELETED (older uid) must not drop a newer object of the same name.
            if current and current.uid == body["metadata"].get("uid"):
                del self.children[owner][child]
                self.changed = True
        elif current is None or not _older_than(body, current.uid, current.resource_version):
            # Only a workload's status is read (availability, replica counts).
            stored = slim_child(body)
            if body["kind"] in WORKLOAD_KINDS:
                stored["status"] = _deployment_status(body.get("status") or {})
            packed = Packed.pack(stored, current)
            self.children[owner][child] = packed
            self.changed = current is None or packed.digest != current.digest
        return owner

    def children_of(self, key: ServiceKey) -> dict[ChildKey, dict[str, Any]]:
        """The children of one LLMService, unpacked (fresh dicts the caller may change)."""
        return {child: packed.unpack() for child, packed in self.children.get(key, {}).items()}

    def _put_named(
        self,
        kept: dict[str, dict[str, Any]],
        body: dict[str, Any],
        deleted: bool,
        read: Callable[[str, dict[str, Any]], dict[str, Any]],
        quiet: Callable[[str], dict[str, Any]],
    ) -> None:
        """Keeps `read` of an object by its name. A missing object counts as `quiet` (one that says
        nothing: a slice without endpoints, a pod without problems), so one appearing or going
        away quiet changes nothing."""
        name = body["metadata"]["name"]
        if deleted:
            before = kept.pop(name, None)
            self.changed = before is not None and before != quiet(name)
        else:
            stored = read(name, body)
            before = kept.get(name)
            self.changed = stored != (quiet(name) if before is None else before)
            kept[name] = stored

    # EndpointSlices of our Services (they inherit the Service's labels) --------------------------
    def put_slice(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey | None:
        owner = _labelled_owner(body, _OUR_SERVICES, SERVICE_NAME_LABEL)
        if owner is not None:
            self._put_named(self.slices[owner], body, deleted, _slice_endpoints, _slice_without_endpoints)
        return owner

    # Pods: only what the status needs (scheduling and container-config errors) -------------------
    def put_pod(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey | None:
        owner = _labelled_owner(body, _OUR_PODS, INSTANCE_LABEL)
        if owner is not None:
            self._put_named(self.pods[owner], body, deleted, _pod_problems, _healthy_pod)
        return owner

    # Claims per pod (generic ephemeral volumes): Kubernetes creates them, the pod owns them -------
    def put_pod_claim(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey | None:
        """Only what names a claim that stays Pending: its class (the default class filled in by
        the API server), access modes and phase. Read only when a pod cannot be scheduled, and
        that pod's own event brings the reconcile: a claim's event alone never does (a claim is
        created and then bound, two events that change nothing a reconcile decides)."""
        owner = _labelled_owner(body, _OUR_POD_CLAIMS, INSTANCE_LABEL)
        if owner is None or MANAGED_BY_LABEL in body["metadata"]["labels"]:
            return None  # not one of ours, or our shared claim (put_child)
        name = body["metadata"]["name"]
        self.changed = False
        if deleted:
            self.pod_claims[owner].pop(name, None)
            return owner
        spec = body.get("spec") or {}
        stored = {
            "metadata": {"name": name},
            "spec": {
                "storageClassName": spec.get("storageClassName"),
                "accessModes": list(spec.get("accessModes") or []),
            },
            "status": {"phase": (body.get("status") or {}).get("phase", "Pending")},
        }
        self.pod_claims[owner][name] = stored
        return owner

    # Benchmark results (ConfigMaps the CLI writes, labelled by store.RESULT_SELECTOR) -------------
    def put_benchmark(self, body: dict[str, Any], deleted: bool = False) -> ServiceKey | None:
        """Only the result's text (no chart): status.benchmark is read from it."""
        owner = _labelled_owner(body, RESULT_SELECTOR, STORE_INSTANCE)
        if owner is None:
            return None
        name = body["metadata"]["name"]
        before = self.benchmarks.get(owner)
        if deleted:
            if before is not None and before[0] == name:
                del self.benchmarks[owner]
            self.changed = before is not None
            return owner
        stored = (name, str((body.get("data") or {}).get(RESULT_KEY, "")))
        self.benchmarks[owner] = stored
        self.changed = stored != before
        return owner

    def forget(self, key: ServiceKey) -> None:
        """After the LLMService is gone and its children collected."""
        for index in (self.children, self.slices, self.pods, self.pod_claims):
            if not index.get(key):
                index.pop(key, None)

    def counts(self) -> dict[str, int]:
        return {
            "llmservices": len(self.services),
            "children": sum(len(c) for c in self.children.values()),
            "endpointslices": sum(len(s) for s in self.slices.values()),
            "pods": sum(len(p) for p in self.pods.values()),
            "podclaims": sum(len(c) for c in self.pod_claims.values()),
            "benchmarks": len(self.benchmarks),
        }
