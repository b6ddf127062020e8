"""Money on the pages: the cost headline, unpriced tokens named, cost over time, cost pivots.

Every function takes rows priced by ``money.priced`` (``cost_basis`` rows with costs).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go

from tokenboard import money
from tokenboard.views import formats, style
from tokenboard.views.chart import Axis, Chart, display_time
from tokenboard.views.labels import DIMENSIONS, labelled
from tokenboard.views.overview import Coverage, Headline

PARTS = {"cost_input": "Input", "cost_cached_input": "Cached input", "cost_output": "Output"}
SPLITS = {"part": "Price", **DIMENSIONS}
QUERY_SPLITS = {"part": "none"}  # cost_basis's split_by for each of SPLITS (the rest: the same)
PART_COLORS = {"cost_input": "#2563eb", "cost_cached_input": "#93c5fd", "cost_output": "#f59e0b"}
TOTAL = "Total"
COST = "Cost"  # the pivot's measure
DAY = timedelta(days=1)


def totals(rows: pd.DataFrame) -> tuple[float, float, float]:
    """(cost, priced tokens, unpriced tokens) of all rows."""
    if rows.empty:
        return 0.0, 0.0, 0.0
    return float(rows["cost"].sum()), float(rows["priced_tokens"].sum()), float(rows["unpriced_tokens"].sum())


def unpriced_text(rows: pd.DataFrame) -> str | None:
    """ "1.2M tokens unpriced: model-x, legacy API (no model)", or None when everything has a price."""
    names = money.unpriced_names(rows) if not rows.empty else []
    if not names:
        return None
    tokens = sum(t for _, t in names)
    return f"{formats.compact(tokens)} tokens unpriced: {', '.join(name for name, _ in names)}"


def headlines(
    now: pd.DataFrame, before: pd.DataFrame, currency: str, period: str, coverage: Coverage | None = None
) -> list[Headline]:
    """Cost with its change against the previous period (when data covers most of it), and the
    share of tokens left unpriced."""
    cost, priced, unpriced = totals(now)
    cost_before = totals(before)[0]
    share = unpriced / (priced + unpriced) if priced + unpriced else 0.0
    named = unpriced_text(now)
    cost_value = formats.money(cost, currency) if priced or not unpriced else "–"
    change = coverage.change if coverage is not None else formats.change
    about = (
        f"Priced tokens at the configured prices, per UTC day. Previous {period}: "
        f"{formats.money(cost_before, currency)}." + (f" Leaves out {named}." if named else "")
    )
    return [
        Headline(
            "Cost",
            cost_value,
            change(cost, cost_before) if priced else None,
            coverage.help(about) if coverage is not None else about,
            inverse=True,
        ),
        Headline(
            "Unpriced tokens",
            formats.percent(share),
            None,
            (named + ". Give them a price in [prices] (or [model_aliases], [api_models]).")
            if named
            else "Every token in the range has a price.",
            inverse=True,
        ),
    ]


def headline_rows(now: pd.DataFrame, before: pd.DataFrame) -> list[tuple[str, float, float]]:
    """The cost headline numbers for the headline CSV: (measure, current, previous)."""
    current, previous = totals(now), totals(before)
    return [("cost", current[0], previous[0]), ("unpriced_tokens", current[2], previous[2])]


# --- over time --------------------------------------------------------------------------


def over_time(rows: pd.DataFrame, split_by: str, currency: str, axis: Axis | None = None) -> Chart:
    """Cost per bin from priced ``cost_basis`` rows, stacked by price (input, cached input,
    output) or by the dimension the query split them by (its ``series``); zero where nothing
    was spent, partial bins at either end shaded."""
    tz = axis.tz if axis is not None else "UTC"
    if rows.empty or not rows["cost"].any():
        return Chart(style.empty("No priced tokens in this range"), pd.DataFrame())
    if split_by == "part":
        parts = rows[["timestamp", *PARTS]]
        long = parts.melt(id_vars=["timestamp"], var_name="series", value_name="cost")
        order = list(PARTS)
    else:
        long = labelled(rows[["timestamp", "series", "cost"]])
        order = long.groupby("series")["cost"].sum().sort_values(ascending=False).index.tolist()
    data = long.groupby(["timestamp", "series"], as_index=False).agg(cost=("cost", "sum"))
    if axis is not None:
        data = axis.zero_filled(data, ["series"], ["cost"])
    data = data.assign(complete=axis.complete(data["timestamp"]) if axis is not None else True)
    wide = data.pivot_table(index="timestamp", columns="series", values="cost", aggfunc="sum", fill_value=0.0)
    x = display_time(wide.index.to_series(), tz)
    fig = go.Figure()
    for i, name in enumerate(order):
        color = PART_COLORS.get(name, style.PALETTE[i % len(style.PALETTE)])
        fig.add_scatter(
            x=x,
            y=wide[name],
            name=PARTS.get(name, name),
            stackgroup="cost",
            mode="lines",
            line={"width": 0.5, "color": color},
        )
    fig.update_traces(hovertemplate=f"%{{y:{formats.PLOT_MONEY}}}")
    fig.update_layout(hovermode="x unified", legend_traceorder="normal")
    style.apply(fig, yaxis_title=f"cost ({currency})", xaxis_title=f"time ({tz})")
    if axis is not None:
        axis.shade(fig)
    data["series"] = data["series"].map(lambda s: PARTS.get(s, s))
    return Chart(fig, data.sort_values(["timestamp", "series"]).reset_index(drop=True))


# --- pivot and per subscription -----------------------------------------------------------


def pivot(rows: pd.DataFrame, by: str, columns: str | None) -> pd.DataFrame:
    """Cost by rows x columns with a Total row and column, largest first; a cell whose tokens
    all lack a price is empty (NaN), not 0."""
    data = labelled(rows)
    row_name = DIMENSIONS[by]
    values = ("cost", "priced_tokens", "unpriced_tokens")
    if columns is None or columns == by:
        sums = data.groupby(by)[list(values)].sum()
        tables = {v: sums[[v]].rename(columns={v: "Cost"}) for v in values}
    else:
        tables = {
            v: data.pivot_table(index=by, columns=columns, values=v, aggfunc="sum", fill_value=0.0)
            for v in values
        }
    for v, table in tables.items():
        table = table.astype("float64")
        table[TOTAL] = table.sum(axis=1)
        table.loc[TOTAL] = table.sum(axis=0)
        tables[v] = table
    cost = tables["cost"].mask((tables["priced_tokens"] <= 0) & (tables["unpriced_tokens"] > 0))
    body = cost.drop(index=TOTAL).sort_values(TOTAL, ascending=False, na_position="last")
    order = [*body.drop(columns=TOTAL).sum().sort_values(ascending=False).index.tolist(), TOTAL]
    cost = pd.concat([body, cost.loc[[TOTAL]]])[order]
    cost.index = pd.Index([str(i) for i in cost.index], name=row_name)
    cost.columns = pd.Index([str(c) for c in cost.columns], name=DIMENSIONS.get(columns or ""))
    return cost


def per_subscription(rows: pd.DataFrame) -> pd.DataFrame:
    """Per subscription: cost, calls, cost per 1,000 calls and unpriced tokens, costliest first."""
    columns = ["subscription", "cost", "calls", "cost_per_1k_calls", "unpriced_tokens"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    out = money.summarise(labelled(rows), ["subscription"])
    priced_calls = rows.assign(priced_calls=rows["calls"].where(rows["unpriced_tokens"] <= 0, 0))
    calls = labelled(priced_calls).groupby("subscription")["priced_calls"].sum()
    out["cost_per_1k_calls"] = out["cost"] / out["subscription"].map(calls).where(lambda c: c > 0) * 1000
    out = out.sort_values(["cost", "subscription"], ascending=[False, True], na_position="last")
    return out[columns].reset_index(drop=True)
