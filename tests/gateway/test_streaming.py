"""stream: true answers server-sent events and counts tokens from the final usage chunk."""

from __future__ import annotations

import json

import httpx
import pytest
from gateway_helpers import read_table
from upstream_fakes import fake_upstream


def sse(answer: httpx.Response) -> list[dict | str]:
    events = []
    for line in answer.text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.fixture
def upstream_url(serve):
    return serve(fake_upstream([])).url


def test_mock_stream_ends_with_usage_and_is_counted(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=500)
    answer = gw.chat(stream=True, max_tokens=12)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = sse(answer)
    assert events[-1] == "[DONE]"
    usage = events[-2]["usage"]
    text = "".join(c["delta"].get("content", "") for e in events[:-2] for c in e["choices"])
    assert text.startswith("Mock reply from gpt-4o-mini")
    follow = gw.chat(max_tokens=1)  # the next call sees the streamed call's tokens in the window
    assert (
        int(follow.headers["remaining-tokens"])
        == 500 - usage["total_tokens"] - follow.json()["usage"]["total_tokens"]
    )
    gw.flush()
    metrics = read_table(gw.store, "customMetrics")
    totals = metrics[metrics["name"] == "Total Tokens"]["valueSum"].sum()
    assert totals == usage["total_tokens"] + follow.json()["usage"]["total_tokens"]
    assert sorted(read_table(gw.store, "requests")["resultCode"]) == ["200", "200"]


def test_upstream_stream_is_relayed_and_counted_from_its_usage_chunk(make_gateway, upstream_url) -> None:
    gw = make_gateway(gateway_apis=f"up={upstream_url}/v1", tokens_per_minute=500)
    answer = gw.chat(api="up", stream=True)
    events = sse(answer)
    usage = events[-2]["usage"]  # asked for by the gateway (stream_options.include_usage)
    gw.flush()
    metrics = read_table(gw.store, "customMetrics")
    by_name = metrics.groupby("name")["valueSum"].sum()
    assert by_name["Total Tokens"] == usage["total_tokens"]
    assert by_name["Prompt Tokens"] == usage["prompt_tokens"]
    assert by_name["Completion Tokens"] == usage["completion_tokens"]


def test_stream_without_usage_is_counted_by_the_tokenizer(make_gateway, upstream_url) -> None:
    gw = make_gateway(gateway_apis=f"nu={upstream_url}/nousage", tokens_per_minute=500)
    answer = gw.chat(api="nu", stream=True)
    assert "hello there" in answer.text
    gw.flush()
    metrics = read_table(gw.store, "customMetrics")
    by_name = metrics.groupby("name")["valueSum"].sum()
    assert by_name["Completion Tokens"] == 2  # "hello there"
    assert by_name["Total Tokens"] == by_name["Prompt Tokens"] + 2
