#!/usr/bin/env python3
"""Streaming chat completions back to back while the test rolls the Deployment (the `client`
image): does every stream that started also finish?

    stream_client.py URL MODEL --seconds S [--max-tokens N]

A stream is `started` once its first chunk arrived and `finished` once a chunk carried a
finish_reason; a stream that broke in between is `cut`. A request that failed before its first
chunk is `refused` (the OpenAI SDK's retries included). Prints one JSON line per stream and a
summary line ({"summary": {...}}). The API key comes from LLM_API_KEY.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()

    from openai import OpenAI

    wait_admitted(args.url)
    client = OpenAI(base_url=args.url, api_key=os.environ.get("LLM_API_KEY") or "unused", timeout=300)
    counts = {"streams": 0, "finished": 0, "cut": 0, "refused": 0}
    errors: list[str] = []
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        counts["streams"] += 1
        t0, chunks, finish = time.monotonic(), 0, None
        try:
            stream = client.chat.completions.create(
                model=args.model,
                messages=[{"role": "user", "content": "Tell a long story about a lighthouse keeper."}],
                max_tokens=args.max_tokens,
                stream=True,
            )
            for chunk in stream:
                chunks += 1
                if chunk.choices and chunk.choices[0].finish_reason:
                    finish = chunk.choices[0].finish_reason
            outcome = "finished" if finish else "cut"
        except Exception as err:  # every failure is counted and shown
            outcome = "cut" if chunks else "refused"
            errors.append(f"{type(err).__name__}: {err}"[:200])
        counts[outcome] += 1
        line = {"n": counts["streams"], outcome: True, "chunks": chunks, "s": round(time.monotonic() - t0, 1)}
        print(json.dumps(line), flush=True)
    print(json.dumps({"summary": counts, "errors": errors[:5]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
