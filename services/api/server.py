"""How `recap api` serves: uvicorn, with Nagle's algorithm off on every connection.

uvicorn's multi-process mode (RECAP_API_WORKERS > 1) binds the listening socket itself without IPPROTO_TCP, so
asyncio leaves TCP_NODELAY unset on accepted sockets and each keep-alive answer waits ~40 ms for the client's
delayed ACK (Kludex/uvicorn#3149; measured here: 44 ms per /healthz with 2 workers, 0.4 ms with 1). Setting it per
connection fixes both paths.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.config import Settings


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve(settings: Settings) -> None:
    uvicorn.run(
        "services.api.app:create_api",
        factory=True,
        host=settings.api_address,
        port=settings.api_port,
        workers=settings.api_workers,
        timeout_keep_alive=int(settings.api_keep_alive_s),
        http="services.api.server:NoDelayH11Protocol",
        log_config=None,  # our logging (JSON lines) as configured
        access_log=False,
        proxy_headers=False,
    )
