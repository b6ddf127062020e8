"""Gateway fixtures: a controlled clock, gateways served by uvicorn on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_helpers import FakeClock

from tokenboard.config import Settings
from tokenboard.gateway.app import Gateway, create_app
from tokenboard.gateway.config import GatewayConfig, load_gateway_config
from tokenboard.gateway.server import BackgroundServer
from tokenboard.store import Store


@dataclass
class RunningGateway:
    url: str
    config: GatewayConfig
    gateway: Gateway
    server: BackgroundServer
    store: Store

    @property
    def key(self) -> str:
        return self.config.subscriptions[0].key

    @property
    def subscription(self) -> str:
        return self.config.subscriptions[0].id

    def chat(
        self, api: str = "ai", key: str | None = None, header: str | None = None, **body: Any
    ) -> httpx.Response:
        payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]} | body
        headers = {(header or self.config.key_header): self.key if key is None else key}
        return httpx.post(f"{self.url}/{api}/chat/completions", json=payload, headers=headers, timeout=30)

    def flush(self) -> None:
        self.gateway.telemetry.flush()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_gateway(data_dir: Path, clock: FakeClock) -> Iterator[Callable[..., RunningGateway]]:
    servers: list[BackgroundServer] = []

    def factory(clock: Callable[[], float] = clock, **fields: Any) -> RunningGateway:
        settings = Settings(data_dir=data_dir, seed_on_start=False, **({"gateway_flush_ms": 200} | fields))
        config = load_gateway_config(settings)
        store = Store(data_dir)
        app = create_app(config, store, clock)
        server = BackgroundServer(app, limits=config.connection_limits).start()
        servers.append(server)
        return RunningGateway(server.url, config, app.state.gateway, server, store)

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., BackgroundServer]]:
    """Serve any ASGI app (a fake upstream, a broken server) on a free loopback port."""
    servers: list[BackgroundServer] = []

    def factory(app: Any) -> BackgroundServer:
        server = BackgroundServer(app).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
