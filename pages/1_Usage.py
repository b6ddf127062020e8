"""Usage, for product owners: who uses how many tokens, on which API and model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tokenboard import kql, money
from tokenboard.safe import md
from tokenboard.ui import data, page, panels
from tokenboard.ui.sidebar import drill_to
from tokenboard.views import costs, usage
from tokenboard.views.labels import DIMENSIONS, label, unlabel

p = page.start("Usage", "📈", "Tokens by subscription, API and model", links=usage.LINKS)
f, settings, backend = p.filters, p.settings, p.backend


def spend() -> tuple[pd.DataFrame, kql.BoundQuery]:
    """Cost per subscription, API and model, each UTC day at its rate (one query for the page)."""
    basis, basis_q = data.run(backend, "cost_basis", f.params(bin_size=costs.DAY))
    return money.priced(money.by_subscription(basis), settings), basis_q


@page.section
def drilled_down() -> None:
    pivot_frame, _ = data.run(backend, "usage_pivot", f.params())
    if pivot_frame.empty:
        page.empty(f)
    if len(f.subscriptions) == 1:
        row = st.container(horizontal=True, vertical_alignment="center")
        row.info(
            f"Drilled down to subscription **{md(label(f.subscriptions[0]))}**.", icon=":material/filter_alt:"
        )
        if row.button("Show all subscriptions", icon=":material/close:", width="content"):
            drill_to([])


@page.section
def tokens_over_time() -> None:
    split = panels.choice("Stack by", usage.SPLITS, "metric", key="split")
    series, series_q = data.run_binned(backend, "tokens_over_time", f, split_by=split)
    chart = usage.tokens_over_time(series, split, settings, f.axis)
    panels.chart(chart, key="usage-tokens", queries=series_q, filename=f"tokens_over_time_by_{split}")
    if split == "metric":
        st.caption(
            "Prompt and completion are stacked; the dashed line is Total Tokens. Other categories "
            "(cached, reasoning) are dotted: they overlap prompt/completion and are not stacked."
        )


@page.section
def cost_over_time() -> None:
    cost_split = panels.choice("Stack cost by", costs.SPLITS, "part", key="cost_split")
    spend_by_bin, by_bin_q = data.run_binned(  # each part of a bin in one UTC day, priced at its rate
        backend,
        "cost_basis",
        f,
        each=lambda rows: money.priced(rows, settings),
        split_by=costs.QUERY_SPLITS.get(cost_split, cost_split),
    )
    chart = costs.over_time(spend_by_bin, cost_split, settings.currency, f.axis)
    panels.chart(chart, key="usage-cost", queries=by_bin_q, filename=f"cost_over_time_by_{cost_split}")
    if named := costs.unpriced_text(spend()[0]):
        st.caption(f"Not in the cost: {md(named)}. Give them a price in `[prices]`.")


@page.section
def pivot() -> None:
    dims = list(DIMENSIONS)
    c1, c2, c3, c4 = st.columns([1, 1, 1.3, 1])
    rows = c1.selectbox("Rows", dims, format_func=DIMENSIONS.get, key="rows", bind="query-params")
    cols = c2.selectbox(
        "Columns",
        ["none", *[d for d in dims if d != rows]],
        index=1,
        format_func=lambda d: usage.NO_COLUMNS if d == "none" else DIMENSIONS[d],
        key="cols",
        bind="query-params",
    )
    view = (
        c4.segmented_control(
            "View", usage.VIEWS, default="Table", required=True, key="view", bind="query-params"
        )
        or "Table"
    )
    pivot_frame, pivot_q = data.run(backend, "usage_pivot", f.params())
    linked = st.query_params.get("measure") if "measure" not in st.session_state else None
    measure = c3.selectbox(
        "Measure",
        list(dict.fromkeys([*usage.measures(pivot_frame, settings, linked), costs.COST])),
        key="measure",
        bind="query-params",
    )
    across = None if cols == "none" else cols
    is_cost = measure == costs.COST
    if is_cost:  # the cost sections below ask for the same costs at the same time
        spent, basis_q = spend()
        table, pivot_queries = costs.pivot(spent, rows, across), [basis_q]
        cells = panels.money(*table.columns, currency=settings.currency)
    else:
        table, pivot_queries = usage.pivot(pivot_frame, rows, across, measure, settings), [pivot_q]
        cells = panels.numbers(*table.columns)
    csv = table.reset_index()
    if view == "Heatmap":
        figure = usage.heatmap(table, measure, ",.2f" if is_cost else ",.0f")
        panels.figure(figure, key="usage-heatmap")
        panels.details(csv, pivot_queries, key="usage-pivot", filename="usage_pivot")
    else:
        panels.table(
            table,
            key="usage-pivot",
            queries=pivot_queries,
            filename="usage_pivot",
            csv=csv,
            hide_index=False,
            column_config=cells,
            height=min(35 * len(table) + 38, 760),
        )
    if is_cost:
        st.caption("A cell that reads None has tokens but no price for them: it is not $0.")


@page.section
def consumers() -> None:
    pivot_frame, pivot_q = data.run(backend, "usage_pivot", f.params())
    top = usage.consumers(pivot_frame, settings)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Top consumers")
        st.caption(usage.TOP_ORDER)
        n = st.slider(
            "How many", usage.TOP_MIN, usage.TOP_MAX, usage.TOP_DEFAULT, key="top", bind="query-params"
        )
        chart = usage.top_consumers(top, n)
        event = panels.chart(
            chart, key="usage-top", queries=[pivot_q], filename="top_consumers", selectable=True
        )
        picked = usage.selected_subscription(event, chart.data)
        if picked is not None and [unlabel(picked)] != list(f.subscriptions):
            drill_to([unlabel(picked)])
        st.caption("Click a bar to drill down to that subscription.")
    with right:
        st.subheader("Prompt : completion")
        chart = usage.prompt_completion_ratio(top.head(n))
        panels.chart(chart, key="usage-ratio", queries=[pivot_q], filename="prompt_completion_ratio")
        st.caption(
            f"Prompt tokens per completion token of the top {n}, highest first: "
            "high means long prompts, short answers."
        )


@page.section
def cost_per_subscription() -> None:
    spent, basis_q = spend()
    panels.table(
        costs.per_subscription(spent),
        key="usage-cost-per-sub",
        queries=[basis_q],
        filename="cost_by_subscription",
        column_config={
            **panels.money("cost", "cost_per_1k_calls", currency=settings.currency),
            **panels.numbers("calls", "unpriced_tokens"),
        },
    )
    st.caption("Cost per 1,000 calls counts the calls of priced tokens only; unpriced tokens are left out.")


drilled_down()
st.subheader("Tokens over time")
tokens_over_time()
st.subheader("Cost over time")
cost_over_time()
st.subheader("Pivot")
st.caption(usage.PIVOT_ORDER)
pivot()
consumers()
st.subheader("Cost by subscription")
cost_per_subscription()
