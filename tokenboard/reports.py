"""Reports: named, stable-column tables built from query files, for the Reports page and the CLI.

``build_report(name, backend, params)`` is all a caller needs; the page runs the same
steps through its cache (``bind_report``, run ``BoundReport.queries``, then ``assemble``).
Column names and order are part of the contract (documented in the README): add columns
at the end, never rename.

Reports by calendar period (``daily_usage``, ``monthly_usage``) take a ``time_zone``: their
days and months start at local midnight there (tokenboard/localtime.py), UTC by default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tokenboard import kql, localtime, money, planning
from tokenboard.backends.base import Backend
from tokenboard.config import Settings
from tokenboard.hits import CAUSES, by_subscription, causes_by
from tokenboard.views import links

FIXED_NAMES = (
    "period_start",
    "period_end",
    "month",
    "day",
    "calendar_month",
    "time_zone",
    "subscription",
    "api",
    "model",
    "share_of_total_tokens",
    *money.COST_COLUMNS,
    "currency",
)
COST_DIGITS = 6  # costs to a millionth of the currency unit
FILTERS = ("start_time", "end_time", "subscriptions", "apis", "models")
TIME_ZONE = "time_zone"
DEFAULT_TIME_ZONE = "UTC"

Assemble = Callable[[Mapping[str, pd.DataFrame], Mapping[str, Any], Settings], pd.DataFrame]


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    queries: tuple[str, ...]
    params: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, meaning), in output order
    assemble: Assemble
    #: Parameter values taken from the settings when the caller gives none.
    defaults: Callable[[Settings], Mapping[str, Any]] | None = None
    #: The local calendar bin (``1d``, ``1mo``) of its rows. Its queries that take ``bin_phase``
    #: are then run once per piece of the range with one UTC offset, and their rows placed in
    #: that zone's days or months (``localtime.LOCAL_BIN``).
    calendar: str | None = None


@dataclass(frozen=True)
class BoundReport:
    """A report's queries bound to its parameters: run ``queries`` in order, then ``assemble``."""

    report: Report
    queries: tuple[kql.BoundQuery, ...]
    values: dict[str, Any]  # the resolved range and filters (and time_zone) of the whole report
    bins: localtime.Bins | None = None
    pieces: tuple[localtime.Piece | None, ...] = ()  # the piece each query runs for (None: all)

    def frames(self, results: Sequence[pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """One frame per query file from the results of ``queries``: a calendar query's pieces
        together, each row with its local bin (``localtime.LOCAL_BIN``)."""
        if len(results) != len(self.queries):
            raise ValueError(f"{len(self.queries)} queries but {len(results)} results")
        parts: dict[str, list[tuple[localtime.Piece, pd.DataFrame]]] = {}
        frames: dict[str, pd.DataFrame] = {}
        for bound, piece, frame in zip(
            self.queries, self.pieces or [None] * len(results), results, strict=True
        ):
            if piece is None:
                frames[bound.name] = frame
            else:
                parts.setdefault(bound.name, []).append((piece, frame))
        for name, pieces in parts.items():
            assert self.bins is not None
            frames[name] = self.bins.place(pieces)
        return frames


def bind_report(
    report: Report, backend: Backend, params: Mapping[str, Any], now: datetime | None = None
) -> BoundReport:
    """Each of the report's queries bound to the parameters it declares (one ``now`` for all)."""
    for key in params:
        if key not in report.params:
            raise kql.QueryError(
                f"report '{report.name}' has no parameter '{key}' (it takes: {', '.join(report.params)})"
            )
    if report.defaults is not None:
        params = {**report.defaults(backend.settings), **params}
    now = now or datetime.now(UTC)
    filters = {k: v for k, v in params.items() if k != TIME_ZONE}
    values = _resolved(report, filters, now)
    bins = None
    if report.calendar is not None:
        tz = str(params.get(TIME_ZONE) or DEFAULT_TIME_ZONE).strip()
        if not localtime.is_zone(tz):
            raise kql.QueryError(f"unknown time zone '{tz}' (use an IANA name such as Europe/Berlin)")
        values[TIME_ZONE] = tz
        bins = localtime.plan(values["start_time"], values["end_time"], tz, report.calendar)
    bound: list[kql.BoundQuery] = []
    pieces: list[localtime.Piece | None] = []
    for query in report.queries:
        if bins is not None and "bin_phase" in _declared(query, {"bin_phase": 0}):
            for piece in bins.pieces:
                bound.append(backend.bind(query, _declared(query, {**values, **piece.params()}), now))
                pieces.append(piece)
        else:
            bound.append(backend.bind(query, _declared(query, filters), now))
            pieces.append(None)
    return BoundReport(report, tuple(bound), values, bins, tuple(pieces))


def assemble(bound: BoundReport, results: Sequence[pd.DataFrame], settings: Settings) -> pd.DataFrame:
    """The report's table from the results of ``bound.queries``, in that order."""
    return bound.report.assemble(bound.frames(results), bound.values, settings)


def build_report(name: str, backend: Backend, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run a report's queries on the backend and return its table with the documented columns."""
    bound = bind_report(get_report(name), backend, params or {})
    return assemble(bound, [backend.run_query(b).frame for b in bound.queries], backend.settings)


def get_report(name: str) -> Report:
    if name not in REPORTS:
        raise kql.QueryError(f"unknown report '{name}' (known: {', '.join(REPORTS)})")
    return REPORTS[name]


def _declared(query: str, values: Mapping[str, Any]) -> dict[str, Any]:
    declared = {p.name for p in kql.get_query(query).params}
    return {k: v for k, v in values.items() if k in declared}


def _resolved(report: Report, filters: Mapping[str, Any], now: datetime | None) -> dict[str, Any]:
    """Every parameter of the report's queries as a typed value (``ago(7d)`` and ``a,b`` parsed,
    defaults filled in), as the queries see them."""
    values: dict[str, Any] = {}
    for query in report.queries:
        values.update(kql.resolve(kql.get_query(query), _declared(query, filters), now))
    return values


# --- assembling -----------------------------------------------------------------------


def column_name(metric: str) -> str:
    """A metric name as a column: ``Prompt Cached Tokens`` -> ``prompt_cached_tokens``."""
    return re.sub(r"[^0-9a-z]+", "_", metric.lower()).strip("_") or "unnamed_metric"


USAGE_MEASURES = ["total_tokens", "prompt_tokens", "completion_tokens", "calls"]


def _wide_metrics(
    frame: pd.DataFrame, keys: list[str], settings: Settings, fixed: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Long rows (keys, metric, tokens, calls) -> one row per key with a column per metric."""
    standard = {
        settings.telemetry.total_metric: "total_tokens",
        settings.telemetry.prompt_metric: "prompt_tokens",
        settings.telemetry.completion_metric: "completion_tokens",
    }
    names = {}
    for metric in frame["metric"].unique():
        name = standard.get(metric) or column_name(metric)
        if metric not in standard and name in (*fixed, *FIXED_NAMES):
            name = f"metric_{name}"  # an unknown metric must not overwrite a documented column
        names[metric] = name
    extras = sorted({names[m] for m in names if m not in standard})
    wide = frame.assign(column=frame["metric"].map(names)).pivot_table(
        index=keys, columns="column", values="tokens", aggfunc="sum", fill_value=0.0
    )
    wide.columns = [str(c) for c in wide.columns]
    calls = frame[frame["metric"] == settings.telemetry.total_metric].groupby(keys)["calls"].sum()
    wide = wide.reindex(columns=[c for c in fixed if c != "calls"] + extras, fill_value=0.0)
    wide["calls"] = calls.reindex(wide.index).fillna(0).astype("int64")
    return wide.reset_index(), extras


def _period(values: Mapping[str, Any]) -> dict[str, pd.Timestamp]:
    return {
        "period_start": pd.Timestamp(values["start_time"]).tz_convert("UTC"),
        "period_end": pd.Timestamp(values["end_time"]).tz_convert("UTC"),
    }


def _usage_pivot(
    frames: Mapping[str, pd.DataFrame], values: Mapping[str, Any], settings: Settings
) -> pd.DataFrame:
    keys = ["subscription", "api", "model"]
    frame = frames["usage_pivot"]
    period = _period(values)
    if frame.empty:
        return pd.DataFrame(columns=[c for c, _ in USAGE_PIVOT_COLUMNS])
    wide, extras = _wide_metrics(frame, keys, settings, USAGE_MEASURES)
    grand = wide["total_tokens"].sum()
    wide["share_of_total_tokens"] = wide["total_tokens"] / grand if grand else 0.0
    for name, value in reversed(period.items()):
        wide.insert(0, name, value)
    wide = _with_costs(wide, frames["cost_basis"], keys, settings)
    wide = wide.sort_values(["total_tokens", *keys], ascending=[False, True, True, True], kind="stable")
    return wide[[c for c, _ in USAGE_PIVOT_COLUMNS] + extras].reset_index(drop=True)


def _daily_usage(
    frames: Mapping[str, pd.DataFrame], values: Mapping[str, Any], settings: Settings
) -> pd.DataFrame:
    keys = ["day", "subscription", "api"]
    frame = frames["daily_usage"]
    if frame.empty:
        return pd.DataFrame(columns=[c for c, _ in DAILY_USAGE_COLUMNS])
    tz = values[TIME_ZONE]
    frame = frame.assign(day=frame[localtime.LOCAL_BIN].dt.tz_convert(tz).dt.strftime("%Y-%m-%d"))
    wide, extras = _wide_metrics(frame, keys, settings, USAGE_MEASURES)
    wide[TIME_ZONE] = tz
    wide = wide.sort_values(keys, kind="stable")
    return wide[[c for c, _ in DAILY_USAGE_COLUMNS] + extras].reset_index(drop=True)


def _monthly_usage(
    frames: Mapping[str, pd.DataFrame], values: Mapping[str, Any], settings: Settings
) -> pd.DataFrame:
    frame = frames["monthly_usage"].drop(columns="timestamp").rename(columns={localtime.LOCAL_BIN: "month"})
    if frame.empty:
        return pd.DataFrame(columns=[c for c, _ in MONTHLY_USAGE_COLUMNS])
    wide, extras = _wide_metrics(frame, ["month", "subscription"], settings, USAGE_MEASURES)
    tz = values[TIME_ZONE]
    period = _period(values)
    month = pd.to_datetime(wide["month"], utc=True)
    next_month = month.map(lambda m: pd.Timestamp(localtime.next_start(m, tz, localtime.MONTH)))
    wide["period_start"] = month.where(month > period["period_start"], period["period_start"])
    wide["period_end"] = next_month.where(next_month < period["period_end"], period["period_end"])
    basis = frames["cost_basis"].rename(columns={localtime.LOCAL_BIN: "month"})  # priced per UTC day
    wide["month"] = pd.to_datetime(wide["month"], utc=True)
    wide = _with_costs(wide, basis, ["month", "subscription"], settings)
    wide["calendar_month"] = wide["month"].dt.tz_convert(tz).dt.strftime("%Y-%m")
    wide[TIME_ZONE] = tz
    wide = wide.sort_values(["month", "subscription"], kind="stable")
    return wide[[c for c, _ in MONTHLY_USAGE_COLUMNS] + extras].reset_index(drop=True)


def _with_costs(wide: pd.DataFrame, basis: pd.DataFrame, keys: list[str], settings: Settings) -> pd.DataFrame:
    """The report's rows with their cost, its parts and unpriced tokens (priced per UTC day)."""
    columns = list(money.COST_COLUMNS)
    if basis.empty:
        costs = pd.DataFrame(columns=[*keys, *columns, "priced_tokens"])
    else:
        costs = money.summarise(money.priced(money.by_subscription(basis), settings), keys)
    out = wide.merge(costs[[*keys, *columns, "priced_tokens"]], on=keys, how="left")
    out["unpriced_tokens"] = out["unpriced_tokens"].fillna(0.0)
    out["priced_tokens"] = out["priced_tokens"].fillna(0.0)
    for column in ("cost", *money.COST_PARTS):
        out[column] = out[column].astype("float64").fillna(0.0).round(COST_DIGITS)
    out = money.without_false_zeros(out).drop(columns="priced_tokens")
    out["currency"] = settings.currency
    return out


def _throttling_summary(
    frames: Mapping[str, pd.DataFrame], values: Mapping[str, Any], settings: Settings
) -> pd.DataFrame:
    hits = frames["limit_hits"]
    peaks = frames["peak_minute_tokens"]
    columns = [c for c, _ in THROTTLING_SUMMARY_COLUMNS]
    if hits.empty and peaks.empty:
        return pd.DataFrame(columns=columns)
    causes = causes_by(frames["limit_hit_causes"], "subscription")[["subscription", *CAUSES]]
    by_sub = by_subscription(hits).rename(
        columns={"rate_limited": "rate_limited_429", "quota_exceeded": "quota_exceeded_403"}
    )
    peak = peaks[["subscription", "peak_tokens", "peak_minute"]].rename(
        columns={"peak_tokens": "peak_minute_tokens"}
    )
    data = by_sub.merge(peak, on="subscription", how="outer").merge(causes, on="subscription", how="left")
    for column in ("requests", "rate_limited_429", "quota_exceeded_403", *CAUSES):
        data[column] = data[column].fillna(0).astype("int64")
    data["peak_minute_tokens"] = data["peak_minute_tokens"].fillna(0.0)
    hits_total = data["rate_limited_429"] + data["quota_exceeded_403"]
    data["limit_hit_rate"] = (hits_total / data["requests"].where(data["requests"] > 0)).fillna(0.0)
    data["tokens_per_minute_limit"] = (
        data["subscription"].map(settings.limits.for_subscription).astype("int64")
    )
    data["peak_share_of_limit"] = data["peak_minute_tokens"] / data["tokens_per_minute_limit"]
    for name, value in _period(values).items():
        data[name] = value
    data = data.assign(_hits=hits_total).sort_values(
        ["_hits", "peak_share_of_limit", "subscription"], ascending=[False, False, True], kind="stable"
    )
    return data[columns].reset_index(drop=True)


_COST_COLUMNS = (
    (
        "cost",
        "What the row's tokens cost in `currency`, priced per UTC day (empty: none of them has a price)",
    ),
    ("cost_input", "Of which prompt tokens not served from the cache, at the input price"),
    ("cost_cached_input", "Of which cached prompt tokens, at the cached_input price"),
    ("cost_output", "Of which completion tokens (reasoning included), at the output price"),
    ("unpriced_tokens", "Tokens left out of cost: their model has no price (see [prices], [model_aliases])"),
    ("currency", "The currency of the cost columns"),
)
USAGE_PIVOT_COLUMNS = (
    ("period_start", "Start of the range (inclusive), UTC"),
    ("period_end", "End of the range (exclusive), UTC"),
    ("subscription", "Client subscription (empty when the metric carried none)"),
    ("api", "API id"),
    ("model", "Model"),
    ("total_tokens", "Total Tokens (prompt + completion)"),
    ("prompt_tokens", "Prompt Tokens"),
    ("completion_tokens", "Completion Tokens"),
    ("calls", "Calls counted on the Total Tokens metric"),
    ("share_of_total_tokens", "This row's share of all Total Tokens in the report (0..1)"),
    *_COST_COLUMNS,
)
_USAGE_MEASURE_COLUMNS = (
    ("total_tokens", "Total Tokens"),
    ("prompt_tokens", "Prompt Tokens"),
    ("completion_tokens", "Completion Tokens"),
    ("calls", "Calls counted on the Total Tokens metric"),
)
_TIME_ZONE_COLUMN = ("time_zone", "The time zone whose calendar cut the days or months (IANA name)")
DAILY_USAGE_COLUMNS = (
    ("day", "The local calendar day (YYYY-MM-DD) in the report's time zone"),
    ("subscription", "Client subscription (empty when the metric carried none)"),
    ("api", "API id"),
    *_USAGE_MEASURE_COLUMNS,
    _TIME_ZONE_COLUMN,
)
MONTHLY_USAGE_COLUMNS = (
    ("month", "First instant of the calendar month in the report's time zone, as UTC"),
    ("period_start", "Start of what this row covers: the month start or the range start, whichever is later"),
    (
        "period_end",
        "End of what this row covers (exclusive): the next month or the range end, whichever is earlier",
    ),
    ("subscription", "Client subscription"),
    *_USAGE_MEASURE_COLUMNS,
    *_COST_COLUMNS,
    ("calendar_month", "The calendar month (YYYY-MM) in the report's time zone"),
    _TIME_ZONE_COLUMN,
)
THROTTLING_SUMMARY_COLUMNS = (
    ("period_start", "Start of the range (inclusive), UTC"),
    ("period_end", "End of the range (exclusive), UTC"),
    ("subscription", "Subscription (the gateway's Subscription Name)"),
    ("requests", "Gateway requests (sampling-corrected with itemCount)"),
    ("rate_limited_429", "Requests answered 429, whoever refused them (gateway_429, backend_429 split them)"),
    ("quota_exceeded_403", "Requests answered 403, whoever refused them (quota_403, other_403 split them)"),
    ("limit_hit_rate", "(429 + 403) / requests (0..1)"),
    ("first_hit", "First 429 or 403 in the range, UTC (empty: none)"),
    ("last_hit", "Last 429 or 403 in the range, UTC (empty: none)"),
    ("peak_minute_tokens", "Most Total Tokens admitted in one minute"),
    ("peak_minute", "That minute, UTC"),
    ("tokens_per_minute_limit", "The configured tokens-per-minute limit"),
    ("peak_share_of_limit", "peak_minute_tokens / tokens_per_minute_limit"),
    ("gateway_429", "429s the gateway's own token limit answered (no backend call)"),
    ("backend_429", "429s the backend answered: the model deployment's own limit, passed through"),
    ("quota_403", "403s for the token quota (no backend call; the logged body says so, or none was logged)"),
    ("other_403", "Other 403s: a content-safety block, the backend's own 403, ..."),
    ("unattributed", "429s and 403s the logged telemetry cannot attribute (no dependencies, no body)"),
)
LIMIT_PLAN_COLUMNS = (
    ("period_start", "Start of the range (inclusive), UTC"),
    ("period_end", "End of the range (exclusive), UTC"),
    ("subscription", "Client subscription"),
    ("active_minutes", "Minutes with any Total Tokens"),
    ("p50_tokens_per_minute", "Median Total Tokens of an active minute"),
    ("p95_tokens_per_minute", "95th percentile of an active minute's Total Tokens"),
    ("p99_tokens_per_minute", "99th percentile of an active minute's Total Tokens"),
    ("max_tokens_per_minute", "The busiest minute's Total Tokens"),
    ("tokens_per_minute_limit", "The configured tokens-per-minute limit"),
    ("candidate_limit", "The candidate limit of the what-if (parameter candidate)"),
    ("minutes_over_candidate", "Active minutes whose tokens exceed the candidate"),
    ("share_of_minutes_over_candidate", "minutes_over_candidate / active_minutes (0..1)"),
    (
        "tokens_refused_at_candidate",
        "Tokens above the candidate in those minutes: what it would have refused",
    ),
    ("refusal_budget", "Share of active minutes allowed over the suggested limit (parameter refusal_budget)"),
    (
        "suggested_limit",
        f"The lowest limit (in steps of {planning.SUGGESTION_STEP}) within the refusal budget",
    ),
)
EXTRA_COLUMNS_NOTE = (
    "Further metric names the policy emitted (e.g. Prompt Cached Tokens) follow as extra columns, "
    "snake_cased and sorted; they overlap prompt/completion and are not part of total_tokens."
)


def _limit_plan(
    frames: Mapping[str, pd.DataFrame], values: Mapping[str, Any], settings: Settings
) -> pd.DataFrame:
    data = planning.plan(frames["limit_plan"], settings, values["candidate"], values["refusal_budget"])
    for name, value in reversed(_period(values).items()):
        data.insert(0, name, value)
    return data[[c for c, _ in LIMIT_PLAN_COLUMNS]]


REPORTS: dict[str, Report] = {
    "usage_pivot": Report(
        name="usage_pivot",
        title="Usage pivot",
        description="Tokens, calls and cost by subscription, API and model over the range.",
        queries=("usage_pivot", "cost_basis"),
        params=FILTERS,
        columns=USAGE_PIVOT_COLUMNS,
        assemble=_usage_pivot,
    ),
    "daily_usage": Report(
        name="daily_usage",
        title="Daily usage",
        description="Tokens and calls per local calendar day, subscription and API "
        "(days start at midnight in the chosen time zone).",
        queries=("daily_usage",),
        params=(*FILTERS, TIME_ZONE),
        columns=DAILY_USAGE_COLUMNS,
        assemble=_daily_usage,
        calendar="1d",
    ),
    "monthly_usage": Report(
        name="monthly_usage",
        title="Monthly chargeback",
        description="Monthly usage per subscription: tokens, calls and cost per local calendar month "
        "(months start at midnight on the 1st in the chosen time zone).",
        queries=("monthly_usage", "cost_basis"),
        params=(*FILTERS, TIME_ZONE),
        columns=MONTHLY_USAGE_COLUMNS,
        assemble=_monthly_usage,
        calendar=localtime.MONTH,
    ),
    "throttling_summary": Report(
        name="throttling_summary",
        title="Throttling summary",
        description="Per subscription: requests, 429 and 403 answers, first and last hit, "
        "the peak minute against the tokens-per-minute limit, and who refused the calls.",
        queries=("limit_hits", "peak_minute_tokens", "limit_hit_causes"),
        params=FILTERS[:4],
        columns=THROTTLING_SUMMARY_COLUMNS,
        assemble=_throttling_summary,
    ),
    "limit_plan": Report(
        name="limit_plan",
        title="Limit plan",
        description="Per subscription: tokens per minute at p50 / p95 / p99 / max against the limit, "
        "what a candidate limit would have refused, and the limit that fits a refusal budget.",
        queries=("limit_plan",),
        params=(*FILTERS, "candidate", "refusal_budget"),
        columns=LIMIT_PLAN_COLUMNS,
        assemble=_limit_plan,
        defaults=lambda settings: {"candidate": settings.limits.tokens_per_minute},
    ),
}

# What the Reports page's own URL parameter accepts (a report's title, as the page shows it).
LINKS = {"report": links.one_of(report.title for report in REPORTS.values())}
