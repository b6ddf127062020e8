"""The sidebar every page shares: time range, zone, granularity, filters, refresh.

Each widget is bound to a URL query parameter (``bind="query-params"``), so a view is a
shareable link and survives a reload. ``end=`` (not a widget) pins the end of a preset
range, for links to an incident and for deterministic tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from tokenboard.backends import Backend
from tokenboard.config import Settings
from tokenboard.safe import md
from tokenboard.ui import data
from tokenboard.views import timerange as tr
from tokenboard.views.labels import label

RANGE_CHOICES = (*tr.PRESETS, tr.CUSTOM)
GRANULARITY_CHOICES = (tr.AUTO, *tr.GRANULARITIES)
FILTER_KEYS = {"sub": "subscription", "api": "api", "model": "model"}
PENDING = "_tokenboard_pending_filters"


@dataclass(frozen=True)
class Filters:
    """What the sidebar selected: a UTC range, display zone, bin and dimension filters."""

    time_range: tr.TimeRange
    tz: str
    bin: timedelta
    subscriptions: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    incomplete_from: datetime | None = None

    def params(self, **extra: Any) -> dict[str, Any]:
        """Query parameters for these filters (``data.params_for`` keeps what a query takes)."""
        return {
            "start_time": self.time_range.start,
            "end_time": self.time_range.end,
            "bin_size": self.bin,
            "subscriptions": list(self.subscriptions),
            "apis": list(self.apis),
            "models": list(self.models),
            **extra,
        }

    def previous_params(self, **extra: Any) -> dict[str, Any]:
        before = self.time_range.previous()
        return self.params(start_time=before.start, end_time=before.end, **extra)

    @property
    def period(self) -> str:
        return tr.human_length(self.time_range.length)

    @property
    def label(self) -> str:
        return tr.range_label(self.time_range, self.tz)


def drill_to(subscriptions: list[str]) -> None:
    """Filter the page to these subscriptions on the next run (called from a chart or table click)."""
    st.session_state[PENDING] = {"sub": subscriptions}
    st.rerun()


def sidebar(backend: Backend, settings: Settings) -> Filters:
    for key, values in st.session_state.pop(PENDING, {}).items():
        st.session_state[key] = values  # before the widget exists, as Streamlit requires
    bar = st.sidebar
    bar.markdown("### :material/tune: Filters")
    now = datetime.now(UTC)
    pinned = tr.parse_instant(st.query_params.get("end", ""))
    zones = (
        tr.TIMEZONES
        if settings.display.timezone in tr.TIMEZONES
        else (settings.display.timezone, *tr.TIMEZONES)
    )
    preset = (
        bar.segmented_control(
            "Time range",
            RANGE_CHOICES,
            default="24h",
            required=True,
            key="range",
            bind="query-params",
            width="stretch",
        )
        or "24h"
    )
    tz = bar.selectbox(
        "Time zone", zones, index=zones.index(settings.display.timezone), key="tz", bind="query-params"
    )
    if preset == tr.CUSTOM:
        time_range = _custom_range(bar, tz, pinned or tr.live_end(now))
    else:
        end = pinned or tr.live_end(now)
        time_range = tr.preset_range(preset, end)
        if pinned:
            bar.caption(f"Ending at {tr.range_label(time_range, tz).split(' → ')[1]} (from the link).")
    granularity = bar.selectbox(
        "Granularity",
        GRANULARITY_CHOICES,
        key="bin",
        bind="query-params",
        format_func=lambda g: "auto" if g == tr.AUTO else g,
    )
    size = tr.bin_size(time_range, granularity)
    if granularity != tr.AUTO and tr.GRANULARITIES[granularity] != size:
        bar.caption(f"{granularity} bins are too fine for this range: showing {tr.describe_bin(size)}.")

    values, _ = data.run(
        backend, "dimension_values", {"start_time": time_range.start, "end_time": time_range.end}
    )
    chosen = {}
    for key, column in FILTER_KEYS.items():
        options = _options(values, column, st.session_state.get(key))
        chosen[key] = bar.multiselect(
            {"sub": "Subscription", "api": "API", "model": "Model"}[key],
            options,
            key=key,
            bind="query-params",
            format_func=label,
            placeholder="All",
        )
    if bar.button("Refresh data", icon=":material/refresh:", width="stretch"):
        data.clear()
        st.rerun()
    bar.caption(f"Data cached for {settings.query.cache_ttl_seconds} s · {md(backend.description)}")
    return Filters(
        time_range=time_range,
        tz=tz,
        bin=size,
        subscriptions=tuple(chosen["sub"]),
        apis=tuple(chosen["api"]),
        models=tuple(chosen["model"]),
        now=now,
        incomplete_from=tr.first_incomplete_bin(
            time_range, size, now, settings.query.ingestion_delay_seconds
        ),
    )


def _options(values: pd.DataFrame, column: str, selected: list[str] | None) -> list[str]:
    """Values seen in the range, busiest first, plus whatever is selected (so it stays visible)."""
    seen = (
        values.groupby(column)["tokens"].sum().sort_values(ascending=False).index.tolist()
        if len(values)
        else []
    )
    return list(dict.fromkeys([*seen, *(selected or [])]))


def _custom_range(bar: Any, tz: str, end: datetime) -> tr.TimeRange:
    zone = tr.zone(tz)
    end_local = end.astimezone(zone)
    default_to = datetime.combine(end_local.date() + timedelta(days=1), time())
    default_from = default_to - timedelta(days=7)
    start = bar.datetime_input(
        "From", value=default_from, key="from", bind="query-params", step=timedelta(hours=1)
    )
    stop = bar.datetime_input("To", value=default_to, key="to", bind="query-params", step=timedelta(hours=1))
    start_utc = (start or default_from).replace(tzinfo=zone).astimezone(UTC)
    stop_utc = (stop or default_to).replace(tzinfo=zone).astimezone(UTC)
    if stop_utc <= start_utc:
        bar.warning("“To” must be after “From”: showing the 24 hours before “To”.")
        start_utc = stop_utc - timedelta(hours=24)
    return tr.TimeRange(start_utc, stop_utc)
