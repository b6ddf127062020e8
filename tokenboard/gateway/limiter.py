"""The ``llm-token-limit`` policy: a tokens-per-minute counter and a token quota per counter key.

Window semantics (chosen to match what APIM users observe):

- **Rate: a sliding 60-second window.** Tokens a call consumed count against its subscription
  for 60 seconds from the moment the call completed, then drop out. ``Retry-After`` is the whole
  number of seconds (rounded up, at least 1) until enough of them have dropped out for the
  refused call's prompt to fit. APIM's rate policies use a sliding window too, and a sliding
  window is the stricter choice: any 60 seconds, and so any fixed minute the dashboard bins by,
  holds at most the limit plus the overshoot described below.
- **estimate-prompt-tokens.** Before a call reaches the backend its prompt is counted offline
  and *reserved*; the call is refused (429) when tokens in the window + reserved tokens + its
  prompt exceed the limit. When the backend answers, the reservation is replaced by the call's
  real ``usage.total_tokens``; a failed call releases it and counts nothing.
- **Overshoot (documented APIM behaviour).** Completion tokens are unknown until the backend
  answers, so the window can exceed the limit by the completion tokens of the calls that were
  admitted but not yet finished when it filled: at most (calls in flight) x (their max_tokens).
- **Quota: fixed calendar periods in UTC** (``Hourly`` from the top of the hour, ``Daily`` from
  midnight, ``Weekly`` from Monday, ``Monthly`` from the 1st, ``Yearly`` from January 1st).
  Over the quota the answer is 403, checked before the rate (waiting a minute would not help).
  Counters live in memory: restarting the gateway starts them afresh.
- **A prompt that can never fit.** A prompt larger than the whole per-minute limit (or the
  whole quota) would be refused forever; its refusal carries ``retry_after=None``, so no
  ``Retry-After`` promises that waiting helps. APIM documents nothing for this case; OpenAI's own
  API answers such a request 429 "Request too large ... on tokens per min", without a wait.

The clock is injected (``clock() -> seconds since the epoch``) so tests move time by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Clock = Callable[[], float]
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    tokens_per_minute: int
    token_quota: int = 0  # 0: no quota
    quota_period: str = "Monthly"


@dataclass
class Reservation:
    """Prompt tokens held for a call between admission and the backend's answer."""

    counter_key: str
    tokens: int
    limits: Limits
    done: bool = False


@dataclass(frozen=True)
class Decision:
    status: int  # 200 admitted, 429 over the rate, 403 over the quota
    remaining_tokens: int
    remaining_quota: int | None  # None without a quota
    retry_after: int | None = 0  # whole seconds, on 429 and 403; None: waiting will not help
    reservation: Reservation | None = None

    @property
    def admitted(self) -> bool:
        return self.status == 200


@dataclass
class _Counter:
    events: deque[tuple[float, int]] = field(default_factory=deque)  # (completed at, tokens)
    in_window: int = 0
    reserved: int = 0
    quota_period_start: float = 0.0
    quota_used: int = 0


class TokenLimiter:
    """Counters per key; thread-safe, and cheap enough to call on the event loop."""

    def __init__(self, clock: Clock = time.time, window_seconds: float = WINDOW_SECONDS) -> None:
        self.clock = clock
        self.window = window_seconds
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()

    def admit(self, counter_key: str, limits: Limits, prompt_tokens: int) -> Decision:
        """Reserve ``prompt_tokens`` for a call, or refuse it with 403 (quota) or 429 (rate)."""
        with self._lock:
            now = self.clock()
            counter = self._current(counter_key, limits, now)
            if limits.token_quota and prompt_tokens > limits.token_quota:
                return self._decision(counter, limits, 403, retry_after=None)
            if prompt_tokens > limits.tokens_per_minute:
                return self._decision(counter, limits, 429, retry_after=None)
            if (
                limits.token_quota
                and counter.quota_used + counter.reserved + prompt_tokens > limits.token_quota
            ):
                _, end = quota_period(now, limits.quota_period)
                return self._decision(counter, limits, 403, retry_after=_whole_seconds(end - now))
            if counter.in_window + counter.reserved + prompt_tokens > limits.tokens_per_minute:
                wait = self._seconds_until_fits(counter, limits, prompt_tokens, now)
                return self._decision(counter, limits, 429, retry_after=wait)
            counter.reserved += prompt_tokens
            reservation = Reservation(counter_key, prompt_tokens, limits)
            return self._decision(counter, limits, 200, reservation=reservation)

    def commit(self, reservation: Reservation, total_tokens: int) -> Decision:
        """Replace the reservation by what the call really consumed; returns what is left."""
        with self._lock:
            now = self.clock()
            counter = self._release(reservation, now)
            if total_tokens > 0:
                counter.events.append((now, total_tokens))
                counter.in_window += total_tokens
                counter.quota_used += total_tokens
            return self._decision(counter, reservation.limits, 200)

    def release(self, reservation: Reservation) -> Decision:
        """The call failed before consuming anything: give its reserved tokens back."""
        with self._lock:
            counter = self._release(reservation, self.clock())
            return self._decision(counter, reservation.limits, 200)

    def state(self, counter_key: str, limits: Limits) -> Decision:
        """What is left for a key, without reserving anything (for headers on refused input)."""
        with self._lock:
            counter = self._current(counter_key, limits, self.clock())
            return self._decision(counter, limits, 200)

    # --- internals ---------------------------------------------------------------------

    def _current(self, counter_key: str, limits: Limits, now: float) -> _Counter:
        counter = self._counters.setdefault(counter_key, _Counter())
        cutoff = now - self.window
        while counter.events and counter.events[0][0] <= cutoff:
            counter.in_window -= counter.events.popleft()[1]
        if limits.token_quota:
            start, _ = quota_period(now, limits.quota_period)
            if start != counter.quota_period_start:
                counter.quota_period_start, counter.quota_used = start, 0
        return counter

    def _release(self, reservation: Reservation, now: float) -> _Counter:
        counter = self._current(reservation.counter_key, reservation.limits, now)
        if not reservation.done:
            reservation.done = True
            counter.reserved -= reservation.tokens
        return counter

    def _seconds_until_fits(self, counter: _Counter, limits: Limits, prompt: int, now: float) -> int:
        excess = counter.in_window + counter.reserved + prompt - limits.tokens_per_minute
        freed = 0
        for completed_at, tokens in counter.events:
            freed += tokens
            if freed >= excess:
                return _whole_seconds(completed_at + self.window - now)
        return _whole_seconds(self.window)  # only calls in flight are in the way

    def _decision(
        self,
        counter: _Counter,
        limits: Limits,
        status: int,
        retry_after: int | None = 0,
        reservation: Reservation | None = None,
    ) -> Decision:
        used = counter.in_window + counter.reserved
        quota_left = (
            max(0, limits.token_quota - counter.quota_used - counter.reserved) if limits.token_quota else None
        )
        return Decision(
            status=status,
            remaining_tokens=max(0, limits.tokens_per_minute - used),
            remaining_quota=quota_left,
            retry_after=retry_after,
            reservation=reservation,
        )


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


def quota_period(now: float, period: str) -> tuple[float, float]:
    """Start and end (epoch seconds) of the calendar period in UTC that holds ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "Hourly":
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif period == "Daily":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif period == "Weekly":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=moment.weekday())
        end = start + timedelta(days=7)
    elif period == "Monthly":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    elif period == "Yearly":
        start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1)
    else:
        raise ValueError(f"unknown token-quota-period {period!r}")
    return start.timestamp(), end.timestamp()
