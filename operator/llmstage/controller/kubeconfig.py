"""Where `llmstage run` gets its credentials, checked once before anything starts.

The client library falls back to the in-cluster ServiceAccount when a kubeconfig cannot be loaded,
so a mistyped --kubeconfig outside a pod used to end as a startup activity retried every minute
with a traceback. A path the user named must work; nothing else is tried then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import config

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
        paths = named.split(os.pathsep)
        path = paths[0]
        if not os.path.exists(path):
            return f"kubeconfig {path}: no such file; {fix}"
        if not os.access(path, os.R_OK):
            return f"kubeconfig {path}: not readable by this user; {fix}"
        if len(paths) == 1:
            with open(path, encoding="utf-8", errors="replace") as f:
                found = structure_problem(path, f.read(), context, fix)
            if found:
                return found
        try:
            contexts, _ = config.list_kube_config_contexts(config_file=named)  # type: ignore[no-untyped-call]
            if context and context not in [c["name"] for c in contexts]:
                names = ", ".join(c["name"] for c in contexts) or "none"
                return f"kubeconfig {path} has no context {context} (it has: {names}): check --context"
        except Exception as err:  # what the checks above do not know: the library's first line
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return f"kubeconfig {path}: not a usable kubeconfig ({first_line}); {fix}"
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


def connection_info(kubeconfig: str | None, context: str) -> kopf.ConnectionInfo:
    """kopf's credentials for one context of a kubeconfig: what kopf's own client-library login
    (kopf._core.intents.piggybacking.login_via_client) extracts, for a context other than current."""
    import kopf
    from kubernetes import client

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen: dict[str, Any] = next((c for c in contexts if c["name"] == context), {})
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        default_namespace=(chosen.get("context") or {}).get("namespace"),
    )
