"""Time ranges the sidebar offers: presets, the previous period, the bin, times in links.

The bins themselves, on the local calendar of the display zone, are ``tokenboard/localtime.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tokenboard import kql, localtime

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CUSTOM = "custom"
AUTO = "auto"
# Bins a user can pick; day, week (from Monday) and month start at local midnight.
GRANULARITIES = ("1m", "5m", "15m", "1h", "6h", "1d", "1w", localtime.MONTH)
GRANULARITY_NAMES = {"1w": "1 week", localtime.MONTH: "1 month"}
# A chart with more points than this is unreadable and slow: fall back to auto.
MAX_BINS = 1500
# Times a link or a custom range may name: Application Insights keeps at most a few years.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


@dataclass(frozen=True)
class TimeRange:
    """A half-open range [start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> TimeRange:
        """The period of the same length just before this one (for metric deltas)."""
        return TimeRange(self.start - self.length, self.start)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; unknown names fall back to UTC rather than failing a page."""
    try:
        return localtime.zone(name)
    except ValueError:
        return ZoneInfo("UTC")


def live_end(now: datetime, step_seconds: int = 60) -> datetime:
    """The end of a live range: the next multiple of ``step_seconds`` since the epoch (UTC).

    Every page and tab opened in the same step asks the very same queries, so they share
    cached results; the range still reaches past ``now``, so nothing already ingested is
    left out.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=step_seconds)
    steps, rest = divmod(now.astimezone(UTC) - epoch, step)
    return epoch + (steps + (1 if rest else 0)) * step


def preset_range(preset: str, end: datetime) -> TimeRange:
    if preset not in PRESETS:
        raise ValueError(f"unknown range '{preset}' (use {', '.join(PRESETS)} or custom)")
    end = end.astimezone(UTC)
    return TimeRange(end - PRESETS[preset], end)


def parse_instant(text: str, tz: str = "UTC") -> datetime | None:
    """An ISO 8601 time from a URL (``2025-06-02T12:00:00Z``); naive means the display zone.

    None for anything else, and for times outside ``EARLIEST`` .. ``LATEST`` (a range there
    could not even be computed: ``0001-01-01`` minus 30 days does not exist)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(
            text.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in text else text
        )
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone(tz))
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return value if EARLIEST <= value < LATEST else None


def format_instant(value: datetime) -> str:
    """The URL / export form of a time: ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bin_unit(time_range: TimeRange, granularity: str = AUTO) -> str:
    """The chart bin: chosen by the user unless it would give more than MAX_BINS points."""
    if (
        granularity in GRANULARITIES
        and localtime.count(time_range.start, time_range.end, granularity) <= MAX_BINS
    ):
        return granularity
    return auto_unit(time_range)


def auto_unit(time_range: TimeRange) -> str:
    """At most about 200 points, in the same steps on every backend; weeks or months for years."""
    unit = localtime.unit_of(kql.auto_bin(time_range.start, time_range.end))
    for candidate in (unit, "1w"):
        if localtime.count(time_range.start, time_range.end, candidate) <= MAX_BINS:
            return candidate
    return localtime.MONTH


def describe_unit(unit: str) -> str:
    return GRANULARITY_NAMES.get(unit, unit)


def range_label(time_range: TimeRange, tz: str) -> str:
    """``2025-06-01 12:00 → 2025-06-02 12:00 (UTC)`` in the display zone."""
    z = zone(tz)
    fmt = "%Y-%m-%d %H:%M"
    return f"{time_range.start.astimezone(z):{fmt}} → {time_range.end.astimezone(z):{fmt}} ({tz})"
