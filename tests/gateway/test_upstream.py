"""Forwarding to a real OpenAI-compatible backend on loopback, including its failures."""

from __future__ import annotations

import pytest
from gateway_helpers import free_port, read_table
from upstream_fakes import fake_upstream


@pytest.fixture
def upstream(serve):
    seen: list[dict] = []
    server = serve(fake_upstream(seen))
    return server.url, seen


@pytest.fixture
def gw(make_gateway, upstream):
    url, _ = upstream
    apis = f"good={url}/v1,fail={url}/fail,slow={url}/slow,html={url}/html,down=http://127.0.0.1:{free_port()}/v1"
    return make_gateway(
        gateway_apis=apis, gateway_upstream_key="upstream-secret-xyz", gateway_upstream_timeout_seconds=1,
        tokens_per_minute=1_000,
    )  # fmt: skip


def test_forwards_to_the_upstream_and_counts_its_usage(gw, upstream) -> None:
    answer = gw.chat(api="good", max_tokens=12)
    assert answer.status_code == 200
    usage = answer.json()["usage"]
    assert answer.json()["choices"][0]["message"]["content"].startswith("Mock reply from gpt-4o-mini")
    assert int(answer.headers["consumed-tokens"]) == usage["total_tokens"]
    assert int(answer.headers["remaining-tokens"]) == 1_000 - usage["total_tokens"]
    _, seen = upstream
    assert seen[-1]["body"]["max_tokens"] == 12
    gw.flush()
    metrics = read_table(gw.store, "customMetrics")
    assert {d["API ID"] for d in metrics["dims"]} == {"good"}
    assert metrics.loc[metrics["name"] == "Total Tokens", "valueSum"].sum() == usage["total_tokens"]


def test_the_subscription_key_is_never_sent_upstream(gw, upstream) -> None:
    gw.chat(api="good")
    headers = upstream[1][-1]["headers"]
    assert gw.key not in str(headers)
    assert headers["authorization"] == "Bearer upstream-secret-xyz"
    assert headers["api-key"] == "upstream-secret-xyz"


def test_upstream_error_status_passes_through_and_counts_nothing(gw) -> None:
    answer = gw.chat(api="fail")
    assert answer.status_code == 502
    assert answer.json() == {"error": {"message": "upstream overloaded"}}
    assert answer.headers["remaining-tokens"] == "1000"


def test_unreachable_upstream_is_502_with_a_clear_body(gw) -> None:
    answer = gw.chat(api="down")
    assert answer.status_code == 502
    assert answer.json() == {
        "statusCode": 502,
        "message": "The backend could not be reached (connection refused or name not resolved).",
    }
    assert answer.headers["remaining-tokens"] == "1000"


def test_slow_upstream_is_504(gw) -> None:
    answer = gw.chat(api="slow")
    assert answer.status_code == 504
    assert answer.json() == {"statusCode": 504, "message": "The backend did not answer within 1 seconds."}


def test_upstream_answering_html_is_502(gw) -> None:
    answer = gw.chat(api="html")
    assert answer.status_code == 502
    assert "not a JSON object" in answer.json()["message"]


def test_failed_upstream_calls_are_logged_with_their_status(gw) -> None:
    for api in ("good", "fail", "down", "slow"):
        gw.chat(api=api)
    gw.flush()
    requests = read_table(gw.store, "requests")
    assert sorted(requests["resultCode"]) == ["200", "502", "502", "504"]
    assert (requests["success"] == (requests["resultCode"] == "200")).all()
