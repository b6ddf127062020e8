"""Time bins on the clock and calendar of a time zone, the same on every backend.

A day, week or month starts at local midnight in the chosen zone, across DST changes and in
zones half an hour off UTC (Asia/Kolkata); hours and finer bins follow the zone's clock too.
KQL's ``bin()`` only cuts bins from the Unix epoch in UTC, and duckdb-kql has neither
``bin_at()`` nor ``datetime_utc_to_local()``, so the range is cut where the zone's UTC offset
changes: within each :class:`Piece` the local bins are evenly spaced in UTC, which the query
files reach with ``bin(timestamp - bin_phase, bin_size) + bin_phase`` (the same text on Azure
and locally). Months are uneven, so they are queried as local days. :meth:`Bins.regroup` then
adds each piece's rows up into the local bins, whose UTC starts are :attr:`Bins.edges`.

Bins of an hour or less are spans of elapsed time on the zone's clock (the hour repeated when
DST ends is two bins); longer bins follow the wall clock (that night's 6-hour bin is 7 hours
long, its day 25 hours).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import pandas as pd

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MONDAY = timedelta(days=4)  # 1970-01-01 was a Thursday; weeks start on Monday (ISO 8601)
HOUR = timedelta(hours=1)
# Units a bin can have: whole fractions of a day, a week, a calendar month.
UNITS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": HOUR,
    "3h": timedelta(hours=3),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "1d": DAY,
    "1w": WEEK,
}
MONTH = "1mo"
LOCAL_BIN = "local_bin"  # the column ``Bins.place`` adds: the UTC start of a row's local bin
# A whole number of seconds apart: UTC offsets of every zone in the tz database are.
_RESOLUTION = timedelta(seconds=1)


def is_zone(name: str) -> bool:
    """True for an IANA time zone name this machine knows (``Asia/Kolkata``, ``UTC``)."""
    return name in _zones()


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; unknown names are a ``ValueError`` naming the zone."""
    if not is_zone(name):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unreadable
        raise ValueError(f"unknown time zone '{name}'") from exc


def local_start(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local wall-clock time ``wall`` (naive) begins.

    A time that occurs twice (DST ends) is its first occurrence; one that never occurs (DST
    starts at midnight in some zones) is the moment the clock jumps past it.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class Piece:
    """A part of the range with one UTC offset, and the UTC grid of its local bins."""

    start: datetime
    end: datetime
    size: timedelta
    phase: timedelta

    def params(self) -> dict[str, Any]:
        """The query parameters for this piece (range and bin grid)."""
        return {
            "start_time": self.start,
            "end_time": self.end,
            "bin_size": self.size,
            "bin_phase": self.phase,
        }


@dataclass(frozen=True)
class Bins:
    """The local bins that cover ``[start, end)`` in zone ``tz``, and how to query them."""

    start: datetime
    end: datetime
    tz: str
    unit: str
    edges: tuple[datetime, ...]  # UTC start of every bin, then the end of the last one
    pieces: tuple[Piece, ...]

    @functools.cached_property
    def starts(self) -> pd.DatetimeIndex:
        """The UTC start of every bin, oldest first."""
        return pd.DatetimeIndex(list(self.edges[:-1])).as_unit("ns")

    @property
    def count(self) -> int:
        return len(self.edges) - 1

    @property
    def head_partial(self) -> bool:
        """True when the range starts inside its first bin (that bin holds only part of its time)."""
        return self.edges[0] < self.start

    def incomplete_from(self, now: datetime, ingestion_delay_seconds: int) -> datetime | None:
        """Start of the first bin at the end that is not whole: still being ingested, or cut by the
        end of the range. None when every bin at the end is complete."""
        edge = min(now.astimezone(UTC) - timedelta(seconds=ingestion_delay_seconds), self.end)
        if edge == self.end and self.edges[-1] == self.end:
            return None
        index = max(0, self._index(edge))
        return self.edges[index]

    def _index(self, instant: datetime) -> int:
        """Index of the bin holding ``instant``."""
        position = int(self.starts.searchsorted(pd.Timestamp(instant), side="right")) - 1
        return min(position, self.count - 1)

    def place(self, parts: Sequence[tuple[Piece, pd.DataFrame]], column: str = "timestamp") -> pd.DataFrame:
        """Every piece's rows together, each with the UTC start of its local bin in ``LOCAL_BIN``.

        A piece's first bin can start before the piece (the offset changed inside that bin): its
        rows lie after the piece start, so ``column`` is moved up to it, inside the right bin.
        """
        frames = [frame for _, frame in parts if len(frame)]
        if not frames:
            empty = parts[0][1].iloc[0:0].copy() if parts else pd.DataFrame({column: []})
            return empty.assign(**{LOCAL_BIN: pd.Series(dtype="datetime64[ns, UTC]")})
        rows = []
        for piece, frame in parts:
            if len(frame):
                start = pd.Timestamp(piece.start)
                rows.append(frame.assign(**{column: frame[column].where(frame[column] >= start, start)}))
        data = pd.concat(rows, ignore_index=True)
        position = self.starts.searchsorted(pd.DatetimeIndex(data[column]), side="right") - 1
        return data.assign(**{LOCAL_BIN: self.starts[position.clip(0, None)]})

    def regroup(
        self,
        parts: Sequence[tuple[Piece, pd.DataFrame]],
        column: str = "timestamp",
        maxima: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Each piece's rows added up into the local bins (``column`` becomes the bin's UTC start).

        Text columns are the keys; numeric columns are summed, those in ``maxima`` take the max.
        """
        placed = self.place(parts, column)
        columns = [c for c in placed.columns if c != LOCAL_BIN]
        data = placed.drop(columns=column).rename(columns={LOCAL_BIN: column})
        if data.empty:
            return data[columns]
        numeric = [c for c in data.columns if c != column and pd.api.types.is_numeric_dtype(data[c])]
        keys = [c for c in data.columns if c != column and c not in numeric]
        how = {c: ("max" if c in maxima else "sum") for c in numeric}
        grouped = data.groupby([column, *keys], as_index=False, sort=True, dropna=False).agg(how)
        return grouped[columns].reset_index(drop=True)


def plan(start: datetime, end: datetime, tz: str, unit: str) -> Bins:
    """The local bins of ``unit`` (a key of ``UNITS`` or ``MONTH``) covering ``[start, end)``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError("the range must end after it starts")
    if unit != MONTH and unit not in UNITS:
        raise ValueError(f"unknown bin '{unit}' (use {', '.join([*UNITS, MONTH])})")
    z = zone(tz)
    spans = _constant_offsets(start, end, z)
    pieces = _merge([_piece(s, e, offset, unit) for s, e, offset in spans])
    if unit != MONTH and UNITS[unit] <= HOUR:
        edges = _elapsed_edges(pieces, end)
    else:
        edges = _wall_edges(start, end, z, unit)
    return Bins(start, end, tz, unit, tuple(edges), tuple(pieces))


def next_start(start: datetime, tz: str, unit: str) -> datetime:
    """The UTC start of the local bin after the one that starts at ``start``."""
    z = zone(tz)
    return local_start(_wall_next(start.astimezone(z).replace(tzinfo=None), unit), z)


def count(start: datetime, end: datetime, unit: str) -> float:
    """About how many bins of ``unit`` a range holds (to keep charts readable)."""
    size = DAY * 30.44 if unit == MONTH else UNITS[unit]
    return (end - start) / size


def unit_of(size: timedelta) -> str:
    """The unit name of a fixed bin size (``timedelta(hours=1)`` -> ``1h``)."""
    for name, width in UNITS.items():
        if width == size:
            return name
    raise ValueError(f"no bin unit of {size}")


# --- planning ---------------------------------------------------------------------------------


def _offset(instant: datetime, z: ZoneInfo) -> timedelta:
    offset = instant.astimezone(z).utcoffset()
    assert offset is not None
    return offset


def _constant_offsets(
    start: datetime, end: datetime, z: ZoneInfo
) -> list[tuple[datetime, datetime, timedelta]]:
    """``[start, end)`` cut where the zone's UTC offset changes: (start, end, offset) spans."""
    spans = []
    here, offset = start, _offset(start, z)
    probe = start
    while probe < end:
        probe = min(probe + DAY / 2, end)
        seen = _offset(probe if probe < end else end - _RESOLUTION, z)
        if seen == offset:
            continue
        low, high = here, probe  # offset at low is `offset`, at high it differs
        while high - low > _RESOLUTION:
            middle = low + (high - low) / 2
            middle = middle.replace(microsecond=0)
            if middle <= low:
                break
            if _offset(middle, z) == offset:
                low = middle
            else:
                high = middle
        spans.append((here, high, offset))
        here, offset = high, _offset(high, z)
        probe = here
    spans.append((here, end, offset))
    return spans


def _piece(start: datetime, end: datetime, offset: timedelta, unit: str) -> Piece:
    """The UTC grid on which this span's local bins start (days for months; weeks from Monday)."""
    if unit == MONTH:
        size, origin = DAY, timedelta(0)
    elif unit == "1w":
        size, origin = WEEK, MONDAY
    else:
        size, origin = UNITS[unit], timedelta(0)
    return Piece(start, end, size, (origin - offset) % size)


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Neighbours on the same grid are one piece (one query)."""
    merged = [pieces[0]]
    for piece in pieces[1:]:
        last = merged[-1]
        if (last.size, last.phase) == (piece.size, piece.phase):
            merged[-1] = Piece(last.start, piece.end, last.size, last.phase)
        else:
            merged.append(piece)
    return merged


def _floor(instant: datetime, size: timedelta, phase: timedelta) -> datetime:
    return EPOCH + phase + ((instant - EPOCH - phase) // size) * size


def _elapsed_edges(pieces: list[Piece], end: datetime) -> list[datetime]:
    """Bins of an hour or less: every grid point of every piece (a change of offset by less
    than the bin, as on Lord Howe Island, starts a short bin)."""
    edges: set[datetime] = set()
    for piece in pieces:
        point = _floor(piece.start, piece.size, piece.phase)
        edges.add(max(point, piece.start) if edges else point)
        point += piece.size
        while point < piece.end:
            edges.add(point)
            point += piece.size
    last = pieces[-1]
    edges.add(_floor(end - _RESOLUTION, last.size, last.phase) + last.size)
    return sorted(edges)


def _wall_edges(start: datetime, end: datetime, z: ZoneInfo, unit: str) -> list[datetime]:
    """Bins longer than an hour: starts on the local wall clock (midnight, Monday, the 1st)."""
    wall = _wall_floor(start.astimezone(z).replace(tzinfo=None), unit)
    edges = [local_start(wall, z)]
    while edges[-1] < end:
        wall = _wall_next(wall, unit)
        instant = local_start(wall, z)
        if instant > edges[-1]:
            edges.append(instant)
    return edges


def _wall_floor(wall: datetime, unit: str) -> datetime:
    midnight = datetime.combine(wall.date(), datetime.min.time())
    if unit == MONTH:
        return midnight.replace(day=1)
    if unit == "1w":
        return midnight - timedelta(days=wall.weekday())
    size = UNITS[unit]
    return midnight + ((wall - midnight) // size) * size


def _wall_next(wall: datetime, unit: str) -> datetime:
    if unit == MONTH:
        first = date(wall.year + wall.month // 12, wall.month % 12 + 1, 1)
        return datetime.combine(first, datetime.min.time())
    return wall + UNITS[unit]
