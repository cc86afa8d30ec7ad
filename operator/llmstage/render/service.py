"""The Service: one stable endpoint for both runtimes."""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.labels import SERVER, metadata, selector_labels, service_name
from llmstage.render.pod import HTTP_PORT
from llmstage.resolve.resolved import Resolved


def render_service(resolved: Resolved, serving_runtime: Runtime) -> dict[str, Any]:
    """Named like the LLMService, port 8000 `http`, selecting the serving runtime's pods.

    Both runtimes listen on the same port, so a promotion or a runtime cutover only changes the
    selector: clients keep http://NAME.NAMESPACE.svc:8000/v1 and the same model name.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(resolved, service_name(resolved.name), SERVER, serving_runtime),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(resolved.name, serving_runtime),
            "ports": [
                {
                    "name": "http",
                    "port": HTTP_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }
