"""Every way an Azure query fails becomes one BackendError with a message a person can act on."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from la_emulator import LogAnalyticsEmulator

from tokenboard import backends, kql
from tokenboard.backends import BackendError
from tokenboard.backends.azure import AzureBackend
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings


def _fail(backend: AzureBackend, bound: kql.BoundQuery) -> BackendError:
    with pytest.raises(BackendError) as caught:
        backend.run_query(bound)
    return caught.value


def _no_secrets(err: BackendError, emulator: LogAnalyticsEmulator) -> None:
    text = f"{err} {err.hint}"
    for token in emulator.tokens.values():
        assert token not in text
    assert emulator.identity_header not in text
    assert "Traceback" not in text


@pytest.fixture
def bound(seeded_backend: LocalBackend, demo_end: datetime) -> kql.BoundQuery:
    return seeded_backend.bind("usage_pivot", now=demo_end)


def test_invalid_kql_is_a_bad_query_quoting_the_service(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator
) -> None:
    broken = kql.BoundQuery(name="broken", body="customMetrics | wherex name == 1\n")
    err = _fail(azure_backend, broken)
    assert isinstance(err, backends.BadQueryError)
    assert "'broken'" in str(err) and "queries/broken.kql" in str(err)
    assert emulator.queries[-1].status == 400
    assert "could not parse KQL at 1:14" in str(err)  # the service's own words, innermost error
    _no_secrets(err, emulator)


def test_400_answer_is_a_bad_query(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("bad_query")
    err = _fail(azure_backend, bound)
    assert isinstance(err, backends.BadQueryError)
    assert "Query could not be parsed at 'wherex'" in str(err)
    _no_secrets(err, emulator)


def test_403_asks_for_a_reader_role(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("forbidden")
    err = _fail(azure_backend, bound)
    assert isinstance(err, backends.ForbiddenError)
    assert "HTTP 403" in str(err)
    assert "Monitoring Reader" in err.hint and "Log Analytics Reader" in err.hint
    assert "appi-gateway" in str(err)  # names the resource
    _no_secrets(err, emulator)


def test_429_carries_retry_after_and_does_not_wait_for_it(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("throttled", retry_after=17)
    started = time.monotonic()
    err = _fail(azure_backend, bound)
    assert time.monotonic() - started < 10  # the SDK did not sleep 17 s to retry
    assert isinstance(err, backends.ThrottledError)
    assert "wait 17 s and retry" in err.hint
    assert "not the gateway's" in err.hint  # not confused with llm-token-limit's 429
    assert len(emulator.queries) == 1
    _no_secrets(err, emulator)


def test_429_with_a_short_retry_after_is_retried_after_it(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("throttled", retry_after=1, times=2)
    result = azure_backend.run_query(bound)
    assert not result.frame.empty
    first, second, third = emulator.queries
    assert [q.status for q in emulator.queries] == [429, 429, 200]
    assert second.arrived - first.answered >= 0.95 and third.arrived - second.answered >= 0.95


def test_429_retries_are_bounded(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("throttled", retry_after=1)
    err = _fail(azure_backend, bound)
    assert isinstance(err, backends.ThrottledError) and "wait 1 s and retry" in err.hint
    assert len(emulator.queries) == 3  # the first try and two retries


def test_partial_result_keeps_the_rows_and_warns(
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    seeded_backend: LocalBackend,
    bound: kql.BoundQuery,
) -> None:
    full = seeded_backend.run_query(bound).frame
    emulator.set_mode("partial", keep_rows=5)
    result = azure_backend.run_query(bound)
    assert len(result.frame) == 5
    assert result.frame.equals(full.head(5))
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert "only part of the result" in warning and "E_QUERY_RESULT_SET_TOO_LARGE" in warning
    assert "narrow the time range" in warning


def test_server_side_timeout_says_narrow_the_range(
    azure_settings: Settings, identity_env: None, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    backend = AzureBackend(azure_settings.replace(query_timeout_seconds=1))
    emulator.set_mode("slow", delay=30)
    started = time.monotonic()
    err = _fail(backend, bound)
    assert time.monotonic() - started < 10
    assert emulator.queries[-1].prefer == "wait=1"  # server_timeout reached the service
    assert emulator.queries[-1].status == 504
    assert isinstance(err, backends.QueryTimeoutError)
    assert "Narrow the time range" in err.hint
    _no_secrets(err, emulator)


def test_hung_service_hits_the_client_timeout(
    azure_settings: Settings, identity_env: None, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    backend = AzureBackend(azure_settings.replace(query_timeout_seconds=1))
    emulator.set_mode("slow", delay=30, honor_wait=False)
    started = time.monotonic()
    err = _fail(backend, bound)
    assert time.monotonic() - started < 10
    assert isinstance(err, backends.QueryTimeoutError)
    assert "within 1 s" in str(err) and "Narrow the time range" in err.hint
    _no_secrets(err, emulator)


def test_500_is_reported_as_temporary(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("server_error")
    err = _fail(azure_backend, bound)
    assert type(err) is BackendError
    assert "HTTP 500" in str(err) and "retry" in err.hint
    _no_secrets(err, emulator)


def test_unreachable_endpoint_is_a_network_error(
    azure_settings: Settings, identity_env: None, emulator: LogAnalyticsEmulator, closed_port: int,
    bound: kql.BoundQuery,
) -> None:  # fmt: skip
    endpoint = f"http://127.0.0.1:{closed_port}"
    backend = AzureBackend(azure_settings.replace(azure_endpoint=endpoint))
    err = _fail(backend, bound)
    assert isinstance(err, backends.NetworkError)
    assert endpoint in str(err)
    assert "network" in err.hint
    _no_secrets(err, emulator)


def test_unknown_resource_is_not_found(
    azure_settings: Settings, identity_env: None, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    wrong = emulator.resource_id.replace("appi-gateway", "appi-typo")
    backend = AzureBackend(azure_settings.replace(app_insights_resource_id=wrong))
    err = _fail(backend, bound)
    assert isinstance(err, backends.NotFoundError)
    assert "appi-typo" in str(err) and "app_insights_resource_id" in err.hint
    _no_secrets(err, emulator)


def test_failed_sign_in_says_az_login_or_managed_identity(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("identity_denied")
    err = _fail(azure_backend, bound)
    assert isinstance(err, backends.AuthError)
    assert "az login" in err.hint and "managed identity" in err.hint
    assert emulator.token_requests, "the real credential asked the identity endpoint"
    assert emulator.queries == []  # nothing was sent without a token
    _no_secrets(err, emulator)


def test_token_for_the_wrong_audience_points_at_azure_audience(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.audience = "https://api.loganalytics.azure.cn"  # a sovereign cloud's audience
    err = _fail(azure_backend, bound)
    assert isinstance(err, backends.AuthError)
    assert emulator.queries[-1].authorization == "wrong_audience"
    assert "azure_audience" in err.hint
    _no_secrets(err, emulator)


def test_errors_chain_no_sdk_exception(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    """``from None``: a page that logs the error does not log the SDK's (request-laden) one."""
    emulator.set_mode("forbidden")
    err = _fail(azure_backend, bound)
    assert err.__cause__ is None and err.__suppress_context__


def test_unreadable_answer_is_still_one_worded_error(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    emulator.set_mode("malformed")
    err = _fail(azure_backend, bound)
    assert type(err) is BackendError
    assert "appi-gateway" in str(err) and "Logs blade" in err.hint
    _no_secrets(err, emulator)


def test_credentials_echoed_by_the_service_are_redacted(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, bound: kql.BoundQuery
) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    emulator.set_mode("server_error", message=f"upstream said: Authorization: Bearer {jwt} was used")
    err = _fail(azure_backend, bound)
    assert "upstream said" in str(err)
    assert jwt not in str(err) and "[redacted]" in str(err)
