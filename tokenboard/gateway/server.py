"""Serving the gateway with uvicorn: in the foreground (command line) or on a background thread.

The socket is bound before uvicorn starts, so the port is known (port 0 picks a free one) and a
port already in use is reported plainly instead of from inside uvicorn. ``log_config=None``
leaves the host process's logging alone (the dashboard embeds the gateway). With
``limits``, connections get the guard of ``connections.py`` (header timeout, connection cap).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tokenboard.gateway.connections import ConnectionGuard, ConnectionLimits, GuardedH11Protocol


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this on Linux: without it a keep-alive client waits ~40 ms per
    # answer (Nagle on the two writes of headers and body, against the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_server(app: ASGIApp, limits: ConnectionLimits | None = None, **options: Any) -> uvicorn.Server:
    """``options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile`` / ``ssl_keyfile`` for HTTPS)."""
    options = {
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    } | options
    if limits is None:
        return uvicorn.Server(uvicorn.Config(app, **options))
    return _GuardedServer(uvicorn.Config(app, **options), ConnectionGuard(limits))


class _GuardedServer(uvicorn.Server):
    """uvicorn with the guard accepting connections for its h11 protocol (uvicorn's own start-up,
    lifespan and shutdown)."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            raise ValueError("a guarded server serves sockets bound beforehand (see bind())")
        loop = asyncio.get_running_loop()
        self.guard.start(loop, self.server_state.connections)
        await super().startup(sockets=[])  # the lifespan; no listener of uvicorn's own
        factory = functools.partial(
            GuardedH11Protocol,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=loop,
            guard=self.guard,
        )
        for sock in sockets:
            self.guard.serve(sock, factory, ssl=self.config.ssl)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.guard.stop()
        await super().shutdown(sockets)


class BackgroundServer:
    """An app served on a loopback port from a daemon thread; ``stop()`` runs its shutdown."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ConnectionLimits | None = None,
        **options: Any,
    ) -> None:
        self.sock = bind(host, port)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn_server(app, limits, **options)
        self.scheme = "https" if options.get("ssl_certfile") else "http"
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name=f"gateway-server-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The gateway did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
