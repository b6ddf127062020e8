"""Fixtures for the Azure path: the Log Analytics emulator, and the environment that makes
the real DefaultAzureCredential take its token from the emulator's identity endpoint.

Nothing in azure-monitor-query or azure-identity is patched: only environment variables
and the endpoint the settings point at.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import datetime

import pytest
from la_emulator import LogAnalyticsEmulator

from tokenboard.backends.azure import AzureBackend
from tokenboard.config import Settings
from tokenboard.store import Store

# Anything that could make DefaultAzureCredential pick another credential, or send
# loopback traffic through a proxy.
_FOREIGN_ENV = (
    "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST", "AZURE_TOKEN_CREDENTIALS", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)  # fmt: skip


@pytest.fixture
def emulator(seeded_store: Store, demo_end: datetime) -> Iterator[LogAnalyticsEmulator]:
    with LogAnalyticsEmulator(seeded_store, now=demo_end) as emu:
        yield emu


@pytest.fixture
def identity_env(emulator: LogAnalyticsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Managed identity (App Service style) served by the emulator; nothing else configured."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in emulator.identity_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def azure_settings(demo_settings: Settings, emulator: LogAnalyticsEmulator) -> Settings:
    return demo_settings.replace(
        backend="azure",
        app_insights_resource_id=emulator.resource_id,
        azure_endpoint=emulator.endpoint,
    )


@pytest.fixture
def azure_backend(azure_settings: Settings, identity_env: None) -> AzureBackend:
    return AzureBackend(azure_settings)


@pytest.fixture
def workspace_backend(
    demo_settings: Settings, emulator: LogAnalyticsEmulator, identity_env: None
) -> AzureBackend:
    settings = demo_settings.replace(
        backend="azure", workspace_id=emulator.workspace_id, azure_endpoint=emulator.endpoint
    )
    return AzureBackend(settings)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def azure_app(
    emulator: LogAnalyticsEmulator, identity_env: None, monkeypatch: pytest.MonkeyPatch
) -> LogAnalyticsEmulator:
    """The dashboard's pages (AppTest, or a server started from here) on the Azure backend,
    querying the emulator; no TOKENBOARD_* setting of the developer's own applies."""
    for name in list(os.environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENBOARD_BACKEND", "azure")
    monkeypatch.setenv("TOKENBOARD_APP_INSIGHTS_RESOURCE_ID", emulator.resource_id)
    monkeypatch.setenv("TOKENBOARD_AZURE_ENDPOINT", emulator.endpoint)
    return emulator
