"""Where `llmstage run` gets its credentials, checked once before anything starts.

The client library falls back to the in-cluster ServiceAccount when a kubeconfig cannot be loaded,
so a mistyped --kubeconfig outside a pod used to end as a startup activity retried every minute
with a traceback. A path the user named must work; nothing else is tried then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kubernetes import config

FIX = "pass --kubeconfig FILE or set KUBECONFIG (in a pod, set neither: the ServiceAccount is used)"


def problem(kubeconfig: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """Why credentials cannot be found (one line naming the file and the fix), or None."""
    named = kubeconfig or env.get("KUBECONFIG")
    if named:
        path = named.split(os.pathsep)[0]
        if not os.path.exists(path):
            return f"kubeconfig {path}: no such file; {FIX}"
        if not os.access(path, os.R_OK):
            return f"kubeconfig {path}: not readable by this user; {FIX}"
        try:
            config.list_kube_config_contexts(config_file=named)  # type: ignore[no-untyped-call]
        except Exception as err:  # YAML, missing keys, bad base64: any of them means an unusable file
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return f"kubeconfig {path}: not a usable kubeconfig ({first_line}); {FIX}"
        return None
    if os.path.exists(os.path.expanduser("~/.kube/config")) or env.get("KUBERNETES_SERVICE_HOST"):
        return None
    return f"no kubeconfig (no ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST unset): {FIX}"
