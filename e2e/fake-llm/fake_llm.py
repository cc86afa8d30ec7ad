#!/usr/bin/env python3
"""A stand-in for the Ollama and vLLM images in kind e2e runs: enough of both for llmstage's pods
to become Ready and for OpenAI clients to get an answer, without model downloads or GPUs.

    fake_llm.py serve                  Ollama server on $OLLAMA_HOST (what `ollama serve` runs)
    fake_llm.py MODEL --port=8000 ...  vLLM server: the vLLM Deployment's args after the image's
                                       `vllm serve` entrypoint (model positional; --model M and
                                       `serve MODEL ...` work too; unknown flags ignored)
    ollama list|show|pull|cp|run ...   the Ollama CLI the pull init container and the loader call

The fake Ollama keeps no models: `pull` and `cp` leave a marker per name in $OLLAMA_MODELS (when
set), which `show` then finds, with a Capabilities section like Ollama's; the server answers to
$LLMSTAGE_MODEL, the name clients send.

Standard library only. Answers are canned: "fake <runtime> reply to: <last user message>".
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Server(ThreadingHTTPServer):
    runtime = "vllm"
    model = "model"
    api_key = ""


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, fmt: str, *args: Any) -> None:  # one line per request on stderr
        sys.stderr.write(f"{self.server.runtime}: {fmt % args}\n")

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.server.api_key
        return not key or self.headers.get("Authorization") == f"Bearer {key}"

    def do_GET(self) -> None:
        s = self.server
        if self.path == "/":
            self._send(200, "Ollama is running", "text/plain")
        elif self.path == "/health":
            self._send(200, "")
        elif self.path == "/metrics":
            self._send(200, f'vllm:num_requests_waiting{{model_name="{s.model}"}} 0.0\n', "text/plain")
        elif self.path == "/api/version":
            self._send(200, {"version": "0.0.0-fake"})
        elif self.path == "/api/tags":
            self._send(200, {"models": [{"name": s.model, "model": s.model}]})
        elif self.path == "/v1/models":
            if not self._authorized():
                self._send(401, {"error": "invalid api key"})
                return
            self._send(
                200, {"object": "list", "data": [{"id": s.model, "object": "model", "owned_by": s.runtime}]}
            )
        else:
            self._send(404, {"error": f"not found: {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path in ("/api/generate", "/api/chat"):
            self._send(200, {"model": request.get("model"), "done": True, "response": ""})
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": f"not found: {self.path}"})
            return
        if not self._authorized():
            self._send(401, {"error": "invalid api key"})
            return
        if request.get("model") != self.server.model:
            self._send(404, {"error": f"model {request.get('model')!r} not found, try {self.server.model!r}"})
            return
        last = next(
            (
                m.get("content", "")
                for m in reversed(request.get("messages") or [])
                if m.get("role") == "user"
            ),
            "",
        )
        reply = f"fake {self.server.runtime} reply to: {last}"
        self._send(
            200,
            {
                "id": f"chatcmpl-fake-{int(time.time() * 1000)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.server.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": len(last.split()),
                    "completion_tokens": len(reply.split()),
                    "total_tokens": 0,
                },
            },
        )


def serve(runtime: str, host: str, port: int, model: str, api_key: str) -> None:
    server = Server((host, port), Handler)
    server.runtime, server.model, server.api_key = runtime, model, api_key
    sys.stderr.write(f"fake {runtime} serving {model!r} on {host}:{port}\n")
    server.serve_forever()


def ollama_host() -> tuple[str, int]:
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    return host or "127.0.0.1", int(port)


def _marker(name: str) -> Path:
    models = os.environ.get("OLLAMA_MODELS")
    if not models:
        return Path("/nonexistent/fake-ollama") / name.replace("/", "_")
    return Path(models) / ".fake-ollama" / name.replace("/", "_")


def _mark(name: str) -> None:
    marker = _marker(name)
    if os.environ.get("OLLAMA_MODELS"):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def ollama_cli(args: list[str]) -> int:
    command = args[0] if args else ""
    if command == "serve":
        host, port = ollama_host()
        serve("ollama", host, port, os.environ.get("LLMSTAGE_MODEL", "model"), "")
        return 0
    names = [a for a in args[1:] if not a.startswith("-")]
    if command == "show":
        # Not cached until pulled (or copied), so the init container "pulls".
        if not names or not _marker(names[0]).exists():
            print(f"Error: model '{names[0] if names else ''}' not found", file=sys.stderr)
            return 1
        print("  Model\n    architecture    fake\n\n  Capabilities\n    completion\n")
        return 0
    if command == "pull":
        print(f"pulling {names[0] if names else ''}: fake, nothing downloaded")
        if names:
            _mark(names[0])
        return 0
    if command == "cp":
        if len(names) != 2 or not _marker(names[0]).exists():
            print(f"Error: model '{names[0] if names else ''}' not found", file=sys.stderr)
            return 1
        _mark(names[1])
        return 0
    if command in ("list", "run"):
        host, port = ollama_host()
        target = "127.0.0.1" if host in ("0.0.0.0", "") else host
        try:
            with urllib.request.urlopen(f"http://{target}:{port}/api/tags", timeout=5) as resp:
                return 0 if resp.status == 200 else 1
        except OSError:
            return 1
    print(f"fake ollama: unsupported command {command!r}", file=sys.stderr)
    return 2


def vllm(args: list[str]) -> int:
    def flag(name: str, default: str) -> str:
        for i, arg in enumerate(args):
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return default

    if args and args[0] == "serve":  # `vllm serve MODEL --flags` spelled out
        args = args[1:]
    positional = args[0] if args and not args[0].startswith("-") else None
    model = positional or flag("--model", "model")
    served = flag("--served-model-name", model)
    serve(
        "vllm",
        flag("--host", "0.0.0.0"),
        int(flag("--port", "8000")),
        served,
        os.environ.get("VLLM_API_KEY", ""),
    )
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--ollama-cli":  # via the `ollama` shim
        return ollama_cli(argv[2:])
    if argv[1:] == ["serve"]:  # Ollama's `serve` (a `serve MODEL ...` is vLLM's)
        return ollama_cli(argv[1:])
    return vllm(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
