"""Usage: tokens over time, the pivot and its heatmap, prompt:completion ratio, top consumers."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from tokenboard.config import Settings
from tokenboard.views import formats, links, style
from tokenboard.views.chart import Axis, Chart, display_time
from tokenboard.views.labels import DIMENSIONS, labelled

SPLITS = {"metric": "Metric", **DIMENSIONS}
TOP_ORDER = "Most Total Tokens first, with each one's share of all Total Tokens."
PIVOT_ORDER = "Rows with the largest Total first; the Total row and column add up the cells."
VIEWS = ("Table", "Heatmap")
NO_COLUMNS = "(nothing)"
TOP_MIN, TOP_MAX, TOP_DEFAULT = 3, 30, 10
# What the Usage page's own URL parameters accept (the sidebar's are in ui/sidebar.py).
LINKS = {
    "split": links.one_of(SPLITS.values()),
    "rows": links.one_of(DIMENSIONS.values()),
    "cols": links.one_of([NO_COLUMNS, *DIMENSIONS.values()]),
    "measure": links.anything(),  # a metric name: kept even if the range has none of it
    "view": links.one_of(VIEWS),
    "top": links.whole_between(TOP_MIN, TOP_MAX),
}
MAX_SERIES = 10
OTHER = "Other"
CALLS = "Calls"
TOTAL = "Total"


def metric_kind(name: str, settings: Settings) -> str:
    """total, prompt, completion, or other (a category the policy added that overlaps them)."""
    return {
        settings.telemetry.total_metric: "total",
        settings.telemetry.prompt_metric: "prompt",
        settings.telemetry.completion_metric: "completion",
    }.get(name, "other")


def tokens_over_time(
    frame: pd.DataFrame, split_by: str, settings: Settings, axis: Axis | None = None
) -> Chart:
    """Stacked tokens per bin. By metric: prompt + completion stacked, total as a line on top,
    other categories as dotted lines (they overlap prompt/completion, so stacking them would
    double count). By a dimension: Total Tokens stacked by its values, the smallest as "Other".
    Bins without data are zeros; partial bins at either end are shaded."""
    data = labelled(frame[["timestamp", "series", "tokens", "calls"]])
    if split_by != "metric":
        data = _fold_small_series(data)
    if axis is not None:
        data = axis.zero_filled(data, ["series"], ["tokens", "calls"])
    data = data.assign(complete=axis.complete(data["timestamp"]) if axis is not None else True)
    data = data.sort_values(["timestamp", "series"], kind="stable").reset_index(drop=True)
    tz = axis.tz if axis is not None else "UTC"
    fig = go.Figure()
    if data.empty:
        return Chart(style.empty("No tokens in this range"), data)
    wide = data.pivot_table(
        index="timestamp", columns="series", values="tokens", aggfunc="sum", fill_value=0.0
    )
    x = display_time(wide.index.to_series(), tz)
    if split_by == "metric":
        kinds = {name: metric_kind(name, settings) for name in wide.columns}
        for kind in ("prompt", "completion"):
            for name in [n for n, k in kinds.items() if k == kind]:
                fig.add_scatter(
                    x=x,
                    y=wide[name],
                    name=name,
                    stackgroup="tokens",
                    mode="lines",
                    line={"width": 0.5, "color": style.METRIC_COLORS[kind]},
                )
        for name in [n for n, k in kinds.items() if k == "total"]:
            fig.add_scatter(
                x=x,
                y=wide[name],
                name=name,
                mode="lines",
                line={"width": 2, "color": style.METRIC_COLORS["total"], "dash": "dash"},
            )
        for i, name in enumerate(n for n, k in kinds.items() if k == "other"):
            fig.add_scatter(
                x=x,
                y=wide[name],
                name=f"{name} (not in total)",
                mode="lines",
                line={"width": 2, "dash": "dot", "color": style.PALETTE[(4 + i) % len(style.PALETTE)]},
            )
    else:
        order = data.groupby("series")["tokens"].sum().sort_values(ascending=False).index.tolist()
        if OTHER in order:
            order = [s for s in order if s != OTHER] + [OTHER]
        for i, name in enumerate(order):
            color = style.OTHER_COLOR if name == OTHER else style.PALETTE[i % len(style.PALETTE)]
            fig.add_scatter(
                x=x,
                y=wide[name],
                name=name,
                stackgroup="tokens",
                mode="lines",
                line={"width": 0.5, "color": color},
            )
    fig.update_traces(hovertemplate=f"%{{y:{formats.PLOT_WHOLE}}}")
    fig.update_layout(hovermode="x unified", legend_traceorder="normal")
    style.apply(fig, yaxis_title="tokens", xaxis_title=f"time ({tz})")
    if axis is not None:
        axis.shade(fig)
    return Chart(fig, data)


def _fold_small_series(data: pd.DataFrame) -> pd.DataFrame:
    """Keep the MAX_SERIES largest series; add the rest up as "Other"."""
    totals = data.groupby("series")["tokens"].sum().sort_values(ascending=False)
    if len(totals) <= MAX_SERIES:
        return data
    keep = set(totals.index[: MAX_SERIES - 1])
    data = data.assign(series=data["series"].where(data["series"].isin(keep), OTHER))
    return data.groupby(["timestamp", "series"], as_index=False)[["tokens", "calls"]].sum()


# --- pivot --------------------------------------------------------------------------------


def measures(frame: pd.DataFrame, settings: Settings, selected: str | None = None) -> list[str]:
    """What a pivot cell can hold: the three token metrics, calls, then any other metric seen
    (and ``selected``, e.g. from a link, even when this range has none of it)."""
    known = [
        settings.telemetry.total_metric,
        settings.telemetry.prompt_metric,
        settings.telemetry.completion_metric,
        CALLS,
    ]
    others = sorted(set(frame["metric"]) - set(known)) if not frame.empty else []
    return list(dict.fromkeys([*known, *others, *([selected] if selected else [])]))


def pivot(
    frame: pd.DataFrame, rows: str, columns: str | None, measure: str, settings: Settings
) -> pd.DataFrame:
    """Rows x columns of a measure with a Total row and column, largest rows first.

    ``measure`` is a metric name (its tokens) or "Calls" (calls counted once, on Total Tokens).
    """
    if measure == CALLS:
        source = frame[frame["metric"] == settings.telemetry.total_metric].rename(columns={"calls": "value"})
    else:
        source = frame[frame["metric"] == measure].rename(columns={"tokens": "value"})
    source = labelled(source)
    row_name = DIMENSIONS[rows]
    if columns is None or columns == rows:
        table = source.groupby(rows)["value"].sum().to_frame(measure)
    else:
        table = source.pivot_table(index=rows, columns=columns, values="value", aggfunc="sum", fill_value=0)
        table = table[table.sum().sort_values(ascending=False).index]
        table.columns = [str(c) for c in table.columns]
    table = table.astype("float64")
    table[TOTAL] = table.sum(axis=1)
    table = table.sort_values(TOTAL, ascending=False)
    table.loc[TOTAL] = table.sum(axis=0)
    table.index = pd.Index([str(i) for i in table.index], name=row_name)
    table.columns.name = DIMENSIONS.get(columns or "", None)
    return table


def heatmap(table: pd.DataFrame, measure: str, number: str = ",.0f") -> go.Figure:
    """The pivot's cells (totals left out, they would swamp the colour scale) as a heatmap."""
    cells = table.drop(index=TOTAL, errors="ignore").drop(columns=TOTAL, errors="ignore")
    if cells.empty:
        return style.empty("No data for this pivot")
    fig = go.Figure(
        go.Heatmap(
            z=cells.to_numpy(),
            x=list(cells.columns),
            y=list(cells.index),
            colorscale="Blues",
            zmin=0,  # one cell, or equal cells, still get a readable scale from zero
            zmax=max(float(cells.to_numpy().max()), 1.0),
            texttemplate="%{z:" + number + "}",  # a number format, not data text
            meta=measure,  # data text reaches a template only through %{...}, never concatenated
            hovertemplate="%{y} · %{x}<br>%{meta}: %{z:" + number + "}<extra></extra>",
            colorbar={"title": {"text": measure}, "tickformat": formats.PLOT_COMPACT},
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="top")
    return style.apply(fig, height=max(260, 42 * len(cells) + 80))


# --- by subscription ----------------------------------------------------------------------


def prompt_completion_ratio(top: pd.DataFrame) -> Chart:
    """Prompt tokens per completion token by subscription (high: long prompts, short answers)."""
    data = labelled(top[["subscription", "prompt_tokens", "completion_tokens"]])
    ratio = data["prompt_tokens"] / data["completion_tokens"].where(data["completion_tokens"] > 0)
    data = data.assign(prompt_per_completion=ratio).sort_values("prompt_per_completion", ascending=False)
    data = data.reset_index(drop=True)
    if data.empty:
        return Chart(style.empty("No tokens in this range"), data)
    fig = _labelled_bars(
        data,
        "prompt_per_completion",
        color=style.METRIC_COLORS["prompt"],
        text=data["prompt_per_completion"].map(lambda r: formats.ratio(r) if pd.notna(r) else "–"),
        customdata=data[["prompt_tokens", "completion_tokens"]],
        hovertemplate="%{y}<br>%{x:,.2f} prompt tokens per completion token"
        f"<br>prompt %{{customdata[0]:{formats.PLOT_WHOLE}}}"
        f" · completion %{{customdata[1]:{formats.PLOT_WHOLE}}}<extra></extra>",
        headroom=1.2,
    )
    return Chart(style.apply(fig, height=_bar_height(len(data)), xaxis_title="prompt : completion"), data)


def consumers(pivot: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Per subscription, most Total Tokens first: total, prompt and completion tokens, calls and
    share of all Total Tokens (the columns of ``top_consumers.kql``), from the ``usage_pivot``
    frame a page already has, so the chart costs no query of its own."""
    metric, names = pivot["metric"], settings.telemetry
    frame = pd.DataFrame(
        {
            "subscription": pivot["subscription"],
            "total_tokens": pivot["tokens"].where(metric == names.total_metric, 0.0),
            "prompt_tokens": pivot["tokens"].where(metric == names.prompt_metric, 0.0),
            "completion_tokens": pivot["tokens"].where(metric == names.completion_metric, 0.0),
            "calls": pivot["calls"].where(metric == names.total_metric, 0),
        }
    )
    frame = frame.groupby("subscription", as_index=False, sort=False).sum()
    grand = frame["total_tokens"].sum()
    frame["share"] = frame["total_tokens"] / grand if grand > 0 else 0.0
    return frame.sort_values("total_tokens", ascending=False, kind="stable").reset_index(drop=True)


def top_consumers(top: pd.DataFrame, n: int) -> Chart:
    """The n subscriptions with the most Total Tokens, with their share of all tokens."""
    data = labelled(top).sort_values("total_tokens", ascending=False).head(n).reset_index(drop=True)
    data.insert(0, "rank", range(1, len(data) + 1))
    data = data[
        ["rank", "subscription", "total_tokens", "share", "prompt_tokens", "completion_tokens", "calls"]
    ]
    if data.empty:
        return Chart(style.empty("No tokens in this range"), data)
    fig = _labelled_bars(
        data,
        "total_tokens",
        color=style.PALETTE[0],
        text=[formats.percent(s) for s in data["share"]],
        customdata=data[["share"]],
        hovertemplate=f"%{{y}}<br>%{{x:{formats.PLOT_WHOLE}}} tokens"
        f" (%{{customdata[0]:{formats.PLOT_PERCENT}}})<extra></extra>",
        headroom=1.25,
    )
    fig.update_layout(clickmode="event+select")
    return Chart(style.apply(fig, height=_bar_height(len(data)), xaxis_title="total tokens"), data)


def selected_subscription(event: object, chart_data: pd.DataFrame) -> str | None:
    """The raw subscription behind a click on the top-consumers chart (None if nothing picked)."""
    points = _get(_get(event, "selection"), "points") or []
    for point in points:
        index = _get(point, "point_index")
        if index is None:
            index = _get(point, "point_number")
        if index is not None and 0 <= int(index) < len(chart_data):
            return str(chart_data["subscription"].iloc[int(index)])
    return None


def _get(obj: object, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _labelled_bars(
    data: pd.DataFrame, x: str, *, color: str, text: Any, customdata: Any, hovertemplate: str, headroom: float
) -> go.Figure:
    """Horizontal bars per subscription, top first, with their label outside the bar.

    ``headroom`` widens the x axis past the longest bar so its label is not cut off.
    """
    fig = go.Figure(
        go.Bar(
            x=data[x],
            y=data["subscription"],
            orientation="h",
            marker_color=color,
            text=text,
            textposition="outside",
            cliponaxis=False,
            customdata=customdata,
            hovertemplate=hovertemplate,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, float(data[x].max(skipna=True) or 1) * headroom])
    return fig


def _bar_height(count: int) -> int:
    return max(220, 30 * count + 90)
