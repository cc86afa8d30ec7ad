#!/usr/bin/env python3
"""Volumes for the real node: a provisioner for the StorageClass `real-local`.

The kwok StorageClasses (kwok-rwo, kwok-volume) bind claims to hostPath volumes that no container
ever writes to. Pods on the real node need real directories that their non-root user can write, so
this provisioner makes, for each claim of class `real-local` that the scheduler placed on the
real node, a directory under .cluster/node/volumes/ and a `local` PersistentVolume pinned to the
node (the kubelet applies a pod's fsGroup to local volumes, not to hostPath ones). A released
volume's directory and PersistentVolume are deleted (reclaim policy Delete). Several pods on the
node can mount one volume, so ReadWriteMany claims work too, as with kind's local-path. Claims per
pod (generic ephemeral volumes, spec.cache mode PerPod) are claims like any other here.

hack/realnode/ runs it as a process beside the kubelet:

    python3 hack/volumes.py KUBECONFIG VOLUME_DIR NODE_NAME

Standard library and kubectl only, like the rest of the test bed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PROVISIONER = "llmstage.io/real-local"
CLASS = "real-local"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


class Provisioner:
    def __init__(self, kubeconfig: str, root: Path, node: str, kubectl: str) -> None:
        self.kubeconfig, self.root, self.node, self.kubectl_bin = kubeconfig, root, node, kubectl

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            input=stdin,
        )

    def claim_added(self, pvc: dict[str, Any]) -> None:
        meta, spec = pvc["metadata"], pvc["spec"]
        annotations = meta.get("annotations", {})
        if spec.get("storageClassName") != CLASS or spec.get("volumeName") or meta.get("deletionTimestamp"):
            return
        if annotations.get(SELECTED_NODE) != self.node:
            return  # WaitForFirstConsumer: provisioned once the scheduler picked the node
        name = f"pvc-{meta['uid']}"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": CLASS,
                "volumeMode": "Filesystem",
                "local": {"path": str(path)},
                "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [self.node]}
                                ]
                            }
                        ]
                    }
                },
            },
        }
        res = self.kubectl("create", "-f", "-", stdin=json.dumps(pv))
        if res.returncode == 0:
            claim = f"{meta['namespace']}/{meta['name']}"
            print(f"{time.strftime('%H:%M:%S')} provisioned {name} for {claim}", flush=True)
        elif "AlreadyExists" not in res.stderr:
            print(f"cannot create {name}: {res.stderr.strip()}", flush=True)

    def volume_changed(self, pv: dict[str, Any]) -> None:
        meta = pv["metadata"]
        if meta.get("annotations", {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            return
        if pv.get("status", {}).get("phase") not in ("Released", "Failed"):
            return
        shutil.rmtree(self.root / meta["name"], ignore_errors=True)
        res = self.kubectl("delete", "pv", meta["name"], "--wait=false")
        if res.returncode == 0:
            print(f"{time.strftime('%H:%M:%S')} deleted {meta['name']}", flush=True)

    def watch(self, kind: str, handle: Any) -> None:
        """Follow `kubectl get KIND --watch` (its first burst lists what exists); restart it when it ends."""
        while True:
            proc = subprocess.Popen(
                [
                    self.kubectl_bin,
                    "--kubeconfig",
                    self.kubeconfig,
                    "get",
                    kind,
                    "-A",
                    "--watch",
                    "-o",
                    "json",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            for obj in watched_objects(proc.stdout):
                try:
                    handle(obj)
                except Exception as err:
                    print(f"error handling {kind} {obj.get('metadata', {}).get('name')}: {err}", flush=True)
            proc.wait()
            time.sleep(1)


def watched_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The objects of `kubectl get --watch -o json`'s output, one by one. kubectl pretty-prints, so a
    top-level object ends with a line that starts with "}". kubectl prints listed objects one at a
    time; a List is taken apart all the same, so no object of it is skipped."""
    decoder, buffer = json.JSONDecoder(), ""
    for line in lines:
        buffer += line
        if not line.startswith("}"):
            continue
        try:
            obj, end = decoder.raw_decode(buffer.lstrip())
        except json.JSONDecodeError:
            continue
        buffer = buffer.lstrip()[end:]
        if str(obj.get("kind", "")).endswith("List"):
            yield from obj.get("items") or []
        else:
            yield obj


def main() -> int:
    import threading

    kubeconfig, root, node = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    kubectl = str(Path(__file__).resolve().parent.parent / ".tools" / "bin" / "kubectl")
    p = Provisioner(kubeconfig, root, node, kubectl)
    root.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=p.watch, args=("persistentvolumes", p.volume_changed), daemon=True).start()
    p.watch("persistentvolumeclaims", p.claim_added)
    return 0


if __name__ == "__main__":
    sys.exit(main())
