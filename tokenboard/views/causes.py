"""Who refused the calls: limit hits by cause over time and by subscription or API."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tokenboard.hits import CAUSES, causes_by
from tokenboard.views import formats, style
from tokenboard.views.chart import Axis, Chart, display_time
from tokenboard.views.labels import labelled
from tokenboard.views.overview import Headline

LABELS = {
    "gateway_429": "429 gateway token limit",
    "backend_429": "429 model deployment's limit",
    "quota_403": "403 token quota",
    "other_403": "403 other (content safety, backend, ...)",
    "unattributed": "not attributable",
}
HELP = {
    "gateway_429": "429 answered by the gateway's llm-token-limit: the backend was never called",
    "backend_429": "429 answered by the model deployment itself (its own tokens-per-minute limit), "
    "passed on by the gateway",
    "quota_403": "403 for the token quota: the backend was never called",
    "other_403": "Any other 403: a content-safety block, the backend's own 403, ...",
    "unattributed": "429s and 403s the logged telemetry cannot tell apart (no dependencies, no body)",
}
BY_ORDER = "Most limit hits first, each bar split by who refused the calls (the 15 largest drawn)."
COLORS = {
    "gateway_429": style.RATE_LIMITED_COLOR,
    "backend_429": "#f97316",
    "quota_403": style.QUOTA_COLOR,
    "other_403": "#64748b",
    "unattributed": style.OTHER_COLOR,
}


def headlines(frame: pd.DataFrame) -> list[Headline]:
    """One box per cause (``not attributable`` only when there is any)."""
    totals = frame[list(CAUSES)].sum() if not frame.empty else pd.Series(0, index=list(CAUSES))
    shown = [c for c in CAUSES if c != "unattributed" or totals[c] > 0]
    return [Headline(LABELS[c], formats.whole(totals[c]), None, HELP[c], inverse=True) for c in shown]


def notes(frame: pd.DataFrame) -> list[str]:
    """What the reader should know about how the causes were told apart (said once each)."""
    if frame.empty:
        return []
    said = []
    if not frame["backend_logged"].any():
        said.append(
            "No backend calls (dependencies) were logged in this range, so a 429 or 403 cannot be "
            "matched to a backend call: causes come from the logged answer bodies where there are any. "
            "Turn on Application Insights logging for the API in APIM (Verbosity: Information) to "
            "log every forwarded call."
        )
    assumed = int(frame["assumed_quota"].sum())
    if assumed:
        said.append(
            f"{formats.whole(assumed)} 403s that never reached the backend had no logged body "
            "and are counted as the "
            "token quota; a content-safety block looks the same without it (log the frontend response "
            "body in APIM's diagnostic settings to tell them apart)."
        )
    return said


def over_time(frame: pd.DataFrame, axis: Axis | None = None) -> Chart:
    """Limit hits per bin, stacked by cause (a bin without hits is zero)."""
    data = causes_by(frame, "timestamp").sort_values("timestamp").reset_index(drop=True)
    if data.empty or not data[list(CAUSES)].to_numpy().any():
        return Chart(style.empty("No limit hits in this range"), data.assign(complete=True))
    if axis is not None:
        data = axis.zero_filled(data, [], list(CAUSES))
    data = data.assign(complete=axis.complete(data["timestamp"]) if axis is not None else True)
    tz = axis.tz if axis is not None else "UTC"
    fig = go.Figure()
    x = display_time(data["timestamp"], tz)
    for cause in _present(data):
        fig.add_bar(
            x=x,
            y=data[cause],
            name=LABELS[cause],
            marker_color=COLORS[cause],
            hovertemplate=f"%{{y:{formats.PLOT_WHOLE}}}<extra>" + LABELS[cause] + "</extra>",
        )
    fig.update_layout(barmode="stack", hovermode="x unified", bargap=0.1)
    style.apply(fig, yaxis_title="limit hits", xaxis_title=f"time ({tz})")
    if axis is not None:
        axis.shade(fig)
    return Chart(fig, data)


def by(frame: pd.DataFrame, dimension: str, top: int = 15) -> Chart:
    """Limit hits per subscription or API, stacked by cause, most first (the ``top`` drawn;
    the data holds them all)."""
    data = causes_by(labelled(frame), dimension)
    data = data.assign(hits=data[list(CAUSES)].sum(axis=1))
    data = data[data["hits"] > 0].sort_values(["hits", dimension], ascending=[False, True])
    data = data.reset_index(drop=True)
    if data.empty:
        return Chart(style.empty("No limit hits in this range"), data)
    drawn = data.head(top)
    fig = go.Figure()
    for cause in _present(drawn):
        fig.add_bar(
            y=drawn[dimension],
            x=drawn[cause],
            name=LABELS[cause],
            orientation="h",
            marker_color=COLORS[cause],
            hovertemplate=f"%{{y}}: %{{x:{formats.PLOT_WHOLE}}}<extra>" + LABELS[cause] + "</extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", type="category")
    title = "limit hits" if len(data) <= top else f"limit hits (the {top} with most of {len(data)})"
    return Chart(style.apply(fig, height=max(220, 30 * len(drawn) + 90), xaxis_title=title), data)


def _present(data: pd.DataFrame) -> list[str]:
    return [c for c in CAUSES if data[c].sum() > 0]
