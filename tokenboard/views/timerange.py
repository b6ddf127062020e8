"""Time ranges the sidebar offers: presets, the previous period, bins, the ingesting edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokenboard import kql

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CUSTOM = "custom"
AUTO = "auto"
GRANULARITIES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
}
# A chart with more points than this is unreadable and slow: fall back to auto.
MAX_BINS = 1500
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
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def live_end(now: datetime) -> datetime:
    """The end of a live range: the next whole minute, so a minute's reruns share one cache key."""
    now = now.astimezone(UTC)
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


def preset_range(preset: str, end: datetime) -> TimeRange:
    if preset not in PRESETS:
        raise ValueError(f"unknown range '{preset}' (use {', '.join(PRESETS)} or custom)")
    end = end.astimezone(UTC)
    return TimeRange(end - PRESETS[preset], end)


def parse_instant(text: str, tz: str = "UTC") -> datetime | None:
    """An ISO 8601 time from a URL (``2025-06-02T12:00:00Z``); naive means the display zone."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(
            text.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in text else text
        )
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """The URL / export form of a time: ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bin_size(time_range: TimeRange, granularity: str = AUTO) -> timedelta:
    """The chart bin: chosen by the user unless it would give more than MAX_BINS points."""
    chosen = GRANULARITIES.get(granularity)
    if chosen is None or time_range.length / chosen > MAX_BINS:
        return kql.auto_bin(time_range.start, time_range.end)
    return chosen


def describe_bin(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    for unit, width in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % width == 0:
            return f"{seconds // width}{unit}"
    return f"{seconds}s"


def ingesting_since(now: datetime, ingestion_delay_seconds: int) -> datetime:
    """Data newer than this may still be arriving (App Insights ingests with a delay)."""
    return now.astimezone(UTC) - timedelta(seconds=ingestion_delay_seconds)


def first_incomplete_bin(
    time_range: TimeRange, size: timedelta, now: datetime, ingestion_delay_seconds: int
) -> datetime | None:
    """Start of the first bin that is not whole, or None if every bin is complete.

    A bin is incomplete when data for part of it may still be arriving (it ends after the
    ingesting edge) or when the range ends inside it. Bins are aligned to multiples of
    ``size`` since the epoch, as KQL's ``bin()`` does.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    edge = min(ingesting_since(now, ingestion_delay_seconds), time_range.end)
    if edge == time_range.end and (time_range.end - epoch) % size == timedelta(0):
        return None  # everything has arrived and the range ends on a bin boundary
    start = epoch + ((edge - epoch) // size) * size
    return max(start, epoch + ((time_range.start - epoch) // size) * size)


def range_label(time_range: TimeRange, tz: str) -> str:
    """``2025-06-01 12:00 → 2025-06-02 12:00 (UTC)`` in the display zone."""
    z = zone(tz)
    fmt = "%Y-%m-%d %H:%M"
    return f"{time_range.start.astimezone(z):{fmt}} → {time_range.end.astimezone(z):{fmt}} ({tz})"


def human_length(length: timedelta) -> str:
    hours = length.total_seconds() / 3600
    if hours < 48:
        return f"{hours:g} h"
    return f"{hours / 24:g} d"
