"""Limit planning: the busiest minutes of one subscription against its limit, a candidate and a suggestion."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tokenboard import planning
from tokenboard.views import formats, style
from tokenboard.views.chart import Chart
from tokenboard.views.overview import Headline

TICKS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

ORDER = "Busiest minute first (the most tokens in one minute over the range)."


def what_if(row: pd.Series) -> list[Headline]:
    """The what-if for one subscription (a ``planning.plan`` row) as headline boxes."""
    budget = row["refusal_budget"]
    return [
        Headline(
            "Minutes over the candidate",
            formats.whole(row["minutes_over_candidate"]),
            None,
            f"Active minutes whose tokens exceed {formats.whole(row['candidate_limit'])} per minute",
            inverse=True,
        ),
        Headline(
            "Share of active minutes",
            formats.percent(row["share_of_minutes_over_candidate"]),
            None,
            f"of {formats.whole(row['active_minutes'])} minutes with any tokens",
            inverse=True,
        ),
        Headline(
            "Tokens it would have refused",
            formats.whole(row["tokens_refused_at_candidate"]),
            None,
            "Tokens above the candidate in those minutes (admitted tokens only)",
            inverse=True,
        ),
        Headline(
            f"Suggested limit at {formats.percent(budget)}",
            formats.whole(row["suggested_limit"]),
            None,
            f"The lowest limit, in steps of {planning.SUGGESTION_STEP}, "
            f"that at most {formats.percent(budget)} of "
            "active minutes pass",
        ),
    ]


def curve(minutes: pd.DataFrame, row: pd.Series) -> Chart:
    """Per-minute tokens from the busiest minute down, with the configured limit, the candidate
    and the suggested limit as lines: where a line crosses the curve is the share of minutes over it."""
    data = planning.duration_curve(minutes["peak_tokens"])
    if data.empty:
        return Chart(style.empty("No tokens for this subscription in this range"), data)
    fig = go.Figure(
        go.Scatter(
            x=data["share_of_minutes"],
            y=data["tokens"],
            mode="lines",
            line={"color": style.PALETTE[0], "width": 2},
            fill="tozeroy",
            fillcolor="rgba(37,99,235,0.08)",
            name="tokens in the minute",
            hovertemplate=f"busiest %{{x:{formats.PLOT_PERCENT}}} of minutes: "
            f"≥ %{{y:{formats.PLOT_WHOLE}}} tokens"
            "<extra></extra>",
        )
    )
    for value, label, color, dash, where in (
        (row["tokens_per_minute_limit"], "configured limit", style.LIMIT_COLOR, "dash", "top left"),
        (row["candidate_limit"], "candidate", "#f59e0b", "solid", "top right"),
        (row["suggested_limit"], "suggested", "#10b981", "dot", "bottom right"),
    ):
        fig.add_hline(
            y=value,
            line={"color": color, "dash": dash, "width": 2},
            annotation_text=f"{label} {formats.whole(value)}",
            annotation_position=where,
        )
    ticks = [t for t in TICKS if t >= data["share_of_minutes"].iloc[0] / 2]
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:.1%}".replace(".0%", "%") for t in ticks])
    fig.update_layout(showlegend=False)
    style.apply(
        fig, yaxis_title="tokens per minute", xaxis_title="share of active minutes (busiest first, log)"
    )
    return Chart(fig, data.assign(subscription=row["subscription"]))
