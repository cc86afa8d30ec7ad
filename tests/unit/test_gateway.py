"""The gateway in front of the runtimes (render/gateway.py): what its nginx configuration passes.

Rendering only; the real nginx proxying the real vLLM and Ollama (allowed routes answered, the
rest refused, keys checked) is tests/realnode/test_vllm.py's and test_serving.py's."""

from __future__ import annotations

import re
from dataclasses import replace

from llmstage.api.models import Runtime
from llmstage.render import gateway
from llmstage.render.gateway import gateway_container, nginx_conf
from llmstage.resolve.resolved import SecretKeyRef

from testkit.render_fixtures import DEV_OLLAMA, PRODUCTION_VLLM, pod_specs


def locations(conf: str) -> dict[str, str]:
    """location -> its body, in the server on the serving port."""
    serving = conf.split("listen 8000;", 1)[1].split("\n  }\n", 1)[0]
    return dict(re.findall(r"location ((?:= |~ )?\S+) \{ (.*?) \}(?:\n|$)", serving))


def test_vllm_gets_its_openai_api_and_health_through_and_nothing_else() -> None:
    routes = locations(nginx_conf(Runtime.VLLM))
    passed = {path for path, body in routes.items() if "proxy_pass" in body}
    assert passed == {"/v1/", "= /health"}
    # vLLM checks its key on /v1 itself; runtime LoRA loading under /v1 is refused outright.
    assert "return 404" in routes[r"~ ^/v1/(load|unload)_lora_adapter$"]
    assert routes["/"].startswith("return 404")
    # /invocations, /pause, /tokenize, ...: under "/", refused.
    assert not any(p in routes for p in ("= /invocations", "/invocations", "= /pause"))


def test_vllm_metrics_have_a_port_of_their_own_and_ollama_none() -> None:
    conf = nginx_conf(Runtime.VLLM)
    metrics = conf.split(f"listen {gateway.METRICS_PORT};", 1)[1]
    assert "location = /metrics { proxy_pass http://runtime; }" in metrics
    assert "/metrics" not in locations(conf)
    assert f"listen {gateway.METRICS_PORT};" not in nginx_conf(Runtime.OLLAMA)


def test_ollama_passes_inference_and_keeps_its_management_api_out_of_reach() -> None:
    routes = locations(nginx_conf(Runtime.OLLAMA))
    passed = {path.removeprefix("= ") for path, body in routes.items() if "proxy_pass" in body}
    assert {"/v1/", "/api/chat", "/api/generate", "/api/embed", "/api/tags", "/"} <= passed
    for management in ("pull", "push", "create", "copy", "delete", "blobs"):
        assert not any(p.startswith(f"/api/{management}") for p in passed), management
    # The key, when set, on everything but the probes' routes and "/".
    keyed = {p.removeprefix("= ") for p, body in routes.items() if "$llmstage_key_ok = 0" in body}
    assert keyed == passed - {"/api/tags", "/api/version", "/"}
    assert "proxy_set_header Host 127.0.0.1;" in nginx_conf(Runtime.OLLAMA)  # allowedHostsMiddleware


def test_the_runtime_listens_on_loopback_and_the_gateway_owns_the_serving_port() -> None:
    for resolved in (DEV_OLLAMA, PRODUCTION_VLLM):
        (spec,) = pod_specs(resolved)
        server, gw = spec["containers"]
        assert gw["name"] == "gateway" and gw["ports"][0]["containerPort"] == 8000
        assert "ports" not in server
        env = {e["name"]: e.get("value") for e in server.get("env", [])}
        assert env.get("OLLAMA_HOST") == "127.0.0.1:8001" or "--host=127.0.0.1" in server["args"]
        assert {"name": "gateway-tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]


def test_only_an_ollama_key_reaches_the_gateway_and_only_by_reference() -> None:
    names = [e["name"] for e in gateway_container(PRODUCTION_VLLM, Runtime.VLLM)["env"]]
    assert names == ["LLMSTAGE_GATEWAY_CONF"]  # vLLM checks its own key
    assert DEV_OLLAMA.ollama is not None
    settings = replace(DEV_OLLAMA.ollama, api_key_secret_ref=SecretKeyRef("k", "api-key"))
    keyed = replace(DEV_OLLAMA, ollama=settings)
    (key,) = [e for e in gateway_container(keyed, Runtime.OLLAMA)["env"] if e["name"] == "LLMSTAGE_API_KEY"]
    assert key == {"name": "LLMSTAGE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "api-key"}}}
    # Spliced into nginx's configuration only after the start checks its characters.
    assert 'case "$LLMSTAGE_API_KEY" in' in gateway.START


def test_a_mirrored_gateway_image_is_used() -> None:
    mirrored = replace(DEV_OLLAMA, gateway_image="registry.internal:5000/nginxinc/nginx-unprivileged:1.27.4")
    assert gateway_container(mirrored, Runtime.OLLAMA)["image"].startswith("registry.internal:5000/")
