"""The Test request page: the limit headers of one answer, whose key it was, the burst chart."""

from __future__ import annotations

import plotly.graph_objects as go

from tokenboard.probe import ProbeResult
from tokenboard.safe import md
from tokenboard.views import formats

NOTHING = "—"


def limit_cells(result: ProbeResult) -> list[tuple[str, str]]:
    """(label, value) of each headline of one answer, numbers in the one format."""

    def number(value: int | None) -> str:
        return NOTHING if value is None else formats.whole(value)

    return [
        ("Status", str(result.status) if result.status else "no answer"),
        ("Latency", formats.milliseconds(result.latency_ms)),
        ("Remaining tokens", number(result.remaining_tokens)),
        ("Consumed tokens", number(result.consumed_tokens)),
        ("Retry-After", NOTHING if result.retry_after is None else formats.seconds(result.retry_after)),
        ("Remaining quota", number(result.remaining_quota_tokens)),
    ]


def owner_note(subscription: str | None, embedded: bool) -> str:
    """Which subscription the key belongs to, or why that is not known."""
    if subscription:
        return f"The key belongs to subscription **{md(subscription)}**: its limit and quota answer."
    if embedded:
        return "The local gateway knows no subscription with this key: expect a 401."
    return (
        "Which subscription this key belongs to is unknown: APIM's answers do not say. "
        "Set `gateway.subscription_name` for the configured key to name it here."
    )


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
        hovertemplate=f"request %{{x}}<br>remaining %{{y:{formats.PLOT_WHOLE}}}"
        "<br>status %{text}<extra></extra>",
    )
    figure.update_layout(
        xaxis_title="request",
        yaxis_title="remaining tokens",
        height=360,
        margin={"t": 30, "b": 40},
        yaxis_tickformat=formats.PLOT_WHOLE,
    )
    return figure
