"""kubectl as a user types it, plus the reads of what `kubectl get` shows: shared by the e2e
suite and the real-node tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from testkit import wait_until
from testkit.chart import kubectl


class User:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return kubectl(self.kubeconfig, *args, stdin=stdin, check=check).stdout

    def apply(self, ns: str, doc: dict[str, Any]) -> None:
        self.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(doc))

    def get(self, kind: str, name: str, ns: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", kind, name, "-n", ns, "-o", "json"))

    def pods(self, ns: str, selector: str) -> list[dict[str, Any]]:
        return json.loads(self.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json"))["items"]

    def condition(self, name: str, ns: str, ctype: str) -> dict[str, Any]:
        status = self.get("llmservice", name, ns).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})

    def wait_ready(
        self, name: str, ns: str, runtime: str, timeout: float = 120, interval: float = 0.5
    ) -> dict[str, Any]:
        """`kubectl wait --for=condition=Ready`, on the current generation and the expected
        runtime; on timeout, prints what `kubectl get` shows of the namespace."""

        def ready() -> dict[str, Any] | None:
            obj = self.get("llmservice", name, ns)
            status = obj.get("status") or {}
            cond: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
            )
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            ok = current and cond.get("status") == "True" and status.get("runtime") == runtime
            return status if ok else None

        try:
            return wait_until(
                ready, timeout=timeout, interval=interval, what=f"{ns}/{name} Ready on {runtime}"
            )
        except AssertionError:
            print(
                self.kubectl("get", "llmservice,deploy,pods,pvc,events", "-n", ns, "-o", "wide", check=False)
            )
            raise

    def run_pod(
        self,
        ns: str,
        name: str,
        image: str,
        args: list[str],
        env: list[dict[str, Any]] | None = None,
        volumes: dict[str, dict[str, Any]] | None = None,
        scheduling: dict[str, Any] | None = None,
        timeout: float = 300,
    ) -> str:
        """start_pod, then wait until the pod has run `args` to completion; its log."""
        self.start_pod(ns, name, image, args, env, volumes, scheduling)

        def finished() -> str | None:
            phase = self.get("pod", name, ns).get("status", {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        phase = wait_until(finished, timeout=timeout, interval=1, what=f"pod {ns}/{name} to finish")
        log = self.kubectl("logs", name, "-n", ns, check=False)
        assert phase == "Succeeded", f"pod {name} {phase}:\n{log}"
        return log

    def start_pod(
        self,
        ns: str,
        name: str,
        image: str,
        args: list[str],
        env: list[dict[str, Any]] | None = None,
        volumes: dict[str, dict[str, Any]] | None = None,
        scheduling: dict[str, Any] | None = None,
    ) -> None:
        """Create a restricted pod (non-root, read-only root, no capabilities) that runs `args`
        and return at once. `volumes`: mount path -> volume source (e.g. {"/src": {"image":
        {...}}}); with volumes the pod gets fsGroup 65532, so it can write a claim's local volume.
        `scheduling`: nodeSelector and tolerations."""
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "restartPolicy": "Never",
                **(scheduling or {}),
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": args,
                        "env": env or [],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }
        if volumes:
            named = {f"v{i}": (path, source) for i, (path, source) in enumerate(volumes.items())}
            pod["spec"]["securityContext"]["fsGroup"] = 65532
            pod["spec"]["volumes"] = [{"name": n, **source} for n, (_, source) in named.items()]
            pod["spec"]["containers"][0]["volumeMounts"] = [
                {"name": n, "mountPath": path} for n, (path, _) in named.items()
            ]
        self.apply(ns, pod)

    def ready_endpoints(self, service: str, ns: str) -> list[str]:
        slices = json.loads(
            self.kubectl(
                "get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={service}", "-o", "json"
            )
        )["items"]
        return [
            e["targetRef"]["name"]
            for s in slices
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready") and e.get("targetRef")
        ]
