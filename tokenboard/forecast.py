"""How a period will end: what is spent so far, a forecast to the period's end, and when a limit
is reached.

Spending comes in bins (days for a monthly budget, hours for a daily quota). A future bin is
forecast as the mean of the recent complete bins at the same place in the cycle: the same
weekday (or the same hour of the week), so quiet weekends stay quiet and Monday mornings stay
busy. A place the history has not seen yet takes the mean of all history bins; with no complete
bin at all, the current bin's pace so far is carried forward. The bin in progress is expected to
reach its usual amount: what is still missing of it is spread over the rest of the bin, and
nothing when it is already past it.

Within a bin spending is taken as even, so a crossing is placed by linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class Cadence:
    """Bins of ``step``; ``season`` bins make one cycle; the pattern comes from ``window`` bins."""

    step: timedelta
    season: int
    window: int


DAYS = Cadence(timedelta(days=1), season=7, window=28)  # weekdays, from the last 4 weeks
HOURS = Cadence(timedelta(hours=1), season=168, window=672)  # hours of the week, last 4 weeks
MINUTES = Cadence(timedelta(minutes=1), season=1, window=15)  # the pace of the last 15 minutes


@dataclass(frozen=True)
class Outlook:
    """One period of one subscription: spent, forecast, and when ``limit`` is reached."""

    start: datetime
    end: datetime
    now: datetime
    limit: float | None
    spent: float  # within the period, up to now
    actual: pd.Series  # cumulative spend at instants from the period start to now
    forecast: pd.Series  # cumulative forecast at instants from now to the period end
    crossing: datetime | None  # when the cumulative spend reaches the limit (past or forecast)
    step: timedelta = timedelta(days=1)  # the bins it was forecast in

    @property
    def projected(self) -> float:
        """The forecast total at the end of the period."""
        return float(self.forecast.iloc[-1]) if len(self.forecast) else self.spent

    @property
    def crossed(self) -> bool:
        """True when the limit is already reached."""
        return self.crossing is not None and self.crossing <= self.now


def outlook(
    amounts: pd.Series,
    start: datetime,
    end: datetime,
    now: datetime,
    cadence: Cadence,
    limit: float | None = None,
) -> Outlook:
    """The period ``[start, end)`` as of ``now`` from ``amounts`` per bin (index: UTC bin starts
    on the cadence's grid; bins before ``start`` are history, the bin holding ``now`` is partial).
    """
    step = pd.Timedelta(cadence.step)
    now_ts, start_ts, end_ts = (pd.Timestamp(t).tz_convert(UTC) for t in (now, start, end))
    current = _floor(now_ts, step)
    amounts = _on_grid(amounts, step)
    profile, pace = _pattern(amounts, current, now_ts, step, cadence)

    # What happened: per bin within the period, up to now.
    bins = pd.date_range(_floor(start_ts, step), current, freq=step)
    done = amounts.reindex(bins, fill_value=0.0)
    done = done[bins > start_ts - step]
    segments = [
        (max(b, start_ts), min(b + step, now_ts), float(v))
        for b, v in zip(done.index, done.to_numpy(), strict=True)
    ]
    segments = [s for s in segments if s[1] > s[0] or s[2]]
    spent = float(sum(v for _, _, v in segments))

    # What is expected: the rest of the current bin, then whole bins to the end.
    coming: list[tuple[pd.Timestamp, pd.Timestamp, float]] = []
    in_current = float(amounts.get(current, 0.0))
    if pace is None:
        rest = max(0.0, profile[_slot(current, step, cadence.season)] - in_current)
    else:
        rest = pace * _left(now_ts, current, step)
    if now_ts < current + step:
        coming.append((now_ts, min(current + step, end_ts), rest * _share(now_ts, current, step, end_ts)))
    b = current + step
    while b < end_ts:
        usual = pace if pace is not None else profile[_slot(b, step, cadence.season)]
        coming.append((b, min(b + step, end_ts), usual * min(1.0, (end_ts - b) / step)))
        b += step

    actual = _cumulative(start_ts, 0.0, segments)
    forecast = _cumulative(now_ts, spent, coming)
    crossing = None
    if limit is not None:
        crossing = _crossing(0.0, segments, limit)
        if crossing is None:
            crossing = _crossing(spent, coming, limit)
    return Outlook(
        start=start_ts.to_pydatetime(),
        end=end_ts.to_pydatetime(),
        now=now_ts.to_pydatetime(),
        limit=limit,
        spent=spent,
        actual=actual,
        forecast=forecast,
        crossing=crossing,
        step=cadence.step,
    )


def _floor(instant: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    return EPOCH + ((instant - EPOCH) // step) * step


def _slot(instant: pd.Timestamp, step: pd.Timedelta, season: int) -> int:
    return int(((instant - EPOCH) // step) % season)


def _on_grid(amounts: pd.Series, step: pd.Timedelta) -> pd.Series:
    """Amounts per bin start (UTC), bins given twice added up."""
    if amounts.empty:
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz=UTC))
    index = pd.DatetimeIndex(pd.to_datetime(amounts.index, utc=True))
    floored = pd.DatetimeIndex([_floor(t, step) for t in index])
    return pd.Series(amounts.to_numpy(dtype="float64"), index=floored).groupby(level=0).sum()


def _pattern(
    amounts: pd.Series, current: pd.Timestamp, now: pd.Timestamp, step: pd.Timedelta, cadence: Cadence
) -> tuple[dict[int, float], float | None]:
    """The usual amount per slot of the cycle, from complete bins; or, with none, the pace so far."""
    seen = amounts[amounts > 0].index
    first = max(seen.min(), current - cadence.window * step) if len(seen) else current
    history = pd.date_range(first, current - step, freq=step) if first < current else pd.DatetimeIndex([])
    values = amounts.reindex(history, fill_value=0.0)
    if values.empty:
        elapsed = (now - current) / step
        pace = float(amounts.get(current, 0.0)) / elapsed if elapsed > 0 else 0.0
        return {}, pace
    slots = np.array([_slot(t, step, cadence.season) for t in values.index])
    mean = float(values.mean())
    profile = {slot: mean for slot in range(cadence.season)}
    for slot in set(slots.tolist()):
        profile[slot] = float(values.to_numpy()[slots == slot].mean())
    return profile, None


def _left(now: pd.Timestamp, current: pd.Timestamp, step: pd.Timedelta) -> float:
    return float((current + step - now) / step)


def _share(now: pd.Timestamp, current: pd.Timestamp, step: pd.Timedelta, end: pd.Timestamp) -> float:
    """Of the rest of the current bin, the part before the period ends."""
    left = current + step - now
    if left <= pd.Timedelta(0):
        return 0.0
    return float(min(1.0, (end - now) / left))


def _cumulative(
    origin: pd.Timestamp, base: float, segments: list[tuple[pd.Timestamp, pd.Timestamp, float]]
) -> pd.Series:
    """Cumulative totals at ``origin`` and at the end of each segment."""
    times, values = [origin], [base]
    total = base
    for _, stop, value in segments:
        total += value
        times.append(stop)
        values.append(total)
    series = pd.Series(values, index=pd.DatetimeIndex(times))
    return series[~series.index.duplicated(keep="last")]


def _crossing(
    base: float, segments: list[tuple[pd.Timestamp, pd.Timestamp, float]], limit: float
) -> datetime | None:
    """When the running total from ``base`` first reaches ``limit`` (even spending within a segment)."""
    total = base
    if total >= limit and segments:
        return segments[0][0].to_pydatetime()
    for begin, stop, value in segments:
        if value > 0 and total + value >= limit:
            at = begin + (stop - begin) * ((limit - total) / value)
            return pd.Timestamp(at).to_pydatetime()
        total += value
    return None
