"""The seed scenario over real HTTP: 50 tokens per minute, call until 429, wait, admitted again."""

from __future__ import annotations

import re

from gateway_helpers import read_table


def test_seed_scenario_429_carries_retry_after_and_the_window_reopens(make_gateway, clock) -> None:
    gw = make_gateway(tokens_per_minute=50)
    answers = []
    for _ in range(10):
        answers.append(gw.chat(max_tokens=10))
        if answers[-1].status_code == 429:
            break
        clock.advance(2)
    admitted, refused = answers[:-1], answers[-1]
    assert refused.status_code == 429 and admitted, [a.status_code for a in answers]
    assert all(a.status_code == 200 for a in admitted)

    # remaining-tokens counts down by what each call consumed; consumed-tokens is the call's usage.
    spent = 0
    for answer in admitted:
        total = answer.json()["usage"]["total_tokens"]
        spent += total
        assert int(answer.headers["consumed-tokens"]) == total
        assert int(answer.headers["remaining-tokens"]) == max(0, 50 - spent)

    body = refused.json()
    retry_after = int(refused.headers["Retry-After"])
    assert body == {
        "statusCode": 429,
        "message": f"Token limit is exceeded. Try again in {retry_after} seconds.",
    }
    assert re.fullmatch(r"Token limit is exceeded\. Try again in \d+ seconds\.", body["message"])
    assert int(refused.headers["remaining-tokens"]) == max(0, 50 - spent)
    assert refused.headers["consumed-tokens"] == "0"
    # The first call's tokens leave the window 60 s after it; the clock moved 2 s after each call.
    assert retry_after == 60 - 2 * len(admitted)

    clock.advance(retry_after - 1)
    assert gw.chat(max_tokens=10).status_code == 429  # one second early: still refused
    clock.advance(1)
    again = gw.chat(max_tokens=10)
    assert again.status_code == 200
    first = admitted[0].json()["usage"]["total_tokens"]  # only the first call has left the window
    in_window = spent - first + again.json()["usage"]["total_tokens"]
    assert int(again.headers["remaining-tokens"]) == max(0, 50 - in_window)


def test_throttled_calls_land_in_requests_as_429_and_tokens_only_for_200s(make_gateway, clock) -> None:
    gw = make_gateway(tokens_per_minute=50)
    statuses = [gw.chat(max_tokens=10).status_code for _ in range(6)]
    gw.flush()
    requests = read_table(gw.store, "requests")
    assert sorted(requests["resultCode"]) == sorted(str(s) for s in statuses)
    assert set(requests["success"][requests["resultCode"] == "429"]) == {False}
    assert {d["Subscription Name"] for d in requests["dims"]} == {gw.subscription}
    metrics = read_table(gw.store, "customMetrics")
    total = metrics[metrics["name"] == "Total Tokens"]
    assert int(total["valueCount"].sum()) == statuses.count(200)
