"""Headline numbers: this period against the previous one of the same length.

A change is shown only when the previous period is covered by data for most of its length
(``Coverage``): against a period that holds a few minutes of data, "+489,650.6%" says nothing
true. Otherwise the tooltip says why there is no change ("previous period: data for 2 h of 30 d").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from tokenboard.config import Settings
from tokenboard.views import formats
from tokenboard.views.labels import label
from tokenboard.views.timerange import TimeRange

# "Most of its length": a change against a period with less data than this would mislead.
COVERED_ENOUGH = 0.9


@dataclass(frozen=True)
class Headline:
    """One ``st.metric``: what it is, its value, the change, a tooltip."""

    label: str
    value: str
    delta: str | None = None
    help: str = ""
    inverse: bool = False  # True when going up is bad (limit hits)


@dataclass(frozen=True)
class UsageTotals:
    total: float
    prompt: float
    completion: float
    calls: int
    other: dict[str, float]

    @classmethod
    def of(cls, pivot: pd.DataFrame, settings: Settings) -> UsageTotals:
        """Totals from the ``usage_pivot`` frame; calls are counted once, on Total Tokens rows."""
        by_metric = pivot.groupby("metric")["tokens"].sum() if not pivot.empty else pd.Series(dtype=float)
        known = {
            settings.telemetry.total_metric,
            settings.telemetry.prompt_metric,
            settings.telemetry.completion_metric,
        }
        calls = (
            pivot.loc[pivot["metric"] == settings.telemetry.total_metric, "calls"].sum()
            if not pivot.empty
            else 0
        )
        return cls(
            total=float(by_metric.get(settings.telemetry.total_metric, 0.0)),
            prompt=float(by_metric.get(settings.telemetry.prompt_metric, 0.0)),
            completion=float(by_metric.get(settings.telemetry.completion_metric, 0.0)),
            calls=int(calls),
            other={str(k): float(v) for k, v in by_metric.items() if k not in known},
        )


@dataclass(frozen=True)
class RequestTotals:
    requests: int
    rate_limited: int
    quota_exceeded: int

    @classmethod
    def of(cls, frame: pd.DataFrame) -> RequestTotals:
        if frame.empty:
            return cls(0, 0, 0)
        row = frame.iloc[0]
        return cls(int(row["requests"]), int(row["rate_limited"]), int(row["quota_exceeded"]))

    @property
    def hit_rate(self) -> float:
        """Share of requests answered 429 or 403."""
        return (self.rate_limited + self.quota_exceeded) / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Coverage:
    """How much of the previous period the telemetry covers: from its first row to the end."""

    period: TimeRange
    first: datetime | None  # the earliest row at or before the period's end (None: no data)

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str, period: TimeRange) -> Coverage:
        """From the ``data_coverage`` frame (``metrics_first`` or ``requests_first``)."""
        value = frame[column].iloc[0] if len(frame) else None
        return cls(period, None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime())

    @property
    def covered(self) -> timedelta:
        if self.first is None or self.first >= self.period.end:
            return timedelta(0)
        return self.period.end - max(self.first, self.period.start)

    @property
    def enough(self) -> bool:
        """True when a change against the previous period means something."""
        return self.covered >= self.period.length * COVERED_ENOUGH

    def note(self) -> str:
        """``previous period: data for 2 h of 30 d`` (or ``no data``)."""
        if self.covered <= timedelta(0):
            return "previous period: no data"
        covered, length = formats.length(self.covered), formats.length(self.period.length)
        return f"previous period: data for {covered} of {length}"

    def change(self, current: float, previous: float) -> str | None:
        return formats.change(current, previous) if self.enough else None

    def points(self, current: float, previous: float) -> str | None:
        return formats.points(current, previous) if self.enough else None

    def help(self, text: str) -> str:
        """A tooltip that says why no change is shown, when that is why."""
        return text if self.enough else f"No change shown: {self.note()}. {text}"


def usage_headlines(now: UsageTotals, before: UsageTotals, period: str, coverage: Coverage) -> list[Headline]:
    def one(name: str, current: float, previous: float) -> Headline:
        return Headline(
            name,
            formats.whole(current),
            coverage.change(current, previous),
            coverage.help(f"Previous {period}: {formats.whole(previous)}"),
        )

    return [
        one("Total tokens", now.total, before.total),
        one("Prompt tokens", now.prompt, before.prompt),
        one("Completion tokens", now.completion, before.completion),
        one("Calls", now.calls, before.calls),
    ]


def limit_headline(now: RequestTotals, before: RequestTotals, period: str, coverage: Coverage) -> Headline:
    return Headline(
        "Limit-hit rate",
        formats.percent(now.hit_rate),
        coverage.points(now.hit_rate, before.hit_rate) if before.requests else None,
        coverage.help(
            f"429 (tokens per minute) and 403 (quota) answers among {formats.whole(now.requests)} requests; "
            f"{formats.whole(now.rate_limited)} × 429, {formats.whole(now.quota_exceeded)} × 403. "
            f"Previous {period}: {formats.percent(before.hit_rate)}"
        ),
        inverse=True,
    )


def busiest(pivot: pd.DataFrame, column: str, settings: Settings) -> tuple[str, float, float] | None:
    """The dimension value with the most Total Tokens: (label, tokens, share of all)."""
    totals = pivot[pivot["metric"] == settings.telemetry.total_metric].groupby(column)["tokens"].sum()
    if totals.empty or totals.sum() <= 0:
        return None
    top = totals.sort_values(ascending=False, kind="stable")
    return label(top.index[0]), float(top.iloc[0]), float(top.iloc[0] / totals.sum())


def busiest_headline(name: str, found: tuple[str, float, float] | None) -> Headline:
    if found is None:
        return Headline(name, "–")
    value, amount, share = found
    return Headline(
        name,
        value,
        None,
        f"{value}: {formats.whole(amount)} tokens, {formats.percent(share)} of all Total Tokens",
    )


def headline_table(
    now: UsageTotals,
    before: UsageTotals,
    hits: RequestTotals,
    hits_before: RequestTotals,
    money: list[tuple[str, float, float]] | None = None,
) -> pd.DataFrame:
    """The headline numbers with their previous-period values (what the CSV download holds)."""
    rows = [
        *(money or []),
        ("total_tokens", now.total, before.total),
        ("prompt_tokens", now.prompt, before.prompt),
        ("completion_tokens", now.completion, before.completion),
        ("calls", now.calls, before.calls),
        ("requests", hits.requests, hits_before.requests),
        ("rate_limited_429", hits.rate_limited, hits_before.rate_limited),
        ("quota_exceeded_403", hits.quota_exceeded, hits_before.quota_exceeded),
        ("limit_hit_rate", hits.hit_rate, hits_before.hit_rate),
    ]
    rows += [(name, value, before.other.get(name, 0.0)) for name, value in sorted(now.other.items())]
    return pd.DataFrame(rows, columns=["measure", "current", "previous"])
