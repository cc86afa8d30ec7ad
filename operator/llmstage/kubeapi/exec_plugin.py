"""client.authentication.k8s.io exec plugins: the programs a kubeconfig names to get a token or a
client certificate (aws eks get-token, gke-gcloud-auth-plugin, kubelogin, ...), run as kubectl
runs them (k8s.io/client-go/plugin/pkg/client/auth/exec): the user's environment plus the
plugin's `env`, KUBERNETES_EXEC_INFO describing the call, never interactive.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmstage.kubeapi.errors import ConfigError

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ExecConfig:
    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    install_hint: str = ""
    # provideClusterInfo: the plugin is told the cluster (server, CA) in KUBERNETES_EXEC_INFO.
    cluster: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, data: Any, base_dir: str, cluster: Mapping[str, Any], where: str) -> ExecConfig:
        if not isinstance(data, dict) or not data.get("command"):
            raise ConfigError(f"{where}: exec needs a command")
        api_version = str(data.get("apiVersion") or "")
        if api_version not in API_VERSIONS:
            raise ConfigError(
                f"{where}: exec apiVersion {api_version or '(none)'} is not one of {', '.join(API_VERSIONS)}"
            )
        command = str(data["command"])
        # As client-go: a relative path with a separator is relative to the kubeconfig's folder.
        if os.sep in command and not os.path.isabs(command):
            command = os.path.join(base_dir, command)
        env = tuple(
            (str(e["name"]), str(e.get("value", "")))
            for e in data.get("env") or []
            if isinstance(e, dict) and e.get("name")
        )
        return cls(
            command=command,
            api_version=api_version,
            args=tuple(str(a) for a in data.get("args") or []),
            env=env,
            install_hint=str(data.get("installHint") or ""),
            cluster=dict(cluster) if data.get("provideClusterInfo") else None,
        )


@dataclass(frozen=True)
class ExecResult:
    token: str | None = None
    certificate: str | None = None  # PEM
    key: str | None = None  # PEM
    expires: datetime.datetime | None = None


def run(config: ExecConfig, environ: Mapping[str, str] = os.environ) -> ExecResult:
    """Run the plugin once and read its ExecCredential; ConfigError names what went wrong."""
    spec: dict[str, Any] = {"interactive": False}
    if config.cluster is not None:
        spec["cluster"] = config.cluster
    info = {"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec}
    env = {**environ, **dict(config.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    what = f"exec plugin {config.command}"
    try:
        done = subprocess.run(
            [config.command, *config.args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        hint = f": {config.install_hint.strip()}" if config.install_hint.strip() else ""
        raise ConfigError(f"{what}: not found{hint}") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"{what}: {err}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"{what} failed (exit {done.returncode}): {said[-1] if said else 'no output'}")
    try:
        credential = json.loads(done.stdout)
        status = credential["status"]
        assert isinstance(status, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ConfigError(f"{what}: its output is not an ExecCredential with a status") from None
    result = ExecResult(
        token=status.get("token") or None,
        certificate=status.get("clientCertificateData") or None,
        key=status.get("clientKeyData") or None,
        expires=_timestamp(status.get("expirationTimestamp"), what),
    )
    if not result.token and not (result.certificate and result.key):
        raise ConfigError(f"{what}: its ExecCredential has neither a token nor a client certificate and key")
    return result


def _timestamp(value: Any, what: str) -> datetime.datetime | None:
    if not value:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what}: expirationTimestamp {value!r} is not an RFC 3339 time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)
