#!/usr/bin/env python3
"""What a client in the cluster gets from each route of an LLMService (the `client` image).

    route_check.py BASE MODEL CHECK...      CHECK: METHOD:PATH or METHOD:PATH:key

Sends each request to BASE (e.g. http://smol.NS.svc:8000), with `Authorization: Bearer
$LLM_API_KEY` when the check ends in :key, a small chat body for POSTs; prints one JSON object
{CHECK: status}. Standard library only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def status(base: str, model: str, check: str) -> int:
    method, path, *key = check.split(":", 2)
    body = None
    if method == "POST":
        chat = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
        body = json.dumps(chat).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {os.environ['LLM_API_KEY']}"
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


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
    base, model, *checks = sys.argv[1:]
    wait_admitted(base)
    print(json.dumps({check: status(base, model, check) for check in checks}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
