"""TLS read buffers: each connection's buffer is 64 KiB instead of asyncio's 256 KiB, and a
response far larger than the buffer still arrives whole over a real TLS connection."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl
import subprocess
from pathlib import Path

import pytest
from llmstage.controller.tls import READ_BUFFER, shrink_read_buffers


@pytest.fixture
def stdlib_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", 256 * 1024)


def test_the_buffer_shrinks_and_is_never_raised(stdlib_default: None) -> None:
    shrink_read_buffers()
    assert asyncio.sslproto.SSLProtocol.max_size == READ_BUFFER == 64 * 1024
    shrink_read_buffers(1024 * 1024)
    assert asyncio.sslproto.SSLProtocol.max_size == READ_BUFFER


def _contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_a_response_larger_than_the_buffer_arrives_whole(stdlib_default: None, tmp_path: Path) -> None:
    shrink_read_buffers()
    server_ctx, client_ctx = _contexts(tmp_path)
    payload = bytes(range(256)) * (4 * READ_BUFFER // 256 * 4)  # 16 buffers' worth

    async def main() -> bytes:
        async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(payload)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        proto = writer.transport.get_protocol()
        ssl_proto = getattr(writer.transport, "_ssl_protocol", None) or proto
        buffer = getattr(ssl_proto, "_ssl_buffer", None)
        if buffer is not None:  # CPython's implementation detail, checked where it exists
            assert len(buffer) == READ_BUFFER
        data = await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    assert asyncio.run(main()) == payload
