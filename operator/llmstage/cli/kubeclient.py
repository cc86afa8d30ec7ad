"""The CLI's way into a cluster: a kubernetes client from the kubeconfig, and the few calls
`llmstage benchmark` (benchmark.runner.Cluster) and the commands that read a stored result make.

The operator has its own async client (controller/kube.py); the CLI is a one-shot process and
uses the official synchronous client, as `llmstage status` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from llmstage.api.constants import GROUP, PLURAL, VERSION
from llmstage.cli.common import CliError

__all__ = ["GROUP", "PLURAL", "VERSION", "KubeCluster", "client_for"]

REQUEST_TIMEOUT = 30


def client_for(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An API client from the kubeconfig, and the context's namespace."""
    from kubernetes import config

    from llmstage.controller.kubeconfig import problem

    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    # One line for whatever keeps the file from naming a cluster; never the client library's text.
    why = problem(path, env={}, context=context, fix="pass --kubeconfig FILE or set KUBECONFIG")
    if why:
        raise CliError(why, 2)
    api = config.new_client_from_config(config_file=path, context=context)  # type: ignore[no-untyped-call]
    contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    if context:
        current = next((c for c in contexts if c["name"] == context), current)
    namespace = (current or {}).get("context", {}).get("namespace") or "default"
    return api, namespace


def _missing(err: Exception) -> bool:
    return getattr(err, "status", None) == 404


class KubeCluster:
    """benchmark.runner.Cluster on the kubernetes client: dicts in, dicts out (camelCase, as
    `kubectl get -o json` shows them)."""

    def __init__(self, api: Any) -> None:
        from kubernetes import client

        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _dict(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return out

    def _get(self, read: Any, *args: Any) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._dict(read(*args, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as err:
            if _missing(err):
                return None
            raise

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.batch.read_namespaced_job, name, namespace)

    def create_job(self, job: dict[str, Any]) -> None:
        self.batch.create_namespaced_job(job["metadata"]["namespace"], job, _request_timeout=REQUEST_TIMEOUT)

    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            # Background: the pod goes with it (deleting a Job through the API orphans its pods).
            self.batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as err:
            if not _missing(err):
                raise

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job}", _request_timeout=REQUEST_TIMEOUT
        )
        return [self._dict(p) for p in pods.items]

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.core.read_namespaced_pod, name, namespace)

    def follow_log(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        response = self.core.read_namespaced_pod_log(
            pod, namespace, container=container, follow=True, _preload_content=False
        )
        try:
            pending = b""
            for chunk in response.stream(1024):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode(errors="replace")
            if pending:
                yield pending.decode(errors="replace")
        finally:
            response.release_conn()

    def read_log(self, namespace: str, pod: str, container: str) -> str:
        return str(
            self.core.read_namespaced_pod_log(
                pod, namespace, container=container, _request_timeout=REQUEST_TIMEOUT
            )
        )

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.core.read_namespaced_config_map, name, namespace)

    def put_config_map(self, obj: dict[str, Any]) -> None:
        """Create it, or replace the previous result."""
        from kubernetes.client.exceptions import ApiException

        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            self.core.create_namespaced_config_map(namespace, obj, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if err.status != 409:
                raise
            self.core.replace_namespaced_config_map(name, namespace, obj, _request_timeout=REQUEST_TIMEOUT)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as err:
            if _missing(err):
                return None
            raise
        return obj
