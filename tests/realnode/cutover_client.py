#!/usr/bin/env python3
"""A client that never pauses: chat completions to one LLMService, back to back, with the OpenAI
client, while the test promotes the service. Runs in a pod on the real node (the `client` image).

    cutover_client.py URL MODEL [--until-vllm N] [--max-seconds S]

Prints one JSON line per request ({"n", "ok", "runtime", "ms", "error"}) and a final summary
line ({"summary": {...}}). The client keeps the OpenAI SDK's default of 2 retries, as
examples/client_openai.py does: Ollama closes its connections at once on SIGTERM
(server/routes.go: srvr.Close(), no draining), so a request in flight on an old Ollama pod when it
stops breaks at the transport level and the SDK sends it again, through the Service, to the new
runtime. Each such retry is counted and shown ("retries"); a request is failed only when the
client gets an error back. Which runtime answered is read from the answer's system_fingerprint:
Ollama's OpenAI API sets "fp_ollama" (openai/openai.go), vLLM's none (the stand-in e2e/fake-llm,
which the kind e2e suite still uses, answers "fake vllm reply to: ..."). It stops after N answers
from vLLM (the cutover is over) or after S seconds. The API key comes from
LLM_API_KEY and goes with every request: vLLM requires it, and Ollama's gateway checks it when
spec.ollama.apiKeySecretRef is set (without one, it ignores the header).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
import urllib.parse


def wait_admitted(url: str, seconds: float = 60) -> None:
    """Return once a TCP connection to URL's host and port is accepted. A NetworkPolicy enforcer
    admits a new pod a moment after it starts (kube-router adds its address to its ipsets at the
    sync its status update triggers) and refuses its connections until then: what counts the
    service's failures must not count that moment."""
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(address, timeout=10).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("--until-vllm", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()

    from openai import OpenAI

    counts = {"requests": 0, "failed": 0, "retries": 0, "ollama": 0, "vllm": 0}

    class CountRetries(logging.Handler):
        """The SDK logs each retry ("Retrying request in ...") at INFO on openai._base_client."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Retrying request"):
                counts["retries"] += 1
                print(json.dumps({"retry": record.getMessage()}), flush=True)

    sdk_log = logging.getLogger("openai._base_client")
    sdk_log.setLevel(logging.INFO)
    sdk_log.addHandler(CountRetries())
    # The SDK's default retries, as in examples/client_openai.py.
    client = OpenAI(
        base_url=args.url, api_key=os.environ.get("LLM_API_KEY") or "unused", timeout=60, max_retries=2
    )
    errors: list[str] = []
    wait_admitted(args.url)
    start = time.monotonic()
    while counts["vllm"] < args.until_vllm and time.monotonic() - start < args.max_seconds:
        counts["requests"] += 1
        t0 = time.monotonic()
        line: dict[str, object] = {"n": counts["requests"]}
        try:
            response = client.chat.completions.create(
                model=args.model,
                messages=[{"role": "user", "content": "Name one colour."}],
                max_tokens=8,
            )
            text = response.choices[0].message.content or ""
            runtime = "ollama" if response.system_fingerprint == "fp_ollama" else "vllm"
            counts[runtime] += 1
            line.update(ok=True, runtime=runtime, text=text[:60])
        except Exception as err:  # every failure is counted and shown
            counts["failed"] += 1
            errors.append(f"{type(err).__name__}: {err}")
            line.update(ok=False, error=errors[-1][:200])
        line["ms"] = round((time.monotonic() - t0) * 1000)
        print(json.dumps(line), flush=True)
    counts["seconds"] = round(time.monotonic() - start)
    print(json.dumps({"summary": counts, "errors": errors[:5]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
