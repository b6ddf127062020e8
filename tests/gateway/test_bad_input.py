"""Bad bodies: 400 / 413 with a clear message, nothing counted, still logged in requests."""

from __future__ import annotations

import httpx
import pytest
from gateway_helpers import read_table


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"model": "gpt-4o-mini"}', "needs 'messages'"),
        (b'{"messages": []}', "needs 'messages'"),
        (b'{"messages": ["hi"]}', "messages[0] must be an object"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "'max_tokens'"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "'stream'"),
    ],
)
def test_bad_body_is_400_with_a_clear_message(make_gateway, body: bytes, fragment: str) -> None:
    gw = make_gateway(tokens_per_minute=100)
    headers = {gw.config.key_header: gw.key, "content-type": "application/json"}
    answer = httpx.post(f"{gw.url}/ai/chat/completions", content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400 and fragment in answer.json()["message"]
    assert answer.headers["remaining-tokens"] == "100" and answer.headers["consumed-tokens"] == "0"


def test_oversize_body_is_413_and_counts_nothing(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100, gateway_max_body_bytes=2_000)
    answer = gw.chat(messages=[{"role": "user", "content": "x" * 5_000}])
    assert answer.status_code == 413
    assert "larger than the limit of 2000 bytes" in answer.json()["message"]
    assert answer.headers["remaining-tokens"] == "100"
    chunked = httpx.post(  # no content-length: the limit is enforced while reading
        f"{gw.url}/ai/chat/completions",
        content=iter([b'{"messages": [{"role": "user", "content": "', b"y" * 3_000, b'"}]}']),
        headers={gw.config.key_header: gw.key},
    )
    assert chunked.status_code == 413


def test_refused_input_is_logged_but_not_counted(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100, gateway_max_body_bytes=2_000)
    gw.chat(messages=[])
    gw.chat(messages=[{"role": "user", "content": "x" * 5_000}])
    ok = gw.chat(max_tokens=5)
    assert int(ok.headers["remaining-tokens"]) == 100 - ok.json()["usage"]["total_tokens"]
    gw.flush()
    assert sorted(read_table(gw.store, "requests")["resultCode"]) == ["200", "400", "413"]
    metrics = read_table(gw.store, "customMetrics")
    assert (
        metrics.loc[metrics["name"] == "Total Tokens", "valueSum"].sum() == ok.json()["usage"]["total_tokens"]
    )
