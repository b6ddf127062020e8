"""Window semantics of llm-token-limit, against a clock the test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gateway_helpers import FakeClock

from tokenboard.gateway.limiter import Limits, TokenLimiter, quota_period

LIMITS = Limits(tokens_per_minute=100)


def spend(limiter: TokenLimiter, prompt: int, total: int, limits: Limits = LIMITS, key: str = "sub") -> int:
    decision = limiter.admit(key, limits, prompt)
    assert decision.admitted, decision
    return limiter.commit(decision.reservation, total).remaining_tokens


def test_tokens_count_for_sixty_seconds_then_drop_out_of_the_sliding_window() -> None:
    clock = FakeClock()
    limiter = TokenLimiter(clock)
    assert spend(limiter, 10, 60) == 40
    clock.advance(30)
    assert spend(limiter, 10, 40) == 0
    assert limiter.admit("sub", LIMITS, 10).status == 429
    clock.advance(30)  # the first 60 tokens are exactly 60 s old: gone
    assert limiter.state("sub", LIMITS).remaining_tokens == 60
    clock.advance(30)
    assert limiter.state("sub", LIMITS).remaining_tokens == 100


def test_retry_after_is_the_wait_until_enough_tokens_expire() -> None:
    clock = FakeClock()
    limiter = TokenLimiter(clock)
    spend(limiter, 10, 50)
    clock.advance(20)
    spend(limiter, 10, 50)
    clock.advance(5.5)
    refused = limiter.admit("sub", LIMITS, 10)
    assert (refused.status, refused.remaining_tokens) == (429, 0)
    assert refused.retry_after == 35  # the first 50 tokens leave 60 s after they were spent: 34.5 s -> 35
    clock.advance(34.5)
    assert limiter.admit("sub", LIMITS, 10).admitted


def test_a_prompt_that_cannot_fit_is_refused_before_the_backend() -> None:
    limiter = TokenLimiter(FakeClock())
    spend(limiter, 10, 95)
    assert limiter.admit("sub", LIMITS, 6).status == 429
    assert limiter.admit("sub", LIMITS, 5).admitted


def test_reserved_prompts_bound_the_overshoot_of_concurrent_calls() -> None:
    limiter = TokenLimiter(FakeClock())
    admitted = []
    while (decision := limiter.admit("sub", LIMITS, 20)).admitted:
        admitted.append(decision.reservation)
    assert len(admitted) == 5  # 5 x 20 prompt tokens fill the minute before any call finished
    completion = 30
    remaining = [limiter.commit(r, 20 + completion).remaining_tokens for r in admitted]
    assert remaining[-1] == 0
    window = sum(20 + completion for _ in admitted)
    assert window <= LIMITS.tokens_per_minute + len(admitted) * completion  # the documented overshoot


def test_a_released_reservation_counts_nothing() -> None:
    limiter = TokenLimiter(FakeClock())
    decision = limiter.admit("sub", LIMITS, 80)
    assert limiter.state("sub", LIMITS).remaining_tokens == 20
    assert limiter.release(decision.reservation).remaining_tokens == 100
    assert limiter.release(decision.reservation).remaining_tokens == 100  # twice is harmless


def test_counters_are_per_key() -> None:
    limiter = TokenLimiter(FakeClock())
    spend(limiter, 10, 100, key="a")
    assert limiter.admit("a", LIMITS, 1).status == 429
    assert limiter.admit("b", LIMITS, 1).admitted


def test_quota_refuses_with_403_until_the_calendar_period_ends() -> None:
    clock = FakeClock(datetime(2027, 1, 15, 8, 59, 0, tzinfo=UTC).timestamp())
    limits = Limits(tokens_per_minute=1_000, token_quota=150, quota_period="Hourly")
    limiter = TokenLimiter(clock)
    spend(limiter, 10, 100, limits)
    clock.advance(1)
    spend(limiter, 10, 45, limits)
    refused = limiter.admit("sub", limits, 10)
    assert (refused.status, refused.remaining_quota, refused.retry_after) == (403, 5, 59)
    clock.advance(59)  # 09:00:00: a new hour, a new quota
    fresh = limiter.admit("sub", limits, 10)
    assert fresh.admitted and fresh.remaining_quota == 140


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("Hourly", datetime(2027, 3, 10, 14), datetime(2027, 3, 10, 15)),
        ("Daily", datetime(2027, 3, 10), datetime(2027, 3, 11)),
        ("Weekly", datetime(2027, 3, 8), datetime(2027, 3, 15)),  # Monday to Monday
        ("Monthly", datetime(2027, 3, 1), datetime(2027, 4, 1)),
        ("Yearly", datetime(2027, 1, 1), datetime(2028, 1, 1)),
    ],
)
def test_quota_periods_are_calendar_periods_in_utc(period: str, start: datetime, end: datetime) -> None:
    moment = datetime(2027, 3, 10, 14, 25, 7, tzinfo=UTC).timestamp()
    assert quota_period(moment, period) == (
        start.replace(tzinfo=UTC).timestamp(),
        end.replace(tzinfo=UTC).timestamp(),
    )


def test_december_rolls_over_into_the_next_year() -> None:
    _, end = quota_period(datetime(2027, 12, 31, 23, tzinfo=UTC).timestamp(), "Monthly")
    assert datetime.fromtimestamp(end, UTC) == datetime(2028, 1, 1, tzinfo=UTC)
