"""The gateway the dashboard starts for itself: one per process, on loopback, into its data dir."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gateway_helpers import read_table

from tokenboard.config import Settings
from tokenboard.gateway import embedded
from tokenboard.store import Store


@pytest.fixture
def local_settings(data_dir) -> Settings:
    yield Settings(data_dir=data_dir, seed_on_start=False)
    embedded.stop_all()


def test_started_once_however_many_sessions_ask(local_settings) -> None:
    barrier = threading.Barrier(8)

    def ask(_: int) -> str:
        barrier.wait()
        return embedded.ensure_gateway(local_settings)

    with ThreadPoolExecutor(8) as pool:
        urls = set(pool.map(ask, range(8)))
    assert len(urls) == 1
    url = urls.pop()
    assert url.startswith("http://127.0.0.1:")
    assert embedded.ensure_gateway(local_settings) == url
    assert len([t for t in threading.enumerate() if t.name.startswith("gateway-server-")]) == 1


def test_embedded_gateway_writes_to_the_dashboards_store(local_settings) -> None:
    url = embedded.ensure_gateway(local_settings)
    key = embedded.default_key(local_settings)
    api = embedded.default_api(local_settings)
    answer = httpx.post(
        f"{url}/{api}/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={local_settings.gateway.key_header: key},
    )
    assert answer.status_code == 200
    embedded.stop_all()  # a clean stop flushes
    assert list(read_table(Store(local_settings.store.data_dir), "requests")["resultCode"]) == ["200"]


def test_a_configured_gateway_url_is_used_as_is(data_dir) -> None:
    settings = Settings(
        data_dir=data_dir, gateway_url="https://apim.example.net/", gateway_subscription_key="k"
    )
    assert embedded.ensure_gateway(settings) == "https://apim.example.net"
    assert embedded.default_key(settings) == "k"
    assert not any(t.name.startswith("gateway-server-") for t in threading.enumerate())


def test_azure_backend_without_gateway_url_starts_nothing(data_dir) -> None:
    settings = Settings(data_dir=data_dir, backend="azure", workspace_id="w")
    assert embedded.ensure_gateway(settings) == ""
    assert embedded.default_key(settings) == ""
