#!/usr/bin/env python3
"""Call an LLMService with the OpenAI Python client: the same code in every stage.

Dev and staging serve Ollama, production serves vLLM, but clients never notice: every stage is
an OpenAI-compatible endpoint at http://NAME.NAMESPACE.svc:8000/v1 serving the same model name
(status.servedModelName). Only the namespace in the URL changes from stage to stage, and
production wants the API key from its Secret.

    pip install openai                      # not a dependency of llmstage

    # inside the cluster (a pod in any namespace)
    python client_openai.py --namespace llm-dev "Why is the sky blue?"
    LLM_API_KEY=$(cat /var/run/secrets/llm/api-key) \
        python client_openai.py --namespace llm-prod "Why is the sky blue?"

    # from a laptop: forward the Service, then point the client at it
    kubectl -n llm-dev port-forward svc/llama31-8b 8000:8000 &
    python client_openai.py --base-url http://127.0.0.1:8000/v1 "Why is the sky blue?"

The URL is also in the LLMService's status:
    kubectl -n llm-dev get llmservice llama31-8b -o jsonpath='{.status.endpoint}'
"""

from __future__ import annotations

import argparse
import os
import sys

SERVICE = "llama31-8b"  # metadata.name of the LLMService (examples/llama31-8b-*.yaml)
MODEL = "llama3.1:8b"  # status.servedModelName: identical in dev, staging and production
PORT = 8000


def base_url(namespace: str, service: str = SERVICE) -> str:
    """The endpoint of an LLMService: only the namespace differs between stages."""
    return f"http://{service}.{namespace}.svc:{PORT}/v1"


def ask(url: str, question: str, api_key: str, model: str = MODEL) -> str:
    from openai import OpenAI  # imported here so --help works without the package

    # Ollama ignores the key; vLLM in production checks it (spec.vllm.apiKeySecretRef).
    client = OpenAI(base_url=url, api_key=api_key or "unused", timeout=120)
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=256,
    )
    return response.choices[0].message.content or ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--namespace", "-n", help="namespace of the stage, e.g. llm-dev, llm-staging, llm-prod"
    )
    where.add_argument("--base-url", help="full base URL instead, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--service", default=SERVICE, help="LLMService name (default: %(default)s)")
    parser.add_argument("--model", default=MODEL, help="served model name (default: %(default)s)")
    parser.add_argument("question")
    args = parser.parse_args(argv)
    url = args.base_url or base_url(args.namespace, args.service)
    try:
        print(ask(url, args.question, os.environ.get("LLM_API_KEY", ""), args.model))
    except ImportError:
        print("client_openai.py needs the openai package: pip install openai", file=sys.stderr)
        return 1
    except Exception as err:  # connection refused, 401, unknown model: one line, no traceback
        print(f"request to {url} failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
