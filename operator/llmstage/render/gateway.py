"""The gateway: nginx in front of the runtime in every serving pod, passing the inference API only.

    gateway_container(resolved, runtime) -> core/v1 Container     the pod's `gateway` container
    nginx_conf(runtime) -> str                                     its configuration

The runtimes serve more than inference on their port: Ollama's management API pulls, pushes,
copies and deletes models (/api/pull, /api/delete, ...) without authentication, and vLLM 0.32's
API key guards only /v1, /v2, /inference and /cohere (vllm/entrypoints/serve/middleware/
authenticate.py GUARDED_PREFIX) while /invocations (SageMaker) runs inference, and /pause,
/abort_requests, /scale_elastic_ep, /pooling, /score, /tokenize and others answer anyone. So the
runtime listens on loopback only (RUNTIME_PORT) and the pod's serving port belongs to nginx, which
proxies an allow-list:

- vLLM: /v1/ (where vLLM itself checks the API key), /health (the probes); /metrics on a port of
  its own (METRICS_PORT) that the PodMonitor scrapes and the NetworkPolicy opens to the
  monitoring namespace only. Runtime LoRA loading (/v1/load_lora_adapter, /v1/unload_lora_adapter)
  is refused: adapters are spec.lora's.
- Ollama: its OpenAI API (/v1/), chat, generate and embeddings (/api/chat, /api/generate,
  /api/embed, /api/embeddings), and what lists and describes models (/api/tags, /api/show,
  /api/ps, /api/version, /). With spec.ollama.apiKeySecretRef every route but the probes' (/,
  /api/version, /api/tags) needs `Authorization: Bearer KEY`, so clients send the same header in
  every stage.

Everything else gets 404 from nginx. Ollama only answers a loopback listener's requests whose
Host is local (server/routes.go allowedHostsMiddleware), so nginx sends Host 127.0.0.1.

The image is nginx's own unprivileged build (resolve/gateway.py). The container runs as the pod's
user with a read-only root: a small shell start writes the configuration (and, with a key, the map
that checks it: the Secret reaches nginx as a variable, never the operator) into its /tmp and
starts nginx, turning the kubelet's SIGTERM into nginx's graceful SIGQUIT; only core directives
are used.
"""

from __future__ import annotations

from typing import Any

from llmstage.api.constants import Runtime
from llmstage.render.pod import HTTP_PORT, PRE_STOP_SLEEP_SECONDS
from llmstage.resolve.gateway import DEFAULT_GATEWAY_IMAGE
from llmstage.resolve.resolved import Resolved, SecretKeyRef

CONTAINER = "gateway"
# Where the runtime listens, on the pod's loopback only: nothing outside the pod reaches it.
RUNTIME_PORT = 8001
# vLLM's /metrics, for Prometheus only (the NetworkPolicy admits the monitoring namespace here).
METRICS_PORT = 9090
METRICS_PORT_NAME = "metrics"
SCRATCH = "/tmp/gateway"
HEALTH_PATH = "/llmstage/gateway/healthz"
# The key is spliced into nginx's configuration: letters, digits and the token characters of
# RFC 6750's b64token only, so it cannot change the configuration around it.
KEY_CHARACTERS = "A-Za-z0-9._~+/=-"

# Routes per runtime that nginx passes on: (nginx location, needs the key when one is set).
VLLM_ROUTES: tuple[tuple[str, bool], ...] = (("/v1/", False), ("= /health", False))
OLLAMA_ROUTES: tuple[tuple[str, bool], ...] = (
    ("/v1/", True),
    ("= /api/chat", True),
    ("= /api/generate", True),
    ("= /api/embed", True),
    ("= /api/embeddings", True),
    ("= /api/show", True),
    ("= /api/ps", True),
    # The probes (render/ollama.py): readiness /api/tags, liveness /api/version; and "Ollama is
    # running" at /. They say nothing a client could use.
    ("= /api/tags", False),
    ("= /api/version", False),
    ("= /", False),
)
# Refused even under an allowed prefix (regex locations win over prefixes in nginx).
VLLM_REFUSED = r"^/v1/(load|unload)_lora_adapter$"

START = f"""set -eu
mkdir -p {SCRATCH}
printf '%s\\n' "$LLMSTAGE_GATEWAY_CONF" > {SCRATCH}/nginx.conf
if [ -n "${{LLMSTAGE_API_KEY:-}}" ]; then
  case "$LLMSTAGE_API_KEY" in
    *[!{KEY_CHARACTERS}]*)
      echo "llmstage gateway: the API key may hold only letters, digits and ._~+/=- (RFC 6750)" >&2
      exit 1;;
  esac
  printf 'map $http_authorization $llmstage_key_ok {{ default 0; "Bearer %s" 1; }}\\n' \\
    "$LLMSTAGE_API_KEY" > {SCRATCH}/key.conf
else
  printf 'map $http_authorization $llmstage_key_ok {{ default 1; }}\\n' > {SCRATCH}/key.conf
fi
nginx -e stderr -c {SCRATCH}/nginx.conf -g 'daemon off;' &
nginx=$!
# The kubelet stops a container with SIGTERM, which is nginx's fast shutdown (open connections
# cut); SIGQUIT is its graceful one, which lets the streams in flight finish.
trap 'kill -QUIT "$nginx"' TERM INT
wait "$nginx" || wait "$nginx"
"""


def _json(message: str) -> str:
    return '\'{"error": "' + message + "\"}'"


def _location(path: str, needs_key: bool) -> str:
    check = f"if ($llmstage_key_ok = 0) {{ return 401 {_json('Unauthorized')}; }} " if needs_key else ""
    return f"    location {path} {{ {check}proxy_pass http://runtime; }}\n"


def nginx_conf(runtime: Runtime) -> str:
    """The whole configuration of the runtime's gateway (core nginx directives only)."""
    routes = VLLM_ROUTES if runtime is Runtime.VLLM else OLLAMA_ROUTES
    name = "vLLM" if runtime is Runtime.VLLM else "Ollama"
    not_served = _json(f"not served: the gateway passes {name} inference routes only")
    no_lora_loading = _json("runtime LoRA loading is off: use spec.lora")
    refused = (
        f"    location ~ {VLLM_REFUSED} {{ return 404 {no_lora_loading}; }}\n"
        if runtime is Runtime.VLLM
        else ""
    )
    metrics = (
        f"  server {{\n    listen {METRICS_PORT};\n"
        "    location = /metrics { proxy_pass http://runtime; }\n"
        f"    location / {{ return 404 {_json('not served: this port serves /metrics only')}; }}\n  }}\n"
        if runtime is Runtime.VLLM
        else ""
    )
    return (
        "worker_processes 1;\n"
        f"pid {SCRATCH}/nginx.pid;\n"
        # crit: a runtime still loading refuses the probes' connections every few seconds, which
        # nginx logs as errors; what is wrong with the runtime is in its own log.
        "error_log stderr crit;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "  access_log off;\n"
        "  server_tokens off;\n"
        "  default_type application/json;\n"
        f"  client_body_temp_path {SCRATCH}/client_body;\n"
        f"  proxy_temp_path {SCRATCH}/proxy;\n"
        f"  fastcgi_temp_path {SCRATCH}/fastcgi;\n"
        f"  uwsgi_temp_path {SCRATCH}/uwsgi;\n"
        f"  scgi_temp_path {SCRATCH}/scgi;\n"
        f"  include {SCRATCH}/key.conf;\n"
        f"  upstream runtime {{ server 127.0.0.1:{RUNTIME_PORT}; keepalive 16; }}\n"
        # Long generations stream token by token: no buffering, no short timeouts; prompts with
        # images or long documents are large.
        "  proxy_http_version 1.1;\n"
        '  proxy_set_header Connection "";\n'
        "  proxy_set_header Host 127.0.0.1;\n"
        "  proxy_set_header X-Forwarded-For $remote_addr;\n"
        "  proxy_buffering off;\n"
        "  proxy_request_buffering off;\n"
        "  proxy_read_timeout 1h;\n"
        "  proxy_send_timeout 1h;\n"
        "  client_max_body_size 64m;\n"
        "  server {\n"
        f"    listen {HTTP_PORT};\n"
        f'    location = {HEALTH_PATH} {{ return 200 \'{{"status": "ok"}}\'; }}\n'
        + refused
        + "".join(_location(path, key) for path, key in routes)
        + f"    location / {{ return 404 {not_served}; }}\n"
        "  }\n" + metrics + "}\n"
    )


def api_key(resolved: Resolved, runtime: Runtime) -> SecretKeyRef | None:
    """The key the gateway itself checks: Ollama's (spec.ollama.apiKeySecretRef). vLLM checks its
    own on /v1, the only inference routes the gateway passes to it."""
    if runtime is Runtime.OLLAMA and resolved.ollama is not None:
        return resolved.ollama.api_key_secret_ref
    return None


def gateway_container(resolved: Resolved, runtime: Runtime) -> dict[str, Any]:
    """The pod's `gateway` container (the serving port belongs to it)."""
    env: list[dict[str, Any]] = [{"name": "LLMSTAGE_GATEWAY_CONF", "value": nginx_conf(runtime)}]
    key = api_key(resolved, runtime)
    if key is not None:
        env.append(
            {"name": "LLMSTAGE_API_KEY", "valueFrom": {"secretKeyRef": {"name": key.name, "key": key.key}}}
        )
    ports = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    if runtime is Runtime.VLLM:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"})
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "name": CONTAINER,
        "image": resolved.gateway_image or DEFAULT_GATEWAY_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", START],
        "ports": ports,
        "env": env,
        "resources": {
            "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "64Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        # As the server's: new connections keep coming until the endpoints drop the pod.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}},
        "volumeMounts": [{"name": "gateway-tmp", "mountPath": "/tmp"}],
    }


def gateway_volume() -> dict[str, Any]:
    return {"name": "gateway-tmp", "emptyDir": {"sizeLimit": "64Mi"}}
