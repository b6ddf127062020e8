"""Headline numbers: this period against the previous one of the same length."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tokenboard.config import Settings
from tokenboard.views.labels import change, change_points, label, percent, tokens


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


def usage_headlines(now: UsageTotals, before: UsageTotals, period: str) -> list[Headline]:
    def one(name: str, current: float, previous: float) -> Headline:
        return Headline(
            name, tokens(current), change(current, previous), f"Previous {period}: {tokens(previous)}"
        )

    return [
        one("Total tokens", now.total, before.total),
        one("Prompt tokens", now.prompt, before.prompt),
        one("Completion tokens", now.completion, before.completion),
        one("Calls", now.calls, before.calls),
    ]


def limit_headline(now: RequestTotals, before: RequestTotals, period: str) -> Headline:
    return Headline(
        "Limit-hit rate",
        percent(now.hit_rate, 2),
        change_points(now.hit_rate, before.hit_rate) if before.requests else None,
        f"429 (tokens per minute) and 403 (quota) answers among {now.requests:,} requests; "
        f"{now.rate_limited:,} × 429, {now.quota_exceeded:,} × 403. "
        f"Previous {period}: {percent(before.hit_rate, 2)}",
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
    return Headline(name, value, None, f"{tokens(amount)} tokens, {percent(share)} of all Total Tokens")


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
