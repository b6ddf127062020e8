"""The gateway inside the dashboard's process, for the embedded default.

When the dashboard runs on the local store and no ``gateway_url`` is configured, the Test
request page needs a gateway to talk to: :func:`ensure_gateway` starts one on a free loopback
port in a background thread, writing its telemetry into the dashboard's own data directory,
so a burst shows up on the Usage and Throttling pages after the flush interval. One instance per
process and data directory, however many sessions ask at once; it stops (and flushes) at exit.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from tokenboard.backends import backend_class
from tokenboard.config import Settings
from tokenboard.gateway.app import create_app
from tokenboard.gateway.config import load_gateway_config
from tokenboard.gateway.server import BackgroundServer
from tokenboard.store import Store

_lock = threading.Lock()
_servers: dict[Path, BackgroundServer] = {}


def uses_embedded_gateway(settings: Settings) -> bool:
    """No gateway URL configured, and the backend reads the local store the gateway writes to."""
    return not settings.gateway.url.strip() and backend_class(settings.backend).reads_local_store


def ensure_gateway(settings: Settings) -> str:
    """The gateway URL: the configured one, else the embedded gateway's (started on first call).

    Returns "" when there is neither (a backend without a local store, and no ``gateway.url``).
    """
    if settings.gateway.url.strip():
        return settings.gateway.url.strip().rstrip("/")
    if not uses_embedded_gateway(settings):
        return ""
    key = Path(settings.store.data_dir).resolve()
    with _lock:
        server = _servers.get(key)
        if server is None or not server.running:
            config = load_gateway_config(settings)
            app = create_app(config, Store(settings.store.data_dir))
            server = BackgroundServer(app, limits=config.connection_limits).start()
            if not _servers:
                atexit.register(stop_all)
            _servers[key] = server
        return server.url


def default_key(settings: Settings) -> str:
    """The key the Test request page starts with: the configured one, else the first demo key."""
    configured = settings.gateway.subscription_key.get_secret_value()
    if configured or not uses_embedded_gateway(settings):
        return configured
    subscriptions = load_gateway_config(settings).subscriptions
    return subscriptions[0].key if subscriptions else ""


def default_api(settings: Settings) -> str:
    """The API path the Test request page starts with: the embedded gateway's first API, else "ai"."""
    if not uses_embedded_gateway(settings):
        return "ai"
    return next(iter(load_gateway_config(settings).apis), "ai")


def stop_all() -> None:
    """Stop every embedded gateway; their shutdown flushes buffered telemetry to the store."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.stop()


def key_owner(settings: Settings, gateway_url: str, key: str) -> str | None:
    """The subscription ``key`` belongs to, when it can be known: the embedded gateway knows its
    own keys; for any other gateway (APIM says nothing about it) only the configured key has a
    name, ``gateway.subscription_name``. None: unknown."""
    if not key:
        return None
    if uses_embedded_gateway(settings) and gateway_url.rstrip("/") == ensure_gateway(settings):
        for subscription in load_gateway_config(settings).subscriptions:
            if subscription.key == key:
                return subscription.id
        return None
    configured = settings.gateway.subscription_key.get_secret_value()
    if key != configured:
        return None
    return settings.gateway.subscription_name.strip() or None
