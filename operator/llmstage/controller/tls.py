"""Per-connection memory of TLS: asyncio gives each TLS connection a 256 KiB read buffer
(SSLProtocol.max_size), allocated and zero-filled when the connection opens, and the operator
keeps one connection per concurrent request plus one per watch (the measurement is in
docs/benchmarks.md). API server responses are a few KiB and the buffer only bounds how much is
decrypted per read call, so 64 KiB (four 16 KiB TLS records) costs nothing measurable in speed."""

from __future__ import annotations

import asyncio.sslproto

READ_BUFFER = 64 * 1024


def shrink_read_buffers(size: int = READ_BUFFER) -> None:
    """Must run before the first connection opens; only ever lowers the stdlib default."""
    protocol = asyncio.sslproto.SSLProtocol
    if getattr(protocol, "max_size", 0) > size:
        protocol.max_size = size
