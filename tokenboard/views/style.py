"""One look for every chart: layout, colours, the still-ingesting marker."""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go

FONT = "Inter, Segoe UI, Helvetica Neue, Arial, sans-serif"
PALETTE = (
    "#2563eb",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#8b5cf6",
    "#06b6d4",
    "#ec4899",
    "#84cc16",
    "#f97316",
    "#64748b",
    "#14b8a6",
    "#a855f7",
)
OTHER_COLOR = "#cbd5e1"
LIMIT_COLOR = "#dc2626"
RATE_LIMITED_COLOR = "#ef4444"
QUOTA_COLOR = "#8b5cf6"
METRIC_COLORS = {"prompt": "#2563eb", "completion": "#f59e0b", "total": "#0f172a"}
HEIGHT = 360


def apply(fig: go.Figure, *, height: int = HEIGHT, yaxis_title: str = "", xaxis_title: str = "") -> go.Figure:
    """Clean, quiet styling: white background, light grid, legend above the plot."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        font={"family": FONT, "size": 13, "color": "#334155"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0, "title": None},
        hoverlabel={"font": {"family": FONT}},
        colorway=list(PALETTE),
        bargap=0.25,
    )
    fig.update_xaxes(title=xaxis_title or None, showgrid=False, linecolor="#e2e8f0")
    fig.update_yaxes(
        title=yaxis_title or None, gridcolor="#f1f5f9", zerolinecolor="#e2e8f0", rangemode="tozero"
    )
    return fig


def mark_incomplete(fig: go.Figure, start: datetime | None, end: datetime | None) -> go.Figure:
    """Shade bins still ingesting (or cut by the range end), so a dip there is not read as a drop."""
    if start is None or end is None or start >= end:
        return fig
    fig.add_vrect(
        x0=start,
        x1=end,
        fillcolor="#94a3b8",
        opacity=0.15,
        line_width=0,
        annotation_text="incomplete",
        annotation_position="top left",
        annotation_font={"size": 11, "color": "#64748b"},
    )
    return fig


def empty(message: str, height: int = 200) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#64748b"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply(fig, height=height)
