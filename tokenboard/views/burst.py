"""The Test request page's burst chart: remaining tokens per call, coloured by status."""

from __future__ import annotations

import plotly.graph_objects as go

from tokenboard.probe import ProbeResult

STATUS_COLOURS = {200: "#2ca02c", 429: "#d62728", 403: "#9467bd"}


def burst_figure(results: list[ProbeResult]) -> go.Figure:
    """Remaining tokens per request (line) and each request's status (coloured markers)."""
    ordered = sorted(results, key=lambda r: r.index)
    figure = go.Figure()
    figure.add_scatter(
        x=[r.index + 1 for r in ordered],
        y=[r.remaining_tokens for r in ordered],
        mode="lines+markers",
        name="remaining tokens",
        marker={"color": [STATUS_COLOURS.get(r.status or 0, "#7f7f7f") for r in ordered], "size": 9},
        text=[str(r.status) if r.status else "no answer" for r in ordered],
        hovertemplate="request %{x}<br>remaining %{y}<br>status %{text}<extra></extra>",
    )
    figure.update_layout(
        xaxis_title="request", yaxis_title="remaining tokens", height=360, margin={"t": 30, "b": 40}
    )
    return figure
