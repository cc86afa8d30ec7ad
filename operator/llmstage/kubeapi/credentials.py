"""Where the API server is and how to prove who we are: a kubeconfig context or the pod's
ServiceAccount, read as kubectl reads them (k8s.io/client-go/tools/clientcmd and rest's
in-cluster config), and kept fresh while the process runs.

Supported in a kubeconfig: certificate-authority(-data), insecure-skip-tls-verify,
tls-server-name, proxy-url, client-certificate(-data) and client-key(-data), token, tokenFile,
username and password, exec plugins, and the legacy oidc auth-provider's id-token. The other
auth-providers (gcp, azure) are gone from kubectl since 1.26; their exec plugins replace them.
$KUBECONFIG may list several files, merged as kubectl merges them: the first file that sets
current-context names it, the first entry of a name wins.
"""

from __future__ import annotations

import base64
import datetime
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from llmstage.kubeapi import exec_plugin
from llmstage.kubeapi.errors import ConfigError
from llmstage.kubeapi.exec_plugin import ExecConfig, ExecResult

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# client-go re-reads a token file at most once a minute; kubelet rotates projected tokens well
# before they expire (at 80% of their life).
TOKEN_FILE_REREAD_SECONDS = 60.0
# An exec credential is renewed this long before its expirationTimestamp.
EXPIRY_MARGIN = datetime.timedelta(seconds=30)
LEGACY_PROVIDERS_FIX = "use its exec plugin instead (kubectl 1.26 and later no longer have it either)"


@dataclass(frozen=True)
class Credentials:
    server: str
    source: str  # for messages: which file and context, or the ServiceAccount
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: str | None = None  # PEM
    key_data: str | None = None  # PEM
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec: ExecConfig | None = None
    namespace: str | None = None  # the context's namespace


def kubeconfig_paths(kubeconfig: str | None = None, env: Mapping[str, str] = os.environ) -> list[str]:
    """The files to read: the one named, else $KUBECONFIG's list, else ~/.kube/config."""
    if kubeconfig:
        return [kubeconfig]
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [os.path.expanduser("~/.kube/config")]


def read_kubeconfig(paths: list[str]) -> dict[str, Any]:
    """The merged kubeconfig, each entry remembering the folder its relative paths start from."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    found = False
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except FileNotFoundError:
            if len(paths) == 1:
                raise ConfigError(f"kubeconfig {path}: no such file") from None
            continue  # as kubectl: missing files of a $KUBECONFIG list are skipped
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"kubeconfig {path}: {str(err).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"kubeconfig {path}: not a kubeconfig (a YAML mapping)")
        found = True
        base = os.path.dirname(os.path.abspath(path))
        for key in ("clusters", "users", "contexts"):
            for item in data.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    merged[key].setdefault(item["name"], {**item, "_base": base, "_path": path})
        merged["current-context"] = merged["current-context"] or data.get("current-context")
    if not found:
        raise ConfigError(f"kubeconfig: none of {', '.join(paths)} exists")
    return merged


def contexts(
    kubeconfig: str | None = None, env: Mapping[str, str] = os.environ
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The contexts ({"name", "context"}) and the current one, as the kubernetes client's
    list_kube_config_contexts gives them."""
    merged = read_kubeconfig(kubeconfig_paths(kubeconfig, env))
    items = [{"name": n, "context": c.get("context") or {}} for n, c in merged["contexts"].items()]
    current = next((c for c in items if c["name"] == merged["current-context"]), None)
    return items, current


def from_kubeconfig(
    kubeconfig: str | None = None, context: str | None = None, env: Mapping[str, str] = os.environ
) -> Credentials:
    paths = kubeconfig_paths(kubeconfig, env)
    merged = read_kubeconfig(paths)
    where = f"kubeconfig {os.pathsep.join(paths)}"
    name = context or merged["current-context"]
    if not name:
        raise ConfigError(f"{where} has no current-context: pass --context NAME")
    if name not in merged["contexts"]:
        raise ConfigError(f"{where} has no context {name}")
    ctx = merged["contexts"][name].get("context") or {}
    cluster_entry = merged["clusters"].get(ctx.get("cluster"))
    if cluster_entry is None:
        raise ConfigError(f"{where}: context {name} names cluster {ctx.get('cluster')}, which is not there")
    cluster = cluster_entry.get("cluster") or {}
    user_entry = merged["users"].get(ctx.get("user")) or {}
    user = user_entry.get("user") or {}
    if not cluster.get("server"):
        raise ConfigError(f"{where}: cluster {ctx.get('cluster')} has no server address")
    where = f"kubeconfig {cluster_entry['_path']} (context {name})"
    cluster_base, user_base = cluster_entry["_base"], user_entry.get("_base", cluster_entry["_base"])

    def path(value: Any, base: str) -> str | None:
        return None if not value else os.path.join(base, os.path.expanduser(str(value)))

    def data(value: Any, what: str) -> str | None:
        if not value:
            return None
        try:
            return base64.b64decode(str(value), validate=False).decode()
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{where}: {what} is not base64 of a PEM text") from None

    token = user.get("token") or None
    provider = user.get("auth-provider")
    if isinstance(provider, dict):
        provider_name = provider.get("name")
        config = provider.get("config") or {}
        if provider_name == "oidc" and config.get("id-token"):
            token = token or str(config["id-token"])  # used as it is: no refresh
        else:
            raise ConfigError(
                f"{where}: auth-provider {provider_name} is not supported: {LEGACY_PROVIDERS_FIX}"
            )
    exec_config = None
    if user.get("exec"):
        cluster_info = {
            "server": cluster["server"],
            "certificate-authority-data": cluster.get("certificate-authority-data"),
            "insecure-skip-tls-verify": bool(cluster.get("insecure-skip-tls-verify")),
        }
        exec_config = ExecConfig.parse(user["exec"], user_base, cluster_info, where)
    ca_data = data(cluster.get("certificate-authority-data"), "certificate-authority-data")
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        source=where,
        ca_file=None if ca_data else path(cluster.get("certificate-authority"), cluster_base),
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        cert_data=data(user.get("client-certificate-data"), "client-certificate-data"),
        key_data=data(user.get("client-key-data"), "client-key-data"),
        cert_file=path(user.get("client-certificate"), user_base)
        if not user.get("client-certificate-data")
        else None,
        key_file=path(user.get("client-key"), user_base) if not user.get("client-key-data") else None,
        token=token,
        token_file=path(user.get("tokenFile"), user_base) if not token else None,
        username=user.get("username") or None,
        password=user.get("password") or None,
        exec=exec_config,
        namespace=ctx.get("namespace") or None,
    )


def in_cluster(env: Mapping[str, str] = os.environ, root: str | None = None) -> Credentials:
    """The pod's ServiceAccount: the API server from KUBERNETES_SERVICE_HOST and _PORT, the
    projected token (re-read as kubelet rotates it) and the cluster's CA, under `root`
    (default SERVICE_ACCOUNT)."""
    root = root or SERVICE_ACCOUNT
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            "not in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT unset) and no kubeconfig: "
            "pass --kubeconfig FILE or set KUBECONFIG"
        )
    token_file = os.path.join(root, "token")
    if not os.path.exists(token_file):
        raise ConfigError(
            f"in a pod without a ServiceAccount token ({token_file}): set automountServiceAccountToken: true "
            "on the operator's pod or ServiceAccount"
        )
    namespace = None
    try:
        with open(os.path.join(root, "namespace"), encoding="utf-8") as f:
            namespace = f.read().strip() or None
    except OSError:
        pass
    host = f"[{host}]" if ":" in host else host  # IPv6
    return Credentials(
        server=f"https://{host}:{port}",
        source="the pod's ServiceAccount",
        ca_file=os.path.join(root, "ca.crt"),
        token_file=token_file,
        namespace=namespace,
    )


def load(
    kubeconfig: str | None = None, context: str | None = None, env: Mapping[str, str] = os.environ
) -> Credentials:
    """A kubeconfig when one is named (the argument, $KUBECONFIG, a context) or ~/.kube/config
    exists, else the pod's ServiceAccount."""
    named = kubeconfig or env.get("KUBECONFIG") or context
    if named or os.path.exists(os.path.expanduser("~/.kube/config")):
        return from_kubeconfig(kubeconfig, context, env)
    return in_cluster(env)


class Auth:
    """The live part of Credentials: the current token, the exec plugin's last answer and the TLS
    context. refresh() runs a plugin or reads a file, so async callers run it in a thread."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        run_plugin: Callable[[ExecConfig], ExecResult] = exec_plugin.run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self._run_plugin, self._clock = run_plugin, clock
        self._lock = threading.Lock()
        self._token = credentials.token
        self._token_read_at: float | None = None
        self._exec: ExecResult | None = None
        self._ssl: ssl.SSLContext | None = None

    @property
    def refreshable(self) -> bool:
        return self.credentials.exec is not None or self.credentials.token_file is not None

    @property
    def expires(self) -> datetime.datetime | None:
        return self._exec.expires if self._exec else None

    def stale(self) -> bool:
        c = self.credentials
        if c.exec is not None:
            if self._exec is None:
                return True
            expires = self._exec.expires
            return expires is not None and datetime.datetime.now(datetime.UTC) >= expires - EXPIRY_MARGIN
        if c.token_file is not None:
            return (
                self._token_read_at is None
                or self._clock() - self._token_read_at >= TOKEN_FILE_REREAD_SECONDS
            )
        return False

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            if not force and not self.stale():
                return
            c = self.credentials
            if c.exec is not None:
                result = self._run_plugin(c.exec)
                if (result.certificate, result.key) != (
                    (self._exec.certificate, self._exec.key) if self._exec else (None, None)
                ):
                    self._ssl = None  # a new client certificate: a new TLS context
                self._exec = result
                self._token = result.token or c.token
            elif c.token_file is not None:
                try:
                    with open(c.token_file, encoding="utf-8") as f:
                        self._token = f.read().strip()
                except OSError as err:
                    raise ConfigError(
                        f"{c.source}: token file {c.token_file}: {err.strerror or err}"
                    ) from None
                self._token_read_at = self._clock()

    def token(self) -> str | None:
        if self.stale():
            self.refresh()
        return self._token

    def headers(self) -> dict[str, str]:
        """The Authorization header, if any; call refresh() first from async code."""
        token = self.token()
        if token:
            return {"Authorization": f"Bearer {token}"}
        c = self.credentials
        if c.username and c.password:
            basic = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}

    def client_certificate(self) -> tuple[str | None, str | None]:
        """PEM data of the client certificate and key an exec plugin gave, if it gave one."""
        if self._exec is not None and self._exec.certificate and self._exec.key:
            return self._exec.certificate, self._exec.key
        return self.credentials.cert_data, self.credentials.key_data

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for https servers (None for http): the CA, the client certificate."""
        if not self.credentials.server.startswith("https:"):
            return None
        if self.stale():
            self.refresh()
        if self._ssl is None:
            self._ssl = self._build_ssl()
        return self._ssl

    def _build_ssl(self) -> ssl.SSLContext:
        c = self.credentials
        try:
            context = ssl.create_default_context(cafile=c.ca_file, cadata=c.ca_data)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{c.source}: the certificate authority cannot be loaded: {err}") from None
        if c.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert_data, key_data = self.client_certificate()
        try:
            if cert_data and key_data:
                # ssl loads certificates from files only: a private folder, gone right after.
                with tempfile.TemporaryDirectory(prefix="llmstage-tls-") as folder:
                    cert, key = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
                    for name, text in ((cert, cert_data), (key, key_data)):
                        with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                            f.write(text)
                    context.load_cert_chain(cert, key)
            elif c.cert_file and c.key_file:
                context.load_cert_chain(c.cert_file, c.key_file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{c.source}: the client certificate and key cannot be loaded: {err}") from None
        return context
