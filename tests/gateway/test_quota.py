"""token-quota: 403 once a subscription has used its quota for the period."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway_helpers import FakeClock


def test_quota_exceeded_is_403_until_the_period_ends(make_gateway) -> None:
    clock = FakeClock(datetime(2027, 1, 15, 8, 59, 30, tzinfo=UTC).timestamp())
    gw = make_gateway(clock=clock, tokens_per_minute=10_000, token_quota=60, token_quota_period="Hourly")
    answers = [gw.chat(max_tokens=10) for _ in range(5)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and 403 in statuses and 429 not in statuses
    first_200 = answers[0]
    assert int(first_200.headers["remaining-quota-tokens"]) == 60 - first_200.json()["usage"]["total_tokens"]
    refused = answers[statuses.index(403)]
    assert refused.json() == {
        "statusCode": 403,
        "message": "Token quota is exceeded. Quota will be replenished in 00:00:30.",
    }
    assert refused.headers["Retry-After"] == "30"
    assert "remaining-quota-tokens" in refused.headers
    clock.advance(30)
    renewed = gw.chat(max_tokens=10)
    assert renewed.status_code == 200
    assert int(renewed.headers["remaining-quota-tokens"]) == 60 - renewed.json()["usage"]["total_tokens"]


def test_quota_can_differ_per_subscription(make_gateway) -> None:
    gw = make_gateway(
        gateway_subscriptions="small=k-small-1,big=k-big-2", token_quota=10_000,
        gateway_token_quota_overrides="small=20",
    )  # fmt: skip
    assert gw.chat(key="k-small-1", max_tokens=10).status_code == 200
    assert gw.chat(key="k-small-1", max_tokens=10).status_code == 403
    assert all(gw.chat(key="k-big-2", max_tokens=10).status_code == 200 for _ in range(3))
