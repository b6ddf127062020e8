"""Throttling: 429/403 rates over time and by who, worst subscriptions, headroom to the limit."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from tokenboard.config import Settings
from tokenboard.hits import by_subscription
from tokenboard.views import style
from tokenboard.views.chart import Chart, completeness, display_instant, display_time
from tokenboard.views.labels import DIMENSIONS, labelled
from tokenboard.views.overview import Headline


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    requests = frame["requests"].where(frame["requests"] > 0)
    return frame.assign(
        rate_limited_rate=(frame["rate_limited"] / requests).fillna(0.0),
        quota_exceeded_rate=(frame["quota_exceeded"] / requests).fillna(0.0),
    )


def rates_over_time(
    frame: pd.DataFrame, tz: str = "UTC", incomplete_from: datetime | None = None, end: datetime | None = None
) -> Chart:
    """429 and 403 shares of requests per bin, as two lines (one series: split_by = none)."""
    data = frame.groupby("timestamp", as_index=False)[["requests", "rate_limited", "quota_exceeded"]].sum()
    data = _rates(data)
    data = data.assign(complete=completeness(data["timestamp"], incomplete_from)).reset_index(drop=True)
    if data.empty:
        return Chart(style.empty("No gateway requests in this range"), data)
    x = display_time(data["timestamp"], tz)
    fig = go.Figure()
    for column, name, color, counts in (
        ("rate_limited_rate", "429 rate limited", style.RATE_LIMITED_COLOR, "rate_limited"),
        ("quota_exceeded_rate", "403 quota exceeded", style.QUOTA_COLOR, "quota_exceeded"),
    ):
        fig.add_scatter(
            x=x,
            y=data[column],
            name=name,
            mode="lines",
            line={"color": color, "width": 2},
            customdata=data[[counts, "requests"]],
            hovertemplate="%{y:.2%} (%{customdata[0]:,} of %{customdata[1]:,})",
        )
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(tickformat=".0%")
    style.apply(fig, yaxis_title="share of requests", xaxis_title=f"time ({tz})")
    style.mark_incomplete(fig, display_instant(incomplete_from, tz), display_instant(end, tz))
    return Chart(fig, data)


def rates_by(frame: pd.DataFrame, by: str) -> Chart:
    """429 and 403 rates per subscription or per API (from ``limit_hits``), worst first.

    Only those with at least one hit are drawn: a long column of zero bars hides the few that matter.
    """
    data = labelled(frame).groupby(by, as_index=False)[["requests", "rate_limited", "quota_exceeded"]].sum()
    data = _rates(data)
    data = data.assign(hit_rate=data["rate_limited_rate"] + data["quota_exceeded_rate"])
    data = data[data["hit_rate"] > 0]
    data = data.sort_values(["hit_rate", "requests"], ascending=False).reset_index(drop=True)
    if data.empty:
        return Chart(style.empty("No limit hits in this range"), data)
    fig = go.Figure()
    for column, name, color in (
        ("rate_limited_rate", "429 rate limited", style.RATE_LIMITED_COLOR),
        ("quota_exceeded_rate", "403 quota exceeded", style.QUOTA_COLOR),
    ):
        fig.add_bar(
            y=data[by],
            x=data[column],
            name=name,
            orientation="h",
            marker_color=color,
            hovertemplate="%{y}: %{x:.2%}<extra>" + name + "</extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%")
    return Chart(
        style.apply(fig, height=max(220, 30 * len(data) + 90), xaxis_title="share of requests"), data
    )


def throttled_headline(frame: pd.DataFrame) -> Headline:
    """How many subscriptions got at least one 429 or 403 (from ``limit_hits``)."""
    by_sub = frame.groupby("subscription")[["rate_limited", "quota_exceeded"]].sum()
    throttled = int((by_sub.sum(axis=1) > 0).sum())
    return Headline(
        "Subscriptions throttled",
        f"{throttled} of {len(by_sub)}",
        None,
        "Subscriptions with at least one 429 or 403 answer in the range",
    )


def worst_subscriptions(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The subscriptions with the most limit hits, with the first and last hit."""
    grouped = labelled(by_subscription(frame))
    grouped = grouped.assign(hits=grouped["rate_limited"] + grouped["quota_exceeded"])
    grouped = grouped[grouped["hits"] > 0]
    grouped = grouped.assign(hit_rate=grouped["hits"] / grouped["requests"])
    grouped = grouped.sort_values(["hits", "subscription"], ascending=[False, True]).head(n)
    columns = [
        "subscription",
        "hits",
        "rate_limited",
        "quota_exceeded",
        "requests",
        "hit_rate",
        "first_hit",
        "last_hit",
    ]
    return grouped[columns].reset_index(drop=True)


def hits_timeline(frame: pd.DataFrame, subscriptions: list[str], tz: str = "UTC") -> Chart:
    """When the worst subscriptions were throttled: limit hits per bin as a heatmap."""
    data = labelled(frame)
    data = data[data["series"].isin(subscriptions)]
    data = data.assign(hits=data["rate_limited"] + data["quota_exceeded"])
    data = data[["timestamp", "series", "hits", "rate_limited", "quota_exceeded", "requests"]]
    data = data.rename(columns={"series": "subscription"}).reset_index(drop=True)
    if data.empty or data["hits"].sum() == 0:
        return Chart(style.empty("No limit hits in this range"), data)
    wide = data.pivot_table(
        index="subscription", columns="timestamp", values="hits", aggfunc="sum", fill_value=0
    )
    wide = wide.reindex([s for s in subscriptions if s in wide.index])
    fig = go.Figure(
        go.Heatmap(
            z=wide.to_numpy(),
            x=display_time(wide.columns.to_series(), tz),
            y=list(wide.index),
            colorscale=[[0, "#f8fafc"], [0.001, "#fee2e2"], [1, style.RATE_LIMITED_COLOR]],
            hovertemplate="%{y}<br>%{x}<br>%{z:,} limit hits<extra></extra>",
            colorbar={"title": {"text": "hits"}},
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    return Chart(style.apply(fig, height=max(220, 34 * len(wide) + 100), xaxis_title=f"time ({tz})"), data)


def headroom(frame: pd.DataFrame, settings: Settings) -> Chart:
    """Each subscription's peak minute as a share of its tokens-per-minute limit (line at 100%)."""
    data = frame[["subscription", "peak_tokens", "peak_minute", "mean_tokens", "active_minutes"]].copy()
    data["limit"] = data["subscription"].map(settings.limits.for_subscription).astype("int64")
    data["peak_share_of_limit"] = data["peak_tokens"] / data["limit"]
    data["headroom_tokens"] = data["limit"] - data["peak_tokens"]
    data = labelled(data).sort_values("peak_share_of_limit", ascending=False).reset_index(drop=True)
    if data.empty:
        return Chart(style.empty("No tokens in this range"), data)
    colors = [
        style.LIMIT_COLOR if s >= 1 else "#f59e0b" if s >= 0.8 else style.PALETTE[0]
        for s in data["peak_share_of_limit"]
    ]
    fig = go.Figure(
        go.Bar(
            x=data["peak_share_of_limit"],
            y=data["subscription"],
            orientation="h",
            marker_color=colors,
            customdata=data[["peak_tokens", "limit"]],
            text=[f"{p:,.0f} / {lim:,}" for p, lim in zip(data["peak_tokens"], data["limit"], strict=True)],
            textposition="auto",
            hovertemplate="%{y}<br>peak %{customdata[0]:,.0f} tokens/min of %{customdata[1]:,} "
            "(%{x:.0%})<extra></extra>",
        )
    )
    fig.add_vline(
        x=1,
        line={"color": style.LIMIT_COLOR, "dash": "dash", "width": 2},
        annotation_text="limit",
        annotation_position="top",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%")
    return Chart(
        style.apply(fig, height=max(240, 30 * len(data) + 100), xaxis_title="peak minute / limit"), data
    )


def closest_to_limit(frame: pd.DataFrame, settings: Settings) -> list[str]:
    """Subscriptions (raw names) by their peak minute's share of their limit, closest first."""
    share = frame["peak_tokens"] / frame["subscription"].map(settings.limits.for_subscription)
    return frame.assign(share=share).sort_values("share", ascending=False)["subscription"].tolist()


def headroom_over_time(
    frame: pd.DataFrame,
    subscription: str,
    settings: Settings,
    tz: str = "UTC",
    incomplete_from: datetime | None = None,
    end: datetime | None = None,
) -> Chart:
    """One subscription's busiest minute per bin against its tokens-per-minute limit."""
    limit = settings.limits.for_subscription(subscription)
    data = frame[frame["subscription"] == subscription][["timestamp", "peak_tokens"]].copy()
    data = data.assign(limit=limit, complete=completeness(data["timestamp"], incomplete_from)).reset_index(
        drop=True
    )
    fig = go.Figure()
    if not data.empty:
        fig.add_scatter(
            x=display_time(data["timestamp"], tz),
            y=data["peak_tokens"],
            name="peak tokens / minute",
            mode="lines",
            line={"color": style.PALETTE[0], "width": 2},
            fill="tozeroy",
            fillcolor="rgba(37,99,235,0.08)",
            hovertemplate="%{y:,.0f} tokens/min",
        )
    fig.add_hline(
        y=limit,
        line={"color": style.LIMIT_COLOR, "dash": "dash", "width": 2},
        annotation_text=f"limit {limit:,}/min",
        annotation_position="top left",
    )
    fig.update_layout(hovermode="x unified", showlegend=False)
    style.apply(fig, yaxis_title="tokens per minute", xaxis_title=f"time ({tz})")
    style.mark_incomplete(fig, display_instant(incomplete_from, tz), display_instant(end, tz))
    return Chart(
        fig,
        labelled(data.assign(subscription=subscription))[
            ["timestamp", "subscription", "peak_tokens", "limit", "complete"]
        ],
    )


def throttled_minutes(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Minutes with 429/403 answers, the tokens admitted then, and that against the limit."""
    data = frame.copy()
    data["limit"] = data["subscription"].map(settings.limits.for_subscription).astype("int64")
    data["share_of_limit"] = data["tokens"] / data["limit"]
    data = labelled(data)
    return data[
        [
            "minute",
            "subscription",
            "rate_limited",
            "quota_exceeded",
            "tokens",
            "calls",
            "limit",
            "share_of_limit",
        ]
    ]


BY = {"subscription": DIMENSIONS["subscription"], "api": DIMENSIONS["api"]}
