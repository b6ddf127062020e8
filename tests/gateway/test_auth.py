"""Subscription keys: APIM's 401 answers, and the header name the team chose."""

from __future__ import annotations

import httpx
import pytest
from gateway_helpers import read_table

MISSING = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
INVALID = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)


def test_missing_key_is_401_with_apims_message(make_gateway) -> None:
    gw = make_gateway()
    answer = httpx.post(
        f"{gw.url}/ai/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert answer.status_code == 401
    assert answer.json() == {"statusCode": 401, "message": MISSING}


def test_wrong_key_is_401_and_counts_nothing(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100)
    answer = gw.chat(key="not-a-key")
    assert (answer.status_code, answer.json()) == (401, {"statusCode": 401, "message": INVALID})
    assert "remaining-tokens" not in answer.headers  # no subscription, no counter
    assert int(gw.chat().headers["remaining-tokens"]) > 0
    gw.flush()
    requests = read_table(gw.store, "requests")
    unauthorized = requests[requests["resultCode"] == "401"]
    assert len(unauthorized) == 1
    assert "Subscription Name" not in unauthorized["dims"].iloc[0]


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
def test_the_key_header_name_is_configurable(make_gateway, header: str) -> None:
    gw = make_gateway(gateway_key_header=header)
    assert gw.chat(header=header).status_code == 200
    assert gw.chat(header=header.upper()).status_code == 200  # HTTP header names are case-insensitive
    refused = gw.chat(header="Ocp-Apim-Subscription-Key")
    assert (refused.status_code, refused.json()["message"]) == (401, MISSING)


def test_each_subscription_has_its_own_key_and_counter(make_gateway) -> None:
    gw = make_gateway(gateway_subscriptions="red=key-red-123,blue=key-blue-456", tokens_per_minute=30)
    assert gw.chat(key="key-red-123", max_tokens=20).status_code == 200
    assert gw.chat(key="key-red-123", max_tokens=20).status_code == 429
    assert gw.chat(key="key-blue-456", max_tokens=20).status_code == 200
    gw.flush()
    subs = [d.get("Subscription Name") for d in read_table(gw.store, "requests")["dims"]]
    assert sorted(subs) == ["blue", "red", "red"]


def test_unknown_api_is_404_and_logged(make_gateway) -> None:
    gw = make_gateway()
    answer = gw.chat(api="nope")
    assert (answer.status_code, answer.json()) == (404, {"statusCode": 404, "message": "Resource not found"})
    assert httpx.get(f"{gw.url}/ai/chat/completions").status_code == 404
    gw.flush()
    assert list(read_table(gw.store, "requests")["resultCode"]) == ["404", "404"]
