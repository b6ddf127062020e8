"""Slow and surplus connections: the limits uvicorn's h11 protocol does not have.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits forever for a
request head that never completes, and its ``limit_concurrency`` answers 503 to everything,
the health probe included. :class:`GuardedH11Protocol` (uvicorn's ``http`` class) adds:

- **A header timeout.** A connection that has not sent a complete request head within
  ``header_timeout`` seconds of opening (or of its previous answer) is closed, with a 408 when
  it had started to send one. The body has its own timeout, in the app (``app.py``).
- **A cap on open connections**, kept below the process's file-descriptor limit so that
  ``accept()`` never runs out. A connection over the cap makes room by closing the connection
  that has waited longest with no request in progress (idle, or still sending its head: nginx
  reuses its idle connections the same way). When every connection is busy with a request,
  the newcomer's request is marked (``scope["extensions"][OVER_CAPACITY]``): the gateway
  answers it 503, except the health probe, which it answers as always. Past a small overflow
  above the cap, new connections are closed at once.
- **Quiet resource errors.** The event loop reports "socket.accept() out of system resource"
  up to ``backlog`` times per loop tick (CPython gh-151615), tens of thousands of tracebacks a
  minute. These, the guard's own events and the warnings any client can cause (a malformed
  request) are logged at most once per interval, with counts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("tokenboard.gateway")

OVER_CAPACITY = "tokenboard.over_capacity"  # scope extension on requests over the connection cap
RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
MIN_FD_RESERVE = 32  # descriptors kept free for the store, the backend and over-cap answers
BACKLOG = 2048  # the kernel's queue of connections not yet accepted (uvicorn's default)
ACCEPT_BATCH = 128  # connections accepted per wake-up, so one burst cannot hog the loop
ACCEPT_RETRY_SECONDS = 0.1  # pause after accept() fails for want of descriptors


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 1000
    header_timeout: float = 10.0  # seconds to send a complete request head
    log_interval: float = 60.0  # at most one log line per kind of event in this many seconds


def fd_budget(max_connections: int) -> tuple[int, int]:
    """(cap, overflow): open connections allowed, and how many more may be answered 503.

    The cap leaves a quarter of the free descriptors (at least ``MIN_FD_RESERVE``) in reserve;
    half the reserve may go to connections over the cap while they get their answer.
    """
    limit = _descriptor_limit()
    if limit is None:
        return max_connections, max(MIN_FD_RESERVE // 2, max_connections // 8)
    usable = limit - _open_descriptors()
    reserve = max(MIN_FD_RESERVE, usable // 4)
    return max(1, min(max_connections, usable - reserve)), reserve // 2


def _descriptor_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def _open_descriptors() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return MIN_FD_RESERVE


class QuietLog:
    """Counts events by kind; logs the first at once, then at most one summary per interval."""

    def __init__(
        self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._pending: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def event(self, kind: str, level: int, message: str) -> bool:
        """Count one event; log ``message`` (with the count since the last line) when due."""
        self._pending[kind] += 1
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            return False
        count = self._pending.pop(kind)
        self._last[kind] = now
        since = "" if last is None else f" in the last {now - last:.0f} s"
        suffix = f" ({count:,} times{since})" if count > 1 else ""
        self.logger.log(level, "%s%s", message, suffix)
        return True


class ConnectionGuard:
    """Accepts a server's connections, as many as the cap leaves room for, and keeps them in bounds.

    The guard accepts for itself (``serve``) rather than through ``loop.create_server``: asyncio
    accepts up to ``backlog`` sockets per loop tick, before any protocol sees them, so a burst
    of connections can run the process out of descriptors however the protocols behave.
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.max_connections, self.overflow = limits.max_connections, limits.max_connections // 8
        self.quiet = QuietLog(log, limits.log_interval)
        self.connections: set[Any] = set()  # the server's own set (uvicorn's server_state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[tuple[socket.socket, Callable[[], asyncio.Protocol], Any]] = []
        self._paused: set[int] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()

    def start(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        """Measure the descriptor budget and take over the loop's error reports (server start)."""
        self._loop, self.connections = loop, connections
        self.max_connections, self.overflow = fd_budget(self.limits.max_connections)
        if self.max_connections < self.limits.max_connections:
            log.info(
                "At most %d open connections: the file-descriptor limit leaves no room for %d",
                self.max_connections,
                self.limits.max_connections,
            )
        loop.set_exception_handler(self.loop_exception)

    def serve(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol], ssl: Any = None) -> None:
        """Accept connections on a listening socket for ``factory``'s protocols."""
        assert self._loop is not None, "start() first"
        sock.setblocking(False)
        sock.listen(BACKLOG)
        self._listeners.append((sock, factory, ssl))
        self._loop.add_reader(sock.fileno(), self._accept, len(self._listeners) - 1)

    def stop(self) -> None:
        """Stop accepting (server shutdown); open connections are the server's to close."""
        if self._retry is not None:
            self._retry.cancel()
        for index, (sock, _, _) in enumerate(self._listeners):
            if index not in self._paused and self._loop is not None:
                self._loop.remove_reader(sock.fileno())
        self._listeners.clear()

    # --- accepting ---------------------------------------------------------------------

    def _room(self) -> int:
        return self.max_connections + self.overflow - len(self.connections) - len(self._connecting)

    def _accept(self, index: int) -> None:
        sock, factory, ssl = self._listeners[index]
        for _ in range(ACCEPT_BATCH):
            if self._room() <= 0:  # resumed when a connection closes
                self._pause(index)
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._accept_failed(index, exc)
                return
            conn.setblocking(False)
            task = asyncio.ensure_future(self._connect(conn, factory, ssl), loop=self._loop)
            self._connecting.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[None]) -> None:
        self._connecting.discard(task)
        self.resume()

    async def _connect(self, conn: socket.socket, factory: Callable[[], asyncio.Protocol], ssl: Any) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(factory, conn, ssl=ssl)
        except (TimeoutError, OSError) as exc:  # e.g. a TLS handshake that failed
            conn.close()
            self.quiet.event("connect-failed", logging.INFO, f"A new connection failed to start: {exc}")

    def _accept_failed(self, index: int, exc: OSError) -> None:
        """Out of descriptors (or another accept error): one quiet line, a short pause."""
        self.quiet.event(
            f"accept-{exc.errno}",
            logging.ERROR,
            f"Cannot accept connections: {exc.strerror or exc} "
            f"(open connections: {len(self.connections)}, cap {self.max_connections})",
        )
        self._pause(index)
        if self._retry is None and self._loop is not None:
            self._retry = self._loop.call_later(ACCEPT_RETRY_SECONDS, self.resume)

    def _pause(self, index: int) -> None:
        if index not in self._paused and self._loop is not None:
            self._paused.add(index)
            self._loop.remove_reader(self._listeners[index][0].fileno())

    def resume(self) -> None:
        """Accept again on paused listeners (a connection closed, or the retry delay passed)."""
        self._retry = None
        if self._loop is None or not self._paused or self._room() <= 0:
            return
        for index in sorted(self._paused):
            if index < len(self._listeners):
                self._loop.add_reader(self._listeners[index][0].fileno(), self._accept, index)
        self._paused.clear()

    # --- the connections ---------------------------------------------------------------

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            self.quiet.event(
                f"resource-{exc.errno}",
                logging.ERROR,
                f"{context.get('message', 'Resource error')}: {exc.strerror or exc} "
                f"(open connections: {len(self.connections)}, cap {self.max_connections})",
            )
            return
        loop.default_exception_handler(context)

    def admit(self, conn: GuardedH11Protocol) -> None:
        """A new connection over the cap: close the longest-waiting idle one, or mark this one."""
        open_now = [c for c in self.connections if not c.transport.is_closing()]
        if len(open_now) <= self.max_connections:
            return
        waiting = [c for c in open_now if isinstance(c, GuardedH11Protocol) and c is not conn and c.waiting]
        if waiting:
            min(waiting, key=lambda c: c.waiting_since).close_waiting(answer=None)
            self.quiet.event(
                "evicted",
                logging.WARNING,
                f"Connection limit reached ({self.max_connections} open): closed the connection "
                "that had waited longest without a request",
            )
        else:
            conn.over_capacity()
            self.quiet.event(
                "over-capacity",
                logging.WARNING,
                f"Connection limit reached ({self.max_connections} open, all busy): "
                "answering new requests with 503",
            )

    def header_timeout(self) -> None:
        self.quiet.event(
            "header-timeout",
            logging.INFO,
            f"Closed a connection that sent no complete request head within {self.limits.header_timeout:g} s",
        )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and the guard's connection cap."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.logger = _ClientWarnings(self.logger, guard.quiet)  # type: ignore[assignment]
        self.waiting_since = 0.0
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False

    @property
    def waiting(self) -> bool:
        """Open with no request in progress: idle, or still sending a request head."""
        return self._head_timer is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()
        self.guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)
        self.guard.resume()  # a descriptor is about to be free

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_started = True
        super().data_received(data)
        if self._in_request():
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._wait_for_head()

    def over_capacity(self) -> None:
        """Mark this connection's requests for a 503 (the app decides), and close after one."""
        self.app = _OverCapacity(self.app)

    def close_waiting(self, answer: bytes | None) -> None:
        """Close a connection that has no request in progress, with ``answer`` if it began one
        (not if it is still sending the body of a request already answered, e.g. with 413)."""
        if answer is not None and self._head_started and self.conn.their_state is h11.IDLE:
            self.transport.write(answer)
        self._stop_waiting()
        self.transport.close()

    # --- internals ---------------------------------------------------------------------

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _wait_for_head(self) -> None:
        self._stop_waiting()
        self.waiting_since = self.loop.time()
        self._head_started = False
        self._head_timer = self.loop.call_later(self.guard.limits.header_timeout, self._head_timed_out)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._in_request():
            return
        self.guard.header_timeout()
        seconds = self.guard.limits.header_timeout
        self.close_waiting(_timeout_answer(f"The request head was not received within {seconds:g} seconds."))


class _ClientWarnings:
    """uvicorn's protocol logger, with the warnings any client can cause at will (a malformed
    request, an unsupported upgrade: one line per request) sent through the quiet log."""

    def __init__(self, logger: logging.Logger, quiet: QuietLog) -> None:
        self._logger, self._quiet = logger, quiet

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._quiet.event(f"client-{message}", logging.WARNING, message % args if args else message)


class _OverCapacity:
    """Wraps the app for one connection over the cap: marks its requests, closes after answering."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope = scope | {"extensions": (scope.get("extensions") or {}) | {OVER_CAPACITY: {}}}

        async def send_and_close(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = message | {"headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_and_close)


def _timeout_answer(message: str) -> bytes:
    body = ('{"statusCode":408,"message":"' + message + '"}').encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
