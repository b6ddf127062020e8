"""The Budgets page's pieces: the run-out table as people read it, and the burn-down chart."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go

from tokenboard.budgets import TOKENS, BurnDown, Window
from tokenboard.views import formats, style
from tokenboard.views.chart import Chart, display_instant
from tokenboard.views.labels import label
from tokenboard.views.overview import Headline

ACTUAL_COLOR = style.PALETTE[0]
FORECAST_COLOR = "#64748b"


def amount(value: float, unit: str) -> str:
    return f"{formats.compact(value)} tokens" if unit == TOKENS else formats.money(value, unit)


def when(burn: BurnDown, tz: str) -> str:
    """The day it runs out in the display zone ("Tue 18 Mar"; with the time when forecast by
    the hour or minute), "–" when it does not run out this period."""
    crossing = burn.outlook.crossing
    if crossing is None:
        return "–"
    fmt = "%a %d %b" if burn.outlook.step >= timedelta(days=1) else "%a %d %b %H:%M"
    return pd.Timestamp(crossing).tz_convert(tz).strftime(fmt)


def shown(burns: list[BurnDown], tz: str) -> pd.DataFrame:
    """The run-out table with amounts written out (the page shows this; the CSV the numbers)."""
    rows = [
        {
            "Subscription": label(b.subscription),
            "Quota" if b.quota else "Budget": amount(b.limit, b.unit),
            "Spent": amount(b.outlook.spent, b.unit),
            "Used": b.outlook.spent / b.limit if b.limit else 0.0,
            "Forecast": amount(b.outlook.projected, b.unit),
            "Forecast %": b.outlook.projected / b.limit if b.limit else 0.0,
            "Runs out": when(b, tz),
            "Status": b.status,
            **(
                {}
                if b.quota
                else {"Unpriced": formats.compact(b.unpriced_tokens) if b.unpriced_tokens else ""}
            ),
        }
        for b in burns
    ]
    return pd.DataFrame(rows)


def headlines(burns: list[BurnDown], period: Window, tz: str, quota: bool = False) -> list[Headline]:
    """How many run out, the first to run out, and the time left in the period."""
    out = [b for b in burns if b.outlook.crossing is not None]
    noun = "quota" if quota else "budget"
    first = out[0] if out else None
    return [
        Headline(
            "Over " + noun if not quota else "Quota spent",
            f"{sum(b.outlook.crossed for b in burns)} of {len(burns)}",
            help=f"Subscriptions past their {noun} already"
            + (": their calls get 403 until the period ends." if quota else "."),
            inverse=True,
        ),
        Headline(
            "Run out this period",
            f"{len(out)} of {len(burns)}",
            help=f"Subscriptions whose spend reaches their {noun} before the period ends, "
            "at the forecast (recent days by weekday).",
            inverse=True,
        ),
        Headline(
            "First to run out",
            label(first.subscription) if first else "–",
            help=(f"{when(first, tz)} ({tz})" if first else f"No {noun} runs out this period."),
        ),
        Headline(
            "Period",
            f"{period.days_left:.1f} days left",
            help=f"{period.period} period in UTC: {period.start:%Y-%m-%d %H:%M} to "
            f"{period.end:%Y-%m-%d %H:%M}",
        ),
    ]


def chart(burn: BurnDown, tz: str) -> Chart:
    """Cumulative spend so far (solid), the forecast to the period end (dashed), the limit, and
    the moment they meet."""
    o = burn.outlook
    actual = o.actual.rename("cumulative").to_frame().assign(kind="actual")
    forecast = o.forecast.rename("cumulative").to_frame().assign(kind="forecast")
    data = pd.concat([actual, forecast]).rename_axis("time").reset_index()
    fig = go.Figure()
    for kind, color, dash, name in (
        ("actual", ACTUAL_COLOR, "solid", "Spent"),
        ("forecast", FORECAST_COLOR, "dash", "Forecast"),
    ):
        part = data[data["kind"] == kind]
        fig.add_scatter(
            x=part["time"].dt.tz_convert(tz).dt.tz_localize(None),
            y=part["cumulative"],
            name=name,
            mode="lines",
            line={"color": color, "dash": dash, "width": 2.5 if kind == "actual" else 2},
            hovertemplate=f"%{{y:{formats.PLOT_MONEY}}}<extra>" + name + "</extra>",
        )
    limit_name = "Quota" if burn.quota else "Budget"
    fig.add_hline(
        y=burn.limit,
        line={"color": style.LIMIT_COLOR, "dash": "dot", "width": 1.5},
        annotation_text=f"{limit_name} {amount(burn.limit, burn.unit)}",
        annotation_position="top left",
        annotation_font={"color": style.LIMIT_COLOR},
    )
    if o.crossing is not None:
        at = display_instant(o.crossing, tz)
        fig.add_vline(x=at, line={"color": style.LIMIT_COLOR, "width": 1})
        fig.add_annotation(
            x=at,
            y=burn.limit,
            text=("ran out " if o.crossed else "runs out ") + when(burn, tz),
            showarrow=True,
            arrowhead=0,
            ax=70 if (o.crossing - o.start) < (o.end - o.start) / 2 else -70,  # away from the edge
            ay=-30,
            font={"color": style.LIMIT_COLOR},
        )
    fig.add_vline(x=display_instant(o.now, tz), line={"color": "#cbd5e1", "width": 1, "dash": "dot"})
    unit = burn.unit if burn.unit == TOKENS else f"cost ({burn.unit})"
    style.apply(fig, yaxis_title=unit, xaxis_title=f"time ({tz})")
    fig.update_xaxes(range=[display_instant(o.start, tz), display_instant(o.end, tz)])
    fig.update_yaxes(range=[0, max(burn.limit, o.projected, o.spent) * 1.08 or 1])
    data.insert(0, "subscription", burn.subscription)
    return Chart(fig, data)
