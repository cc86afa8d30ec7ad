"""The CLI's way into a cluster: a client from the kubeconfig, and the few calls
`llmstage benchmark` (benchmark.runner.Cluster) and the commands that read a stored result make.

The operator has its own async client (controller/kube.py); the CLI is a one-shot process and
uses llmstage.kubeapi.rest, a synchronous one on the same credentials.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from llmstage.api.constants import GROUP, PLURAL, VERSION
from llmstage.cli.common import CliError
from llmstage.kubeapi import credentials
from llmstage.kubeapi.errors import ApiError
from llmstage.kubeapi.kinds import KINDS
from llmstage.kubeapi.rest import RestClient

__all__ = ["GROUP", "PLURAL", "VERSION", "KubeCluster", "client_for"]

JOB = KINDS[("batch/v1", "Job")]
POD = KINDS[("v1", "Pod")]
CONFIG_MAP = KINDS[("v1", "ConfigMap")]
LLMSERVICE = KINDS[(f"{GROUP}/{VERSION}", "LLMService")]


def client_for(kubeconfig: str | None, context: str | None) -> tuple[RestClient, str]:
    """A client from the kubeconfig, and the context's namespace."""
    from llmstage.controller.kubeconfig import problem

    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    # One line for whatever keeps the file from naming a cluster; never a library's text.
    why = problem(path, env={}, context=context, fix="pass --kubeconfig FILE or set KUBECONFIG")
    if why:
        raise CliError(why, 2)
    found = credentials.from_kubeconfig(None, context, env={"KUBECONFIG": path})
    return RestClient(found), found.namespace or "default"


class KubeCluster:
    """benchmark.runner.Cluster over the CLI's client: dicts in, dicts out (as `kubectl get -o
    json` shows them)."""

    def __init__(self, api: RestClient) -> None:
        self.api = api

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(JOB, namespace, name)

    def create_job(self, job: dict[str, Any]) -> None:
        self.api.create(JOB, job["metadata"]["namespace"], job)

    def delete_job(self, namespace: str, name: str) -> None:
        # Background: the pod goes with it (deleting a Job through the API orphans its pods).
        self.api.delete(JOB, namespace, name, {"propagationPolicy": "Background"})

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return self.api.list(POD, namespace, label_selector=f"batch.kubernetes.io/job-name={job}")

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(POD, namespace, name)

    def follow_log(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        path = POD.path(namespace, pod, "log")
        yield from self.api.lines(path, {"container": container, "follow": "true"})

    def read_log(self, namespace: str, pod: str, container: str) -> str:
        return self.api.text(POD.path(namespace, pod, "log"), {"container": container})

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(CONFIG_MAP, namespace, name)

    def put_config_map(self, obj: dict[str, Any]) -> None:
        """Create it, or replace the previous result."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            self.api.create(CONFIG_MAP, namespace, obj)
        except ApiError as err:
            if err.status != 409:
                raise
            self.api.replace(CONFIG_MAP, namespace, name, obj)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(LLMSERVICE, namespace, name)
