"""The test-request logic (tokenboard.probe) against real servers on loopback."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
import trustme
from gateway_helpers import free_port
from upstream_fakes import fake_upstream

from tokenboard import probe
from tokenboard.gateway.mock import mock_app
from tokenboard.gateway.server import BackgroundServer


def request_for(gw, **fields) -> probe.ProbeRequest:
    return probe.ProbeRequest(gateway_url=gw.url, api_path="ai", key=gw.key, max_tokens=10, **fields)


def test_send_once_reads_status_limit_headers_usage_and_reply(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=500, token_quota=10_000)
    result = probe.send_once(request_for(gw, system="Be brief."))
    assert result.status == 200 and not result.error
    assert result.total_tokens == result.prompt_tokens + result.completion_tokens == result.consumed_tokens
    assert result.remaining_tokens == 500 - result.total_tokens
    assert result.remaining_quota_tokens == 10_000 - result.total_tokens
    assert result.reply.startswith("Mock reply from gpt-4o-mini")
    assert result.headers["apim-request-id"] and result.latency_ms > 0
    assert gw.key not in repr(result)


def test_send_once_shows_the_gateways_message_on_429(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=10)
    result = probe.send_once(
        request_for(gw, user="a prompt longer than ten tokens, counted before the backend")
    )
    # The prompt alone exceeds the whole limit: no Retry-After, and the message says why.
    assert (result.status, result.retry_after, result.remaining_tokens) == (429, None, 10)
    assert result.message.startswith("Token limit is exceeded: this prompt alone is ")
    assert result.message.endswith(
        "more than the whole limit of 10 tokens per minute. Shorten the prompt; retrying will not help."
    )


def test_burst_stops_at_the_first_429(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100)
    results = list(probe.burst(request_for(gw), count=50))
    assert [r.status for r in results[:-1]] == [200] * (len(results) - 1)
    assert results[-1].status == 429 and results[-1].retry_after == 60
    summary = probe.summarize(results)
    assert summary.admitted == len(results) - 1
    assert summary.admitted_tokens == sum(r.total_tokens for r in results[:-1])
    assert (summary.first_limit_status, summary.first_limit_index, summary.retry_after) == (
        429,
        len(results) - 1,
        60,
    )


def test_concurrent_burst_starts_nothing_after_the_limit(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=300, gateway_mock_latency_ms=5)
    results = list(probe.burst(request_for(gw), count=200, concurrency=4))
    first = min(r.index for r in results if r.status == 429)
    assert max(r.index for r in results) < first + 4  # only calls already in flight
    assert sorted(r.index for r in results) == list(range(len(results)))


def test_burst_stops_on_demand(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=10_000_000)
    stop = threading.Event()
    results = []
    for result in probe.burst(request_for(gw), count=10_000, concurrency=2, stop=stop):
        results.append(result)
        if len(results) == 5:
            stop.set()
    assert 5 <= len(results) <= 7


def test_burst_at_a_rate_is_paced(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=10_000_000)
    started = time.monotonic()
    results = list(probe.burst(request_for(gw), count=6, concurrency=3, rate_per_second=20))
    assert len(results) == 6 and time.monotonic() - started >= 0.25  # 6 calls at 20/s span 0.25 s


def test_csv_holds_the_run_and_never_the_key(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100)
    results = list(probe.burst(request_for(gw), count=20))
    data = probe.results_csv(results)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [int(r["status"]) for r in rows] == [r.status for r in results]
    assert rows[-1]["retry_after"] == "60" and rows[0]["total_tokens"] == str(results[0].total_tokens)
    assert gw.key.encode() not in data


def test_connection_refused_is_a_clear_message() -> None:
    request = probe.ProbeRequest(gateway_url=f"http://127.0.0.1:{free_port()}", key="secret-key-1")
    result = probe.send_once(request)
    assert result.status is None
    assert (
        result.error.startswith("Could not connect to 127.0.0.1:")
        and "Is the gateway running?" in result.error
    )


def test_timeout_is_a_clear_message(serve) -> None:
    server = serve(fake_upstream([]))
    request = probe.ProbeRequest(gateway_url=server.url, api_path="slow", timeout_seconds=0.5)
    result = probe.send_once(request)
    assert result.error == f"127.0.0.1:{server.port} did not answer within 0.5 s."


def test_non_json_answer_is_a_clear_message(serve) -> None:
    server = serve(fake_upstream([]))
    result = probe.send_once(probe.ProbeRequest(gateway_url=server.url, api_path="html"))
    assert result.status == 200
    assert (
        result.error == "The gateway answered 200 with non-JSON content (text/html): <html>maintenance</html>"
    )


def test_untrusted_tls_certificate_is_a_clear_message(tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    with BackgroundServer(mock_app(), ssl_certfile=tmp_path / "server.pem") as server:
        request = probe.ProbeRequest(gateway_url=server.url, api_path="v1")
        result = probe.send_once(request)
        assert result.status is None and result.error.startswith("TLS verification failed for 127.0.0.1:")
        unverified = probe.send_once(
            probe.ProbeRequest(gateway_url=server.url, api_path="v1", verify_tls=False)
        )
        assert unverified.status == 200


@pytest.mark.parametrize(
    ("url", "api", "expected"),
    [
        ("https://apim.example.net/", "ai", "https://apim.example.net/ai/chat/completions"),
        ("https://apim.example.net", "/ai/chat/completions", "https://apim.example.net/ai/chat/completions"),
        ("http://127.0.0.1:8080", "", "http://127.0.0.1:8080/chat/completions"),
    ],
)
def test_endpoint_is_built_from_url_and_api_path(url: str, api: str, expected: str) -> None:
    assert probe.endpoint(url, api) == expected


@pytest.mark.parametrize("url", ["apim.example.net", "ftp://x", "https://x/?subscription-key=1", ""])
def test_unusable_gateway_url_is_refused_before_sending(url: str) -> None:
    with pytest.raises(probe.ProbeInputError, match="Gateway URL"):
        probe.endpoint(url, "ai")


def test_extra_headers_are_parsed_line_by_line() -> None:
    assert probe.parse_headers("X-Trace: 1\n\nx-team:  blue ü ") == {"X-Trace": "1", "x-team": "blue ü"}
    with pytest.raises(probe.ProbeInputError, match="line 2"):
        probe.parse_headers("X-Ok: 1\nno colon here")
