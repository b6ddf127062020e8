"""Who refused a call, told from telemetry alone: the gateway's limit, the deployment's, the quota.

Real HTTP over loopback; the causes come from the limit_hit_causes query over what the gateway
wrote, and must equal what the client saw, call by call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from gateway_helpers import FakeClock, read_table

from tokenboard.backends.local import LocalBackend
from tokenboard.gateway.mock import mock_app

CAUSES = ("gateway_429", "backend_429", "quota_403", "other_403", "unattributed")


def causes(gw, clock) -> dict[str, int]:
    """The query's totals over the gateway's store (all of today's calls)."""
    gw.flush()
    now = datetime.fromtimestamp(clock(), UTC)
    backend = LocalBackend(gw.config.settings, gw.store)
    bound = backend.bind(
        "limit_hit_causes", {"start_time": now - timedelta(hours=1), "end_time": now + timedelta(hours=1)}
    )
    frame = backend.run_query(bound).frame
    assert set(frame["backend_logged"]) <= {True}
    return {c: int(frame[c].sum()) for c in CAUSES}


def drive(gw, clock, calls: int = 12, key: str | None = None) -> list:
    answers = []
    for _ in range(calls):
        answers.append(gw.chat(max_tokens=10, key=key))
        clock.advance(0.5)
    return answers


def assert_rows_match_the_client(gw, answers) -> None:
    """Each answer has its requests row (operation_Id = apim-request-id, same status), and a
    backend call exactly when the gateway forwarded it."""
    requests = read_table(gw.store, "requests").set_index("operation_Id")
    dependencies = read_table(gw.store, "dependencies")
    forwarded = set(dependencies["operation_Id"])
    for answer in answers:
        op = answer.headers["apim-request-id"]
        assert requests.loc[op, "resultCode"] == str(answer.status_code)
        own_refusal = answer.status_code in (403, 429) and "statusCode" in answer.json()
        assert (op in forwarded) == (not own_refusal), (answer.status_code, answer.text)
        if answer.status_code == 429:
            logged = requests.loc[op, "dims"]
            assert logged["Response-Retry-After"] == answer.headers["Retry-After"]
            assert json.loads(logged["Response-Body"]) == answer.json()


def test_past_the_backends_limit_under_the_gateways_is_backend_429(make_gateway, clock) -> None:
    gw = make_gateway(tokens_per_minute=100_000, gateway_mock_backend_tokens_per_minute=80)
    answers = drive(gw, clock)
    refused = [a for a in answers if a.status_code == 429]
    assert refused and any(a.status_code == 200 for a in answers)
    first = refused[0]
    assert first.json()["error"]["code"] == "429"  # Azure OpenAI's body, passed through
    assert "exceeded token rate limit" in first.json()["error"]["message"]
    assert 1 <= int(first.headers["Retry-After"]) <= 60
    assert first.headers["consumed-tokens"] == "0"  # a refused call counts nothing at the gateway
    assert causes(gw, clock) == dict.fromkeys(CAUSES, 0) | {"backend_429": len(refused)}
    assert_rows_match_the_client(gw, answers)


def test_past_the_gateways_limit_under_the_backends_is_gateway_429(make_gateway, clock) -> None:
    gw = make_gateway(tokens_per_minute=60, gateway_mock_backend_tokens_per_minute=100_000)
    answers = drive(gw, clock)
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(a.json()["message"].startswith("Token limit is exceeded") for a in refused)
    assert causes(gw, clock) == dict.fromkeys(CAUSES, 0) | {"gateway_429": len(refused)}
    assert_rows_match_the_client(gw, answers)


def test_a_spent_quota_is_quota_403_and_nothing_else(make_gateway) -> None:
    clock = FakeClock(datetime(2027, 1, 15, 8, 30, tzinfo=UTC).timestamp())
    gw = make_gateway(clock=clock, tokens_per_minute=10_000, token_quota=60, token_quota_period="Hourly")
    answers = drive(gw, clock, calls=6)
    denied = [a for a in answers if a.status_code == 403]
    assert denied and not [a for a in answers if a.status_code == 429]
    assert causes(gw, clock) == dict.fromkeys(CAUSES, 0) | {"quota_403": len(denied)}
    assert_rows_match_the_client(gw, answers)


def test_both_limits_at_once_split_call_by_call(make_gateway, clock) -> None:
    """Two subscriptions on one deployment: one over its own limit, the other over the deployment's."""
    gw = make_gateway(
        gateway_subscriptions="small=k-small-1,big=k-big-2",
        tokens_per_minute=10_000,
        tokens_per_minute_overrides="small=40",
        gateway_mock_backend_tokens_per_minute=150,
    )
    answers = drive(gw, clock, calls=5, key="k-small-1") + drive(gw, clock, calls=10, key="k-big-2")
    own = sum(a.status_code == 429 and "statusCode" in a.json() for a in answers)
    deployment = sum(a.status_code == 429 and "error" in a.json() for a in answers)
    assert own and deployment
    assert causes(gw, clock) == dict.fromkeys(CAUSES, 0) | {"gateway_429": own, "backend_429": deployment}
    assert_rows_match_the_client(gw, answers)


@pytest.mark.parametrize("stream", [False, True])
def test_a_real_upstreams_429_and_retry_after_pass_through(make_gateway, serve, clock, stream) -> None:
    upstream = serve(mock_app(tokens_per_minute=60))
    gw = make_gateway(tokens_per_minute=100_000, gateway_apis=f"ai={upstream.url}/v1")
    answers = [gw.chat(max_tokens=10, stream=stream) for _ in range(8)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert all(int(a.headers["Retry-After"]) >= 1 and a.headers["retry-after-ms"] for a in refused)
    assert causes(gw, clock) == dict.fromkeys(CAUSES, 0) | {"backend_429": len(refused)}
    dependencies = read_table(gw.store, "dependencies")
    assert set(dependencies["target"]) == {upstream.url.split("//")[1]}
    assert sorted(dependencies["resultCode"]) == sorted(str(a.status_code) for a in answers)
