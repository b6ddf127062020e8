"""50 concurrent clients x 20 requests: nothing lost, nothing double-counted, the limit holds."""

from __future__ import annotations

import asyncio
import collections

import httpx
from gateway_helpers import read_table

from tokenboard.gateway.mock import MAX_REPLY_TOKENS

CLIENTS, PER_CLIENT, LIMIT = 50, 20, 2_000
SUBS = {f"sub-{i}": f"key-{i}-{'x' * 24}" for i in range(5)}


async def client_run(url: str, header: str, client_no: int) -> list[tuple[str, int, int]]:
    key = SUBS[f"sub-{client_no % len(SUBS)}"]
    results = []
    async with httpx.AsyncClient(timeout=60) as client:
        for n in range(PER_CLIENT):
            body = {
                "messages": [{"role": "user", "content": f"client {client_no} call {n} ü ✓"}],
                "max_tokens": 16,
            }
            answer = await client.post(f"{url}/ai/chat/completions", json=body, headers={header: key})
            total = answer.json()["usage"]["total_tokens"] if answer.status_code == 200 else 0
            results.append((answer.headers["apim-request-id"], answer.status_code, total))
    return [(f"sub-{client_no % len(SUBS)}", *r) for r in results]


async def traffic(url: str, header: str) -> list[tuple[str, str, int, int]]:
    runs = await asyncio.gather(*(client_run(url, header, i) for i in range(CLIENTS)))
    return [row for run in runs for row in run]


def test_every_request_once_tokens_match_and_the_window_holds(make_gateway) -> None:
    subscriptions = ",".join(f"{s}={k}" for s, k in SUBS.items())
    gw = make_gateway(gateway_subscriptions=subscriptions, tokens_per_minute=LIMIT, gateway_mock_latency_ms=2)
    rows = asyncio.run(traffic(gw.url, gw.config.key_header))  # the clock stands still: one window
    gw.flush()

    requests = read_table(gw.store, "requests")
    assert len(rows) == CLIENTS * PER_CLIENT == len(requests)
    assert sorted(requests["id"]) == sorted(r[1] for r in rows)  # each request exactly once
    assert collections.Counter(requests["resultCode"]) == collections.Counter(str(r[2]) for r in rows)
    statuses = collections.Counter(r[2] for r in rows)
    assert set(statuses) == {200, 429} and statuses[429] > 0

    metrics = read_table(gw.store, "customMetrics")
    metrics["subscription"] = metrics["dims"].map(lambda d: d["Client Subscription"])
    by_sub = metrics[metrics["name"] == "Total Tokens"].groupby("subscription")["valueSum"].sum()
    sent = collections.defaultdict(int)
    calls = collections.Counter()
    for sub, _, status, total in rows:
        sent[sub] += total
        calls[sub] += status == 200
    assert by_sub.to_dict() == dict(sent)  # customMetrics == sum of usage.total_tokens of the 200s
    counts = metrics[metrics["name"] == "Total Tokens"].groupby("subscription")["valueCount"].sum()
    assert counts.to_dict() == dict(calls)
    by_name = metrics.groupby("name")["valueSum"].sum()
    assert by_name["Total Tokens"] == by_name["Prompt Tokens"] + by_name["Completion Tokens"]

    # One window: each subscription admitted at most its limit plus the documented overshoot, the
    # completion tokens of calls in flight (at most every client of that subscription at once).
    clients_per_sub = CLIENTS // len(SUBS)
    for sub, total in sent.items():
        assert LIMIT - 64 <= total <= LIMIT + clients_per_sub * min(16, MAX_REPLY_TOKENS), (sub, total)
