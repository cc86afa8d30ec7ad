"""The CLI's way into a cluster: a kubernetes client from the kubeconfig, and the few calls
`llmstage benchmark` (benchmark.runner.Cluster) and the commands that read a stored result make.

The operator has its own async client (controller/kube.py); the CLI is a one-shot process and
uses the official synchronous client, as `llmstage status` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from llmstage.api.models import GROUP, PLURAL, VERSION
from llmstage.cli.common import CliError

__all__ = ["GROUP", "PLURAL", "VERSION", "KubeCluster", "client_for"]

REQUEST_TIMEOUT = 30


def client_for(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An API client from the kubeconfig, and the context's namespace."""
    from kubernetes import config

    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    if not os.path.exists(first):
        raise CliError(f"kubeconfig {first}: no such file; pass --kubeconfig FILE or set KUBECONFIG", 2)
    api = config.new_client_from_config(config_file=path, context=context)  # type: ignore[no-untyped-call]
    contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    if context:
        current = next((c for c in contexts if c["name"] == context), current)
    namespace = (current or {}).get("context", {}).get("namespace") or "default"
    return api, namespace


def _missing(err: Exception) -> bool:
    return getattr(err, "status", None) == 404


class KubeCluster:
    """benchmark.runner.Cluster on the kubernetes client (dicts in, dicts out)."""

    def __init__(self, api: Any) -> None:
        from kubernetes import client

        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def _call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        params = [(k, v) for k, v in query.items() if v is not None]
        return self.api.call_api(
            path,
            method,
            query_params=params,
            body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            job: dict[str, Any] = self._call("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        except ApiException as err:
            if _missing(err):
                return None
            raise
        return job

    def create_job(self, job: dict[str, Any]) -> None:
        self._call("POST", f"/apis/batch/v1/namespaces/{job['metadata']['namespace']}/jobs", job)

    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            # Background: the pod goes with it (a Job's default orphans its pods).
            self._call(
                "DELETE",
                f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                {"propagationPolicy": "Background"},
            )
        except ApiException as err:
            if not _missing(err):
                raise

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        result = self._call(
            "GET", f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"batch.kubernetes.io/job-name={job}"
        )
        return list(result.get("items") or [])

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
        from kubernetes.client.exceptions import ApiException

        try:
            cm: dict[str, Any] = self._call("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except ApiException as err:
            if _missing(err):
                return None
            raise
        return cm

    def put_config_map(self, obj: dict[str, Any]) -> None:
        """Create it, or replace the previous result."""
        from kubernetes.client.exceptions import ApiException

        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            self._call("POST", f"/api/v1/namespaces/{namespace}/configmaps", obj)
        except ApiException as err:
            if err.status != 409:
                raise
            self._call("PUT", f"/api/v1/namespaces/{namespace}/configmaps/{name}", obj)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self._call(
                "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
            )
        except ApiException as err:
            if _missing(err):
                return None
            raise
        return obj
