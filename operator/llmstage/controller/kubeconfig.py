"""Where `llmstage run` gets its credentials, checked once before anything starts.

The client library falls back to the in-cluster ServiceAccount when a kubeconfig cannot be loaded,
so a mistyped --kubeconfig outside a pod used to end as a startup activity retried every minute
with a traceback. A path the user named must work; nothing else is tried then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import config

FIX = "pass --kubeconfig FILE or set KUBECONFIG (in a pod, set neither: the ServiceAccount is used)"


def problem(
    kubeconfig: str | None, env: Mapping[str, str] = os.environ, context: str | None = None
) -> str | None:
    """Why credentials cannot be found (one line naming the file and the fix), or None."""
    named = kubeconfig or env.get("KUBECONFIG")
    if context and not named and not os.path.exists(os.path.expanduser("~/.kube/config")):
        return f"--context {context} needs a kubeconfig: {FIX}"
    if context:
        named = named or os.path.expanduser("~/.kube/config")
    if named:
        path = named.split(os.pathsep)[0]
        if not os.path.exists(path):
            return f"kubeconfig {path}: no such file; {FIX}"
        if not os.access(path, os.R_OK):
            return f"kubeconfig {path}: not readable by this user; {FIX}"
        try:
            contexts, _ = config.list_kube_config_contexts(config_file=named)  # type: ignore[no-untyped-call]
            if context and context not in [c["name"] for c in contexts]:
                names = ", ".join(c["name"] for c in contexts) or "none"
                return f"kubeconfig {path} has no context {context} (it has: {names}): check --context"
        except Exception as err:  # YAML, missing keys, bad base64: any of them means an unusable file
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return f"kubeconfig {path}: not a usable kubeconfig ({first_line}); {FIX}"
        return None
    if os.path.exists(os.path.expanduser("~/.kube/config")) or env.get("KUBERNETES_SERVICE_HOST"):
        return None
    return f"no kubeconfig (no ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST unset): {FIX}"


def connection_info(kubeconfig: str | None, context: str) -> kopf.ConnectionInfo:
    """kopf's credentials for one context of a kubeconfig: what kopf's own client-library login
    (kopf._core.intents.piggybacking.login_via_client) extracts, for a context other than current."""
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
