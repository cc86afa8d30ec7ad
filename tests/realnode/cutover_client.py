#!/usr/bin/env python3
"""A client that never pauses: chat completions to one LLMService, back to back, with the OpenAI
client, while the test promotes the service. Runs in a pod on the real node (the `client` image).

    cutover_client.py URL MODEL [--until-vllm N] [--max-seconds S]

Prints one JSON line per request ({"n", "ok", "runtime", "ms", "error"}) and a final summary
line ({"summary": {...}}). Which runtime answered is read from the answer: the vLLM stand-in
(e2e/fake-llm) answers "fake vllm reply to: ...", the real Ollama answers in English. It stops
after N answers from vLLM (the cutover is over) or after S seconds. The API key comes from
LLM_API_KEY (Ollama ignores it; vLLM requires it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("--until-vllm", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()

    from openai import OpenAI

    # No retries: a request that fails must count as failed, not be hidden by a retry.
    client = OpenAI(
        base_url=args.url, api_key=os.environ.get("LLM_API_KEY") or "unused", timeout=60, max_retries=0
    )
    counts = {"requests": 0, "failed": 0, "ollama": 0, "vllm": 0}
    errors: list[str] = []
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
            runtime = "vllm" if text.startswith("fake vllm reply") else "ollama"
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
