"""The real DefaultAzureCredential gets its token from the managed-identity endpoint; the
token travels only as a Bearer header, never into messages or logs."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from la_emulator import LogAnalyticsEmulator

from tokenboard.backends.azure import AzureBackend
from tokenboard.backends.base import BackendError
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings


def test_token_from_the_identity_endpoint_is_sent_as_bearer(
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    seeded_backend: LocalBackend,
    demo_end: datetime,
) -> None:
    azure_backend.run_query(seeded_backend.bind("request_totals", now=demo_end))
    azure_backend.run_query(seeded_backend.bind("call_counts", now=demo_end))

    assert [q.authorization for q in emulator.queries] == ["ok", "ok"]
    # One credential per backend: the token was fetched once and reused.
    assert len(emulator.token_requests) == 1
    request = emulator.token_requests[0]
    assert request["api-version"] == "2019-08-01"
    assert request["resource"].rstrip("/") == emulator.endpoint  # the SDK's default audience


def test_azure_audience_is_the_token_resource(
    azure_settings: Settings, identity_env: None, emulator: LogAnalyticsEmulator,
    seeded_backend: LocalBackend, demo_end: datetime,
) -> None:  # fmt: skip
    emulator.audience = "https://api.loganalytics.azure.cn"
    backend = AzureBackend(azure_settings.replace(azure_audience=emulator.audience))
    frame = backend.run_query(seeded_backend.bind("request_totals", now=demo_end)).frame
    assert len(frame) == 1
    assert emulator.token_requests[-1]["resource"] == emulator.audience
    assert emulator.queries[-1].authorization == "ok"


def test_token_never_reaches_logs_or_messages(
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    seeded_backend: LocalBackend,
    demo_end: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    azure_backend.run_query(seeded_backend.bind("usage_pivot", now=demo_end))
    emulator.set_mode("forbidden")
    with pytest.raises(BackendError) as caught:
        azure_backend.run_query(seeded_backend.bind("usage_pivot", now=demo_end))

    assert emulator.queries[0].authorization == "ok"
    logged = caplog.text
    # The SDKs did log the exchange (so this test can see a leak) ...
    assert "Authorization" in logged and emulator.endpoint in logged
    # ... but neither the token nor the identity header's secret value.
    for token in emulator.tokens.values():
        assert token not in logged
        assert token not in str(caught.value)
        assert token not in repr(caught.value)
    assert emulator.identity_header not in logged
