"""Roll-ups of customMetrics that the local backend reads in place of raw rows.

A month of a busy gateway is about 10M metric rows, and most queries only add up
``valueSum`` and ``valueCount`` per hour or per minute. Three roll-ups hold what they
need, one Parquet file per store segment (``<data_dir>/customMetrics/rollups/``), with the
prelude's dimension columns as the backend computes them (once per distinct
customDimensions, _tables.kql itself):

- ``hour``: per hour, metric name, subscription, API and model. Every dimension the
  queries know survives, so any filter works; about six times fewer rows than
  per-minute metrics.
- ``quarter``: the same per 15 minutes, for bins on the local grid of a time zone whose
  offset is not whole hours (Asia/Kolkata +05:30, Asia/Kathmandu +05:45): every zone's
  offset is a multiple of 15 minutes, so its days and hours start on a quarter.
- ``minute``: Total Tokens (the configured ``total_metric``) per minute and subscription:
  what the per-minute headroom queries count, a sixth of the rows. throttled_minutes
  reads it only in the minutes with a limit hit (a semi-join on GatewayRequests), as it
  joins admitted tokens to those and no others. Over segments that share no minute it has
  one row per minute and subscription, and the queries' per-minute ``summarize`` runs as a
  projection (:func:`per_minute_sql`).
- ``peak``: of those minutes, each hour's busiest per subscription (the earliest of equals):
  what the headroom chart needs when its bins are whole hours, one row an hour instead of
  up to sixty. One segment's sum of a minute is the minute's total only if no other
  segment has rows in it, so ``peak`` is read only when no minute spans two segments
  (seeded and imported stores; else ``minute`` answers).

A query reads a roll-up only if :data:`USES` lists it: its file uses TokenMetrics only
through the range filter, filters on dimensions and name, ``sum``/``sumif`` of
``valueSum``/``valueCount`` (``peak``: ``max`` of per-minute sums) and datetime bins
whose width and phase (``bin_phase``: local midnight) are whole multiples of the grain,
so a bucket's rows all fall in one bin (``startofday`` too: every grain divides a day).
tests/test_rollups.py runs every query file both ways on odd data and compares. Whole
buckets inside the range come from the roll-up; the partial buckets at either edge come
from raw rows, so any start and end give the per-row answer. The KQL that runs is
unchanged: the backend shadows ``TokenMetrics`` for that one query with a view over the
roll-up (:func:`view_sql`).

Segments are immutable, so a segment's roll-up never goes stale: its file name holds the
segment's name, row count and time span as the manifest records them (:func:`file_name`).
The backend writes it the first time a query needs it (temp file, then rename: readers
see all or nothing; two readers writing the same one write the same sums), and the store
deletes it with its segment, when it sets the segment aside, and when it is cleared
(``Store.rollup_dir``). A re-sent batch adds no segment, so no roll-up either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tokenboard.backends.bins import floor_sql
from tokenboard.store import ROLLUP_OF, Segment

FORMAT = 1  # bump when a roll-up's columns or meaning change: older files are then ignored
# Below this many raw rows under a range's whole buckets, raw rows answer as quickly: a
# roll-up adds files to open, a union, and raw row groups at the edges. On the 10M-row
# store a 24 h range (two daily segments, about 670K rows) takes a third of the CPU time
# on ``hour`` or ``quarter`` that it takes on raw rows (bench/README.md).
MIN_ROWS = dict.fromkeys(("hour", "quarter", "minute", "peak"), 200_000)
# Columns every roll-up keeps; the query-time view adds the prelude's dimension columns.
MEASURES = ("timestamp", "name", "valueSum", "valueCount")


@dataclass(frozen=True)
class Rollup:
    name: str
    grain: timedelta
    keys: tuple[str, ...] | None  # the prelude's dimension columns it keeps (None: all)
    total_only: bool = False  # only rows of the configured total_metric
    peak: bool = False  # per bucket, only the busiest minute (per name and keys)

    def kept(self, columns: Sequence[str]) -> list[str]:
        """Of the prelude's dimension columns, those this roll-up keeps."""
        return list(columns) if self.keys is None else [c for c in columns if c in self.keys]

    @property
    def micros(self) -> int:
        return self.grain // timedelta(microseconds=1)


HOUR = Rollup("hour", timedelta(hours=1), keys=None)
QUARTER = Rollup("quarter", timedelta(minutes=15), keys=None)
MINUTE = Rollup("minute", timedelta(minutes=1), keys=("subscription",), total_only=True)
PEAK = Rollup("peak", timedelta(hours=1), keys=("subscription",), total_only=True, peak=True)
ROLLUPS = (HOUR, QUARTER, MINUTE, PEAK)
# Written ahead (after seeding): what UTC and whole-hour zones read. ``quarter`` is written
# the first time a query on a quarter-hour grid needs it.
AHEAD = (HOUR, MINUTE, PEAK)


@dataclass(frozen=True)
class Use:
    """A query file that may read ``rollup``, and when."""

    rollup: Rollup
    # Timespan parameters (bin widths and phases) that must be whole multiples of the grain.
    bins: tuple[str, ...] = ()
    unfiltered: tuple[str, ...] = ()  # list parameters that must be empty (the roll-up lacks them)
    # Only minutes in which the subscription got a limit hit (HIT_CODES in GatewayRequests):
    # for a query that joins tokens to those minutes and to no others.
    hit_minutes: bool = False


HIT_CODES = ("429", "403")  # what throttled_minutes.kql counts as a limit hit
# The queries reading MINUTE keep `name == total_metric` rows only, as it holds no others.
_FOLDED = ("apis", "models")
_BIN = ("bin_size", "bin_phase")
_FINE = (Use(HOUR, bins=_BIN), Use(QUARTER, bins=_BIN))  # local bins on a whole-hour grid, else a quarter's
_DAYS = (Use(HOUR, bins=("bin_phase",)), Use(QUARTER, bins=("bin_phase",)))  # startofday(t - phase) + phase
# By query file, the roll-ups it may read, the first that applies.
USES: dict[str, tuple[Use, ...]] = {
    "call_counts": (Use(HOUR),),
    "cost_basis": _FINE,  # its startofday(timestamp) cut is whole hours too
    "daily_usage": _DAYS,
    "dimension_values": (Use(HOUR),),
    # Per-minute sums per subscription, their percentiles and a what-if: the minute roll-up's rows.
    "limit_plan": (Use(MINUTE, unfiltered=_FOLDED),),
    "monthly_usage": _DAYS,
    "peak_minute_tokens": (Use(MINUTE, unfiltered=_FOLDED),),
    # The highest per-minute sum per bin and subscription: an hour's busiest minute is enough.
    "peak_tokens_over_time": (
        Use(PEAK, bins=_BIN, unfiltered=_FOLDED),
        Use(MINUTE, bins=_BIN, unfiltered=_FOLDED),
    ),
    # It left-joins admitted tokens to the minutes with 429 / 403 answers: it needs no others.
    "throttled_minutes": (Use(MINUTE, unfiltered=_FOLDED, hit_minutes=True),),
    "tokens_over_time": _FINE,
    "top_consumers": (Use(HOUR),),
    "usage_pivot": (Use(HOUR),),
}
# Query files that never read a roll-up: they read only GatewayRequests / dependencies, or
# (data_coverage) the first timestamp itself, which a roll-up rounds down.
PER_ROW = frozenset(
    {"data_coverage", "limit_hit_causes", "limit_hits", "request_totals", "requests_over_time", "retry_calls"}
)


@dataclass(frozen=True)
class Plan:
    """One query's roll-up: whole buckets in [inner_start, inner_end), raw rows at the edges."""

    use: Use
    start: datetime  # the query's own range, naive UTC
    end: datetime
    inner_start: datetime
    inner_end: datetime
    # ``minute`` only: its segments share no minute, so the view holds one row per minute,
    # name and subscription (the edges summed per minute too), see :func:`per_minute_sql`.
    one_per_minute: bool = False

    @property
    def rollup(self) -> Rollup:
        return self.use.rollup


def plans(name: str, values: Mapping[str, Any]) -> list[Plan]:
    """The roll-ups a bound query may read, best first (none: it runs on raw rows)."""
    start, end = values.get("start_time"), values.get("end_time")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return []
    start, end = naive_utc(start), naive_utc(end)
    found = []
    for use in USES.get(name, ()):
        if any(values.get(p) for p in use.unfiltered):
            continue
        sizes = [values.get(p) for p in use.bins]
        if not all(isinstance(v, timedelta) and not v % use.rollup.grain for v in sizes):
            continue
        inner_start, inner_end = _ceil(start, use.rollup.grain), _floor(end, use.rollup.grain)
        if inner_start < inner_end:  # at least one whole bucket inside the range
            found.append(Plan(use, start, end, inner_start, inner_end))
    return found


def segments_for(plan: Plan, segments: Sequence[Segment]) -> list[Segment] | None:
    """The segments holding rows of the plan's whole buckets; None when the roll-up cannot
    answer from them (``peak`` over segments that share a minute) or too few rows to pay."""
    chosen = sorted(
        (
            s
            for s in segments
            if datetime.fromisoformat(s.max_ts) >= plan.inner_start
            and datetime.fromisoformat(s.min_ts) < plan.inner_end
        ),
        key=lambda s: s.min_ts,
    )
    if plan.rollup.peak and _share_a_minute(chosen):
        return None
    return chosen if sum(s.rows for s in chosen) >= MIN_ROWS[plan.rollup.name] else None


def settled(plan: Plan, segments: Sequence[Segment]) -> Plan:
    """The plan for reading the roll-ups of ``segments`` (:func:`segments_for`)."""
    if plan.rollup is MINUTE and not _share_a_minute(segments):
        return dataclasses.replace(plan, one_per_minute=True)
    return plan


def _share_a_minute(segments: Sequence[Segment]) -> bool:
    """Whether two of these segments (sorted by first row) have rows in one minute."""
    latest: datetime | None = None
    for s in segments:
        first = _floor(datetime.fromisoformat(s.min_ts), MINUTE.grain)
        if latest is not None and first <= latest:
            return True
        last = _floor(datetime.fromisoformat(s.max_ts), MINUTE.grain)
        latest = last if latest is None else max(latest, last)
    return False


def tag(rollup: Rollup, prelude: str) -> str:
    """What a roll-up file's content depends on: its format and the prelude (which holds the
    dimension and metric names)."""
    return hashlib.sha256(f"{FORMAT}\n{rollup.name}\n{prelude}".encode()).hexdigest()[:12]


def file_name(segment: Segment, rollup: Rollup, tag: str) -> str:
    """``<segment stem>@<roll-up>-<tag>-<rows, span>.parquet``: the store deletes it with the
    segment; a segment file put back under its name with other rows gets a roll-up of its own."""
    facts = hashlib.sha256(f"{segment.rows}\n{segment.min_ts}\n{segment.max_ts}".encode()).hexdigest()[:8]
    return f"{segment.file.removesuffix('.parquet')}{ROLLUP_OF}{rollup.name}-{tag}-{facts}.parquet"


def build_sql(rollup: Rollup, rows: str, columns: Sequence[str], target: str, total_metric: str) -> str:
    """COPY one segment's roll-up to ``target``.

    ``rows``: a relation with the raw columns and the prelude's dimension ``columns``.
    Snappy, not zstd: a roll-up is read far more often than written, and decodes faster.
    """
    keys = "".join(f", {_ident(c)}" for c in rollup.kept(columns))
    where = '"timestamp" IS NOT NULL'
    if rollup.total_only:
        where += f' AND "name" = {sql_string(total_metric)}'
    timestamp = '"timestamp"'
    sums = (
        f'SELECT {floor_sql(timestamp, (MINUTE if rollup.peak else rollup).micros)} AS "timestamp", '
        f'"name"{keys}, sum("valueSum") AS "valueSum", sum("valueCount")::BIGINT AS "valueCount" '
        f"FROM {rows} WHERE {where} GROUP BY ALL"
    )
    if rollup.peak:  # per bucket, the minute with the highest sum as the queries see it (NULL: 0)
        sums = (
            f"SELECT * FROM ({sums}) QUALIFY row_number() OVER (PARTITION BY "
            f'{floor_sql(timestamp, rollup.micros)}, "name"{keys} '
            'ORDER BY coalesce("valueSum", 0) DESC, "timestamp") = 1'
        )
    order = 'ORDER BY "name", "timestamp"'
    return f"COPY ({sums} {order}) TO {sql_string(target)} (FORMAT parquet, COMPRESSION snappy)"


def write(
    con: duckdb.DuckDBPyConnection,
    rollup: Rollup,
    rows: str,
    columns: Sequence[str],
    path: Path,
    total_metric: str,
) -> None:
    """Write one segment's roll-up to ``path`` through a temp file: readers see all of it or none."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        with con.cursor() as cursor:
            cursor.execute(build_sql(rollup, rows, columns, str(tmp), total_metric))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def view_sql(plan: Plan, rolled: str, raw: str, columns: Sequence[str], requests: str) -> str:
    """TokenMetrics for one query: ``rolled`` inside the whole buckets, ``raw`` at the edges.

    ``rolled`` (the roll-up files), ``raw`` (the segments with the prelude's columns) and
    ``requests`` (GatewayRequests) are relations; ``columns`` are the prelude's dimension
    columns. Those the roll-up folded away are NULL (the plan only allows queries that do
    not look at them). With ``plan.one_per_minute`` the edges' raw rows are summed per
    minute as the roll-up is, each sum at the first of its rows (inside the range).
    """
    kept = plan.rollup.kept(columns)
    select = ", ".join(
        [f"r.{_ident(c)}" for c in MEASURES]
        + [f"r.{_ident(c)}" if c in kept else f"NULL::VARCHAR AS {_ident(c)}" for c in columns]
    )
    ranges = [(plan.inner_start, plan.inner_end, rolled)]
    if plan.start < plan.inner_start:
        ranges.append((plan.start, plan.inner_start, _edge(plan, raw, kept, plan.start, plan.inner_start)))
    if plan.inner_end < plan.end:
        ranges.append((plan.inner_end, plan.end, _edge(plan, raw, kept, plan.inner_end, plan.end)))
    only = ""
    if plan.use.hit_minutes:  # a semi-join on the (subscription, minute)s with a limit hit
        minute = floor_sql('r."timestamp"', MINUTE.micros)
        only = (
            ' SEMI JOIN _hits AS h ON h."subscription" IS NOT DISTINCT FROM r."subscription" '
            f'AND h."minute" = {minute}'
        )
    union = "\nUNION ALL\n".join(
        f"SELECT {select} FROM {source} AS r{only} WHERE {between(start, end)}"
        for start, end, source in ranges
    )
    if not plan.use.hit_minutes:
        return union
    codes = ", ".join(map(sql_string, HIT_CODES))
    minute = floor_sql('"timestamp"', MINUTE.micros)
    hits = (
        f'SELECT DISTINCT "subscription", {minute} AS "minute" FROM {requests} '
        f'WHERE "resultCode" IN ({codes}) AND {between(plan.start, plan.end)}'
    )
    return f"WITH _hits AS ({hits})\n{union}"


def _edge(plan: Plan, raw: str, kept: Sequence[str], start: datetime, end: datetime) -> str:
    """The raw rows of one edge: as they are, or summed per minute (``plan.one_per_minute``)."""
    if not plan.one_per_minute:
        return raw
    keys = "".join(f", {_ident(c)}" for c in kept)
    return (
        f'(SELECT min("timestamp") AS "timestamp", "name"{keys}, sum("valueSum") AS "valueSum", '
        f'sum("valueCount")::BIGINT AS "valueCount" FROM {raw} WHERE {between(start, end)} '
        f'GROUP BY {_MINUTE_BIN}, "name"{keys})'
    )


# What duckdb-kql makes of `summarize x = sum(valueSum) by subscription, minute = bin(timestamp, 1m)`
# straight after filters on TokenMetrics (the per-minute queries' first step).
_MINUTE_BIN = floor_sql('"timestamp"', MINUTE.micros)
_SUMMARIZE = re.compile(
    r'SELECT "subscription" AS "subscription", (?P<bin>' + re.escape(_MINUTE_BIN) + r") "
    r'AS (?P<minute>"\w+"), '
    r'coalesce\(sum\("valueSum"\), 0\) AS (?P<sum>"\w+") FROM (?P<source>_s\d+) '
    r'GROUP BY "subscription", (?P=bin)\)'
)
_FILTER = re.compile(r'(?P<stage>_s\d+) AS \(SELECT \* FROM (?P<source>_s\d+|"TokenMetrics")(?: WHERE |\))')


def per_minute_sql(sql: str) -> str:
    """``sql`` with the per-minute summarize of TokenMetrics as a projection, for a view with
    one row per minute and subscription (``Plan.one_per_minute``) once filtered to one name.

    Each group is then one row, its sum that row's value (``coalesce``: KQL's sum of nothing
    is 0); DuckDB cannot know that, and hashing 1.6M groups of a month was most of the time of
    peak_minute_tokens and limit_plan. Only a summarize whose input is filters on TokenMetrics
    alone is rewritten; anything else is left as it was (and gives the same answer, slower).
    """

    def projection(match: re.Match[str]) -> str:
        if not _filters_token_metrics(sql[: match.start()], match["source"]):
            return match[0]
        return (
            f'SELECT "subscription" AS "subscription", {match["bin"]} AS {match["minute"]}, '
            f'coalesce("valueSum", 0) AS {match["sum"]} FROM {match["source"]})'
        )

    return _SUMMARIZE.sub(projection, sql)


def _filters_token_metrics(before: str, stage: str) -> bool:
    """Whether ``stage``, as last defined in ``before``, is TokenMetrics through filters only."""
    while True:
        defined = [m for m in _FILTER.finditer(before) if m["stage"] == stage]
        at = before.rfind(f"{stage} AS (")
        if not defined or defined[-1].start() != at or (at > 0 and before[at - 1] not in " \n"):
            return False
        source = defined[-1]["source"]
        if source == '"TokenMetrics"':
            return True
        stage, before = source, before[:at]


def between(start: datetime, end: datetime, alias: str = "") -> str:
    return f'{alias}"timestamp" >= {_timestamp(start)} AND {alias}"timestamp" < {_timestamp(end)}'


def _timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


_EPOCH = datetime(1970, 1, 1)


def _floor(value: datetime, grain: timedelta) -> datetime:
    return value - (value - _EPOCH) % grain


def _ceil(value: datetime, grain: timedelta) -> datetime:
    floored = _floor(value, grain)
    return floored if floored == value else floored + grain


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
