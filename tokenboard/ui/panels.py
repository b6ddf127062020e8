"""A chart or table with what produced it: the bound KQL and a CSV of exactly its numbers.

Text from the data is shown as text: figures pass through ``safe.figure`` and metric
values through ``safe.md`` here, so pages cannot forget it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from tokenboard import safe
from tokenboard.export import to_csv
from tokenboard.kql import BoundQuery
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
    """A dataframe (times shown in the display zone) and its details (CSV in UTC)."""
    event = st.dataframe(
        local_times(frame, tz),
        key=key,
        hide_index=hide_index,
        height=height,
        column_config=dict(column_config or {}),
        on_select="rerun" if selectable else "ignore",
        selection_mode="single-row",
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


def local_times(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Datetime columns as wall-clock times of the display zone."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert(tz).dt.tz_localize(None)
    return out


def times(*columns: str, tz: str) -> dict[str, Any]:
    return {
        c: st.column_config.DatetimeColumn(c.replace("_", " "), format="YYYY-MM-DD HH:mm", help=tz)
        for c in columns
    }


def numbers(*columns: str, fmt: str = "localized") -> dict[str, Any]:
    return {c: st.column_config.NumberColumn(c.replace("_", " "), format=fmt) for c in columns}


def percents(*columns: str) -> dict[str, Any]:
    return {c: st.column_config.NumberColumn(c.replace("_", " "), format="percent") for c in columns}


CURRENCY_FORMATS = {"USD": "dollar", "EUR": "euro", "JPY": "yen"}


def money(*columns: str, currency: str) -> dict[str, Any]:
    """Money columns in the currency's own format (others: plain numbers, the currency named)."""
    fmt = CURRENCY_FORMATS.get(currency.upper(), "%.2f")
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
