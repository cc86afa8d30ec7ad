"""/healthz and /readyz of `llmstage run` on one port (the --liveness URL's host and port).

/healthz: the event loop answers (a hung loop fails the kubelet's liveness probe and the
container is restarted); always 200 with what the operator knows.
/readyz: 200 once the watch caches are filled (startup done), for the leader and for a warm
standby alike, until the operator starts to stop; 503 before and after. A rolling update then
stops an old replica only when its replacement is ready to take over with a warm cache.

The socket is bound before anything else starts, so a port that is taken ends `llmstage run`
at once with one line (see llmstage.cli.run).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

READY_PATH = "/readyz"


def bind(host: str, port: int) -> socket.socket:
    """Raises OSError (EADDRINUSE, EACCES, ...) when the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


class HealthServer:
    def __init__(self, sock: socket.socket, health_path: str, state: Callable[[], dict[str, Any]]) -> None:
        self.sock, self.health_path, self.state = sock, health_path, state
        self._runner: web.AppRunner | None = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _readyz(self, request: web.Request) -> web.Response:
        state = self.state()
        return web.json_response(state, status=200 if state.get("ready") else 503)

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get(self.health_path, self._healthz), web.get(READY_PATH, self._readyz)])
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
