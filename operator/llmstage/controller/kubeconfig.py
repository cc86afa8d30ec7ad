"""Where `llmstage run` gets its credentials, checked once before anything starts.

A path the user named must work; nothing else is tried then (falling back to the in-cluster
ServiceAccount would turn a mistyped --kubeconfig outside a pod into a startup retried every
minute). kopf's watches get the same credentials as the operator's own client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from llmstage.kubeapi import credentials
from llmstage.kubeapi.credentials import Auth
from llmstage.kubeapi.errors import ConfigError

if TYPE_CHECKING:
    import kopf

FIX = "pass --kubeconfig FILE or set KUBECONFIG (in a pod, set neither: the ServiceAccount is used)"


def problem(
    kubeconfig: str | None,
    env: Mapping[str, str] = os.environ,
    context: str | None = None,
    fix: str = FIX,
) -> str | None:
    """Why credentials cannot be found (one line naming the file and the fix), or None."""
    named = kubeconfig or env.get("KUBECONFIG")
    if context and not named and not os.path.exists(os.path.expanduser("~/.kube/config")):
        return f"--context {context} needs a kubeconfig: {fix}"
    if context:
        named = named or os.path.expanduser("~/.kube/config")
    if named:
        paths = [p for p in named.split(os.pathsep) if p] or [named]
        # As kubectl: the missing files of a $KUBECONFIG list are skipped; one must exist.
        present = [p for p in paths if os.path.exists(p)]
        if not present:
            if len(paths) == 1:
                return f"kubeconfig {paths[0]}: no such file; {fix}"
            return f"kubeconfig: none of {', '.join(paths)} exists; {fix}"
        for path in present:
            if not os.access(path, os.R_OK):
                return f"kubeconfig {path}: not readable by this user; {fix}"
        if len(paths) == 1:
            with open(paths[0], encoding="utf-8", errors="replace") as f:
                found = structure_problem(paths[0], f.read(), context, fix)
            if found:
                return found
        try:  # what the checks above do not know: the loader's own line (exec plugins, auth-providers)
            credentials.from_kubeconfig(None, context, env={"KUBECONFIG": named})
        except ConfigError as err:
            return f"{err}; {fix}"
        return None
    if os.path.exists(os.path.expanduser("~/.kube/config")) or env.get("KUBERNETES_SERVICE_HOST"):
        return None
    return f"no kubeconfig (no ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST unset): {fix}"


def _named(items: Any) -> dict[str, dict[str, Any]]:
    """name -> entry of a kubeconfig list (clusters, users, contexts); malformed entries skipped."""
    if not isinstance(items, list):
        return {}
    return {
        str(item["name"]): item
        for item in items
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item.get("name")
    }


def structure_problem(path: str, text: str, context: str | None, fix: str = FIX) -> str | None:
    """What keeps one kubeconfig file from naming a cluster to talk to, said as a person would:
    not YAML, not a kubeconfig, no such context, a context naming a cluster or user the file does
    not have, a cluster without a server. None when it looks usable."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = err.problem or err.context
        where = f" (line {mark.line + 1}, column {mark.column + 1}: {what})" if mark else ""
        return f"kubeconfig {path}: not YAML{where}; {fix}"
    except yaml.YAMLError:
        return f"kubeconfig {path}: not YAML; {fix}"
    if not isinstance(data, dict) or not (
        data.get("kind") == "Config" or any(k in data for k in ("clusters", "contexts", "users"))
    ):
        return (
            f"kubeconfig {path}: not a kubeconfig (a YAML mapping with clusters, users and contexts); {fix}"
        )
    contexts, clusters, users = (_named(data.get(k)) for k in ("contexts", "clusters", "users"))
    if not contexts:
        return f"kubeconfig {path} has no contexts; {fix}"
    names = ", ".join(contexts)
    chosen = context or data.get("current-context")
    if not chosen:
        return f"kubeconfig {path} has no current-context: pass --context NAME (it has: {names})"
    if chosen not in contexts:
        if context:
            return f"kubeconfig {path} has no context {context} (it has: {names}): check --context"
        return (
            f"kubeconfig {path}: its current-context {chosen} is not one of its contexts (it has: {names}): "
            "pass --context NAME"
        )
    entry = contexts[chosen].get("context")
    if not isinstance(entry, dict):
        return f"kubeconfig {path}: context {chosen} says nothing (no cluster, no user); {fix}"
    cluster = entry.get("cluster")
    if cluster not in clusters:
        return f"kubeconfig {path}: context {chosen} names cluster {cluster}, which the file does not have"
    user = entry.get("user")
    if user and user not in users:
        return f"kubeconfig {path}: context {chosen} names user {user}, which the file does not have"
    server = (clusters[str(cluster)].get("cluster") or {}).get("server")
    if not server:
        return f"kubeconfig {path}: cluster {cluster} (of context {chosen}) has no server address"
    return None


def connection_info(auth: Auth) -> kopf.ConnectionInfo:
    """kopf's credentials: the same server, CA, client certificate and token as the operator's
    client. kopf calls the login handler again on a 401, which renews an expired token."""
    import kopf

    auth.refresh(force=auth.refreshable)
    c = auth.credentials
    cert_data, key_data = auth.client_certificate()
    token = auth.token()
    return kopf.ConnectionInfo(
        server=c.server,
        ca_path=c.ca_file,
        ca_data=c.ca_data,
        insecure=c.insecure or None,
        username=None if token else c.username,
        password=None if token else c.password,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=None if cert_data else c.cert_file,
        certificate_data=cert_data,
        private_key_path=None if key_data else c.key_file,
        private_key_data=key_data,
        default_namespace=c.namespace,
        proxy_url=c.proxy_url,
        expiration=auth.expires,
    )
