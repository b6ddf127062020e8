"""A chart or table with what produced it: the bound KQL and a CSV of exactly its numbers.

Text from the data is shown as text: figures pass through ``safe.figure`` and metric
values through ``safe.md`` here, so pages cannot forget it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Literal

import pandas as pd
import streamlit as st

from tokenboard import safe
from tokenboard.export import to_csv
from tokenboard.kql import BoundQuery
from tokenboard.views import formats
from tokenboard.views.chart import Chart
from tokenboard.views.overview import Headline

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def metrics(headlines: Sequence[Headline]) -> None:
    """A row of ``st.metric`` boxes with their change against the previous period."""
    for column, h in zip(st.columns(len(headlines)), headlines, strict=True):
        column.metric(
            h.label,
            safe.md(h.value),
            h.delta,
            delta_color="inverse" if h.inverse else "normal",
            help=h.help or None,
            border=True,
        )


def chart(
    item: Chart, *, key: str, queries: Sequence[BoundQuery], filename: str, selectable: bool = False
) -> Any:
    """The figure, then its details; returns the selection event when ``selectable``."""
    event = figure(
        item.figure, key=key, on_select="rerun" if selectable else "ignore", selection_mode="points"
    )
    details(item.data, queries, key=key, filename=filename)
    return event


def figure(fig: Any, *, key: str, into: Any = None, **options: Any) -> Any:
    """A plotly figure with every text from the data escaped (``into``: a container, else the page)."""
    return (into or st).plotly_chart(safe.figure(fig), key=key, config=PLOTLY_CONFIG, **options)


def table(
    frame: pd.DataFrame,
    *,
    key: str,
    queries: Sequence[BoundQuery],
    filename: str,
    tz: str = "UTC",
    column_config: Mapping[str, Any] | None = None,
    selectable: bool = False,
    csv: pd.DataFrame | None = None,
    hide_index: bool = True,
    height: int | Literal["auto"] = "auto",
) -> Any:
    """A dataframe (times in the display zone, numbers in ``views/formats``) and its details
    (the CSV holds the frame as it is: UTC times, fractions 0..1)."""
    event = st.dataframe(
        shown(frame, tz, column_config),
        key=key,
        hide_index=hide_index,
        height=height,
        column_config=dict(column_config or {}),
        on_select="rerun" if selectable else "ignore",
        selection_mode="single-row",
        placeholder="",  # a missing value is an empty cell, never "None"
    )
    details(frame if csv is None else csv, queries, key=key, filename=filename)
    return event


def details(frame: pd.DataFrame, queries: Sequence[BoundQuery], *, key: str, filename: str) -> None:
    with st.expander("Data and KQL", icon=":material/code:"):
        st.download_button(
            "Download CSV",
            to_csv(frame),
            file_name=f"{filename}.csv",
            mime="text/csv",
            key=f"{key}-csv",
            icon=":material/download:",
            on_click="ignore",
        )
        for bound in queries:
            st.caption(f"`{bound.name}` — paste into the Logs blade of Application Insights")
            st.code(bound.text, language="sql", wrap_lines=True)


def shown(frame: pd.DataFrame, tz: str, column_config: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The frame as a table shows it: times as wall-clock times of the display zone, percent
    columns (``percents``) as fraction x 100, and nothing as an empty cell (never "None")."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert(tz).dt.tz_localize(None)
        elif out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if v is None or v is pd.NA or v != v else v)
    for column, config in (column_config or {}).items():
        number = config.get("type_config", {}) if isinstance(config, dict) else {}
        if column in out.columns and number.get("format") == formats.COLUMN_PERCENT:
            out[column] = out[column] * 100
    return out


# The columns a report row is about: pinned, so they stay in view when the table scrolls.
REPORT_KEYS = ("day", "month", "subscription", "api", "model")


def report_preview(table: pd.DataFrame, tz: str, currency: str, key: str) -> None:
    """A report's rows as a table: columns that hold the same value in every row (the range, the
    time zone) are said once above it instead of repeated; the row's keys are pinned."""
    same = [str(c) for c in table.columns if len(table) > 1 and table[c].nunique(dropna=False) == 1]
    if same:
        once = shown(table[same].head(1), tz)
        values = ", ".join(f"{c} {_cell(once[c].iloc[0])}" for c in same)
        st.caption(f"In every row: {values}" + (f" (times in {tz})" if tz != "UTC" else "") + ".")
    rest = table.drop(columns=same)
    columns = [str(c) for c in rest.columns]
    config: dict[str, Any] = {
        **times(*[c for c in columns if isinstance(rest[c].dtype, pd.DatetimeTZDtype)], tz=tz),
        **numbers(
            *[c for c in columns if c.endswith(("tokens", "calls", "requests", "_429", "_403", "limit"))]
        ),
        **money(*[c for c in columns if c.startswith("cost")], currency=currency),
        **percents(*[c for c in columns if c.startswith("share") or c.endswith(("rate", "of_limit"))]),
    }
    for column in REPORT_KEYS:
        if column in columns:
            config[column] = st.column_config.Column(column, pinned=True)
    st.dataframe(shown(rest, tz, config), hide_index=True, column_config=config, key=key, placeholder="")


def _cell(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Real) and not isinstance(value, bool) and value == value:
        number = float(value)
        return formats.whole(number) if number.is_integer() else f"{number:,}"
    return "" if value is None or value != value else str(value)


def times(*columns: str, tz: str) -> dict[str, Any]:
    return {
        c: st.column_config.DatetimeColumn(c.replace("_", " "), format="YYYY-MM-DD HH:mm", help=tz)
        for c in columns
    }


def numbers(*columns: str, fmt: str = formats.COLUMN_WHOLE) -> dict[str, Any]:
    """Whole numbers with thousands separators (tokens, calls, requests)."""
    return {c: st.column_config.NumberColumn(c.replace("_", " "), format=fmt) for c in columns}


def percents(*columns: str) -> dict[str, Any]:
    """Shares and rates (fractions 0..1 in the data), shown as ``12.3%``."""
    return {
        c: st.column_config.NumberColumn(c.replace("_", " "), format=formats.COLUMN_PERCENT) for c in columns
    }


def money(*columns: str, currency: str) -> dict[str, Any]:
    """Money columns in the one money format (``$1,234.56``; other currencies named in the help)."""
    fmt = formats.column_money(currency)
    return {
        c: st.column_config.NumberColumn(c.replace("_", " "), format=fmt, help=f"in {currency}")
        for c in columns
    }


def choice(label: str, options: Mapping[str, str], default: str, key: str) -> str:
    """One of ``options`` (value -> label) as a segmented control kept in the URL."""
    picked = st.segmented_control(
        label,
        list(options),
        format_func=lambda value: options[value],
        default=default,
        required=True,
        key=key,
        bind="query-params",
    )
    return str(picked or default)
