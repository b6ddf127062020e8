"""Throttling: 429/403 rates over time and by who, worst subscriptions, headroom to the limit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tokenboard.config import Settings
from tokenboard.hits import by_subscription
from tokenboard.views import formats, links, style
from tokenboard.views.chart import Axis, Chart, display_time
from tokenboard.views.labels import DIMENSIONS, labelled
from tokenboard.views.overview import Coverage, Headline, RequestTotals

# What each list is sorted by, said where it is shown (the two lists rank differently).
RATES_ORDER = "Highest limit-hit rate first (429 + 403 among its requests); only those with a hit."
WORST_ORDER = "Most limit hits first (429 + 403), then by name; the hit rate is beside them."
HEADROOM_ORDER = "Closest to its limit first (busiest minute / tokens-per-minute limit)."
COUNTS = ["requests", "rate_limited", "quota_exceeded", "failed"]


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    requests = frame["requests"].where(frame["requests"] > 0)
    return frame.assign(
        rate_limited_rate=(frame["rate_limited"] / requests).fillna(0.0),
        quota_exceeded_rate=(frame["quota_exceeded"] / requests).fillna(0.0),
    )


def rates_over_time(frame: pd.DataFrame, axis: Axis | None = None) -> Chart:
    """429 and 403 shares of requests per bin, as two lines (the series of any split_by added up).

    A bin without requests counts zero requests and zero hits (a rate of 0)."""
    data = frame.groupby("timestamp", as_index=False)[COUNTS].sum()
    if axis is not None:
        data = axis.zero_filled(data, [], COUNTS)
    data = _rates(data)
    data = data.assign(complete=axis.complete(data["timestamp"]) if axis is not None else True)
    data = data.reset_index(drop=True)
    tz = axis.tz if axis is not None else "UTC"
    if data.empty:
        return Chart(style.empty("No gateway requests in this range"), data)
    x = display_time(data["timestamp"], tz)
    fig = go.Figure()
    for column, name, color, counts in (
        ("rate_limited_rate", "429 rate limited", style.RATE_LIMITED_COLOR, "rate_limited"),
        ("quota_exceeded_rate", "403 refused", style.QUOTA_COLOR, "quota_exceeded"),
    ):
        fig.add_scatter(
            x=x,
            y=data[column],
            name=name,
            mode="lines",
            line={"color": color, "width": 2},
            customdata=data[[counts, "requests"]],
            hovertemplate=f"%{{y:{formats.PLOT_PERCENT}}} (%{{customdata[0]:{formats.PLOT_WHOLE}}}"
            f" of %{{customdata[1]:{formats.PLOT_WHOLE}}})",
        )
    fig.update_layout(hovermode="x unified")
    fig.update_yaxes(tickformat=formats.PLOT_AXIS_PERCENT)
    style.apply(fig, yaxis_title="share of requests", xaxis_title=f"time ({tz})")
    if axis is not None:
        axis.shade(fig)
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
        ("quota_exceeded_rate", "403 refused", style.QUOTA_COLOR),
    ):
        fig.add_bar(
            y=data[by],
            x=data[column],
            name=name,
            orientation="h",
            marker_color=color,
            hovertemplate=f"%{{y}}: %{{x:{formats.PLOT_PERCENT}}}<extra>" + name + "</extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=formats.PLOT_AXIS_PERCENT)
    return Chart(
        style.apply(fig, height=max(220, 30 * len(data) + 90), xaxis_title="share of requests"), data
    )


def rate_headlines(
    now: RequestTotals, before: RequestTotals, period: str, coverage: Coverage
) -> list[Headline]:
    """The 429 and 403 shares of requests, each against the previous period."""

    def one(name: str, count: int, previous_count: int, what: str) -> Headline:
        rate = count / now.requests if now.requests else 0.0
        rate_before = previous_count / before.requests if before.requests else 0.0
        return Headline(
            name,
            formats.percent(rate),
            coverage.points(rate, rate_before) if before.requests else None,
            coverage.help(
                f"{formats.whole(count)} of {formats.whole(now.requests)} requests answered {what}. "
                f"Previous {period}: {formats.percent(rate_before)}"
            ),
            inverse=True,
        )

    return [
        one(
            "429 rate limited",
            now.rate_limited,
            before.rate_limited,
            "429 (by the gateway or the deployment)",
        ),
        one(
            "403 refused",
            now.quota_exceeded,
            before.quota_exceeded,
            "403 (the token quota or another policy)",
        ),
    ]


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


def hits_timeline(frame: pd.DataFrame, subscriptions: list[str], axis: Axis | None = None) -> Chart:
    """When the worst subscriptions were throttled: limit hits per bin as a heatmap (a column
    for every bin, so quiet stretches show as quiet)."""
    tz = axis.tz if axis is not None else "UTC"
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
    if axis is not None:
        wide = wide.reindex(columns=axis.starts, fill_value=0)
    fig = go.Figure(
        go.Heatmap(
            z=wide.to_numpy(),
            x=display_time(wide.columns.to_series(), tz),
            y=list(wide.index),
            colorscale=[[0, "#f8fafc"], [0.001, "#fee2e2"], [1, style.RATE_LIMITED_COLOR]],
            zmin=0,
            hovertemplate=f"%{{y}}<br>%{{x}}<br>%{{z:{formats.PLOT_WHOLE}}} limit hits<extra></extra>",
            colorbar={"title": {"text": "hits"}, "tickformat": formats.PLOT_COMPACT},
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
            text=[
                f"{formats.whole(p)} / {formats.whole(lim)}"
                for p, lim in zip(data["peak_tokens"], data["limit"], strict=True)
            ],
            textposition="auto",
            hovertemplate=f"%{{y}}<br>peak %{{customdata[0]:{formats.PLOT_WHOLE}}} tokens/min"
            f" of %{{customdata[1]:{formats.PLOT_WHOLE}}} (%{{x:{formats.PLOT_PERCENT}}})<extra></extra>",
        )
    )
    fig.add_vline(
        x=1,
        line={"color": style.LIMIT_COLOR, "dash": "dash", "width": 2},
        annotation_text="limit",
        annotation_position="top",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=formats.PLOT_AXIS_PERCENT)
    return Chart(
        style.apply(fig, height=max(240, 30 * len(data) + 100), xaxis_title="peak minute / limit"), data
    )


def closest_to_limit(frame: pd.DataFrame, settings: Settings) -> list[str]:
    """Subscriptions (raw names) by their peak minute's share of their limit, closest first."""
    share = frame["peak_tokens"] / frame["subscription"].map(settings.limits.for_subscription)
    return frame.assign(share=share).sort_values("share", ascending=False)["subscription"].tolist()


def headroom_over_time(
    frame: pd.DataFrame, subscription: str, settings: Settings, axis: Axis | None = None
) -> Chart:
    """One subscription's busiest minute per bin against its tokens-per-minute limit (zero in
    bins where it sent nothing)."""
    limit = settings.limits.for_subscription(subscription)
    tz = axis.tz if axis is not None else "UTC"
    data = frame[frame["subscription"] == subscription][["timestamp", "peak_tokens"]]
    if axis is not None:
        data = axis.zero_filled(data, [], ["peak_tokens"])
    complete = axis.complete(data["timestamp"]) if axis is not None else True
    data = data.assign(limit=limit, complete=complete).reset_index(drop=True)
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
            hovertemplate=f"%{{y:{formats.PLOT_WHOLE}}} tokens/min",
        )
    fig.add_hline(
        y=limit,
        line={"color": style.LIMIT_COLOR, "dash": "dash", "width": 2},
        annotation_text=f"limit {formats.whole(limit)}/min",
        annotation_position="bottom left",  # under the line: "incomplete" sits at the top
    )
    fig.update_layout(hovermode="x unified", showlegend=False)
    style.apply(fig, yaxis_title="tokens per minute", xaxis_title=f"time ({tz})")
    if axis is not None:
        axis.shade(fig)
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
# What the Throttling page's own URL parameters accept (the sidebar's are in ui/sidebar.py).
LINKS = {
    "by": links.one_of(BY.values()),
    "headroom": links.anything(),  # a subscription: kept even if the range has no data for it
    "causes_by": links.one_of(BY.values()),
}
