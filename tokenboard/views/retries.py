"""What clients did after a 429: the per-subscription table and one throttling episode, second by second."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tokenboard import retries
from tokenboard.views import style
from tokenboard.views.chart import Chart, display_instant, display_time
from tokenboard.views.labels import labelled

ADMITTED_COLOR = "#10b981"


ORDER = "Highest share of early retries first, then the most 429s."


def table(calls: pd.DataFrame) -> pd.DataFrame:
    """``retries.behaviour`` with subscriptions labelled for display."""
    return labelled(retries.behaviour(calls))


def episode(calls: pd.DataFrame, subscription: str, tz: str = "UTC") -> Chart:
    """The subscription's worst throttling episode: calls per second (admitted and 429), the
    time each 429 said to wait shaded, and a line where the window reopened."""
    found = retries.worst_episode(calls, subscription)
    if found is None:
        return Chart(style.empty("No 429s for this subscription in this range"), pd.DataFrame())
    data = found.seconds.assign(subscription=subscription, reopened=found.reopened)
    x = display_time(data["second"], tz)
    fig = go.Figure()
    for column, name, color in (
        ("admitted", "admitted", ADMITTED_COLOR),
        ("throttled", "429", style.RATE_LIMITED_COLOR),
        ("other", "other answers", style.OTHER_COLOR),
    ):
        if data[column].sum():
            fig.add_bar(
                x=x,
                y=data[column],
                name=name,
                marker_color=color,
                hovertemplate="%{y} calls<extra>" + name + "</extra>",
            )
    for low, high in _waits(calls, subscription, found):
        fig.add_vrect(
            x0=display_instant(low, tz),
            x1=display_instant(high, tz),
            fillcolor="#fee2e2",
            opacity=0.45,
            line_width=0,
        )
    fig.add_vline(
        x=display_instant(found.reopened, tz),
        line={"color": ADMITTED_COLOR, "dash": "dash", "width": 2},
        annotation_text="window reopened",
        annotation_position="top",
    )
    fig.update_layout(barmode="stack", bargap=0.05, hovermode="x unified")
    style.apply(fig, yaxis_title="calls per second", xaxis_title=f"time ({tz}); shaded: told to wait")
    return Chart(
        fig, labelled(data)[["second", "subscription", "admitted", "throttled", "other", "reopened"]]
    )


def _waits(
    calls: pd.DataFrame, subscription: str, found: retries.Episode
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The Retry-After intervals of the episode's 429s, merged where they overlap."""
    mine = calls[
        (calls["subscription"] == subscription)
        & (calls["resultCode"] == "429")
        & calls["timestamp"].between(found.start, found.reopened)
    ].sort_values("timestamp")
    merged: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for start, wait in zip(mine["timestamp"], mine["retry_after"].fillna(0), strict=True):
        end = start + pd.Timedelta(seconds=float(wait))
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
