"""The sidebar every page shares: time range, zone, granularity, filters, refresh.

Each widget is bound to a URL query parameter (``bind="query-params"``), so a view is a
shareable link and survives a reload. ``end=`` (not a widget) pins the end of a preset
range, for links to an incident and for deterministic tests. What a link says is checked
before the widgets take it (``LINKS``, ``views/links.py``): the page names what it ignored.

The filter choices come from a query, which must not hold up the page's own queries: the
page is given the selected filters straight away (what the widgets hold, or the link's
values on a first visit) and the filter widgets fill in as a parallel fragment of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from tokenboard import localtime
from tokenboard.backends import Backend
from tokenboard.config import Settings
from tokenboard.safe import md
from tokenboard.ui import data, errors
from tokenboard.views import formats, links
from tokenboard.views import timerange as tr
from tokenboard.views.chart import Axis
from tokenboard.views.labels import label, unlabel
from tokenboard.views.overview import Coverage

RANGE_CHOICES = (*tr.PRESETS, tr.CUSTOM)
GRANULARITY_CHOICES = (tr.AUTO, *tr.GRANULARITIES)
FILTER_KEYS = {"sub": "subscription", "api": "api", "model": "model"}
FILTER_NAMES = {"sub": "Subscription", "api": "API", "model": "Model"}
PENDING = "_tokenboard_pending_filters"


def _instant(value: str) -> str | None:
    return None if tr.parse_instant(value) is not None else ""


def _zone(value: str) -> str | None:
    return None if localtime.is_zone(value) else ""


# What the sidebar's parameters accept in a link (pages add their own).
LINKS: dict[str, links.Rule] = {
    "range": links.one_of(RANGE_CHOICES),
    "tz": links.Rule(_zone),
    "bin": links.one_of(tr.describe_unit(g) if g != tr.AUTO else g for g in GRANULARITY_CHOICES),
    "end": links.Rule(_instant),
    "from": links.Rule(_instant),
    "to": links.Rule(_instant),
    **{key: links.anything(many=True) for key in FILTER_KEYS},
}


@dataclass(frozen=True)
class Filters:
    """What the sidebar selected: a UTC range, display zone, its local bins and dimension filters."""

    time_range: tr.TimeRange
    tz: str
    bins: localtime.Bins
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
            "subscriptions": list(self.subscriptions),
            "apis": list(self.apis),
            "models": list(self.models),
            **extra,
        }

    def previous_params(self, **extra: Any) -> dict[str, Any]:
        before = self.time_range.previous()
        return self.params(start_time=before.start, end_time=before.end, **extra)

    def coverage_params(self) -> dict[str, Any]:
        """The range ``data_coverage`` looks at: the previous period and as long again before it
        (a day at least), so a quiet start of the previous period does not read as missing data."""
        before = self.time_range.previous()
        return {"start_time": before.start - max(before.length, timedelta(days=1)), "end_time": before.end}

    def coverage(self, frame: pd.DataFrame, column: str) -> Coverage:
        """How much of the previous period ``data_coverage`` found data for (``metrics_first``...)."""
        return Coverage.of(frame, column, self.time_range.previous())

    @property
    def axis(self) -> Axis:
        return Axis(self.bins, self.incomplete_from)

    @property
    def period(self) -> str:
        return formats.length(self.time_range.length)

    @property
    def label(self) -> str:
        return tr.range_label(self.time_range, self.tz)

    @property
    def chosen(self) -> dict[str, tuple[str, ...]]:
        """The dimension filters in effect, by their name (``Subscription``...)."""
        picked = {"sub": self.subscriptions, "api": self.apis, "model": self.models}
        return {FILTER_NAMES[key]: values for key, values in picked.items() if values}


def drill_to(subscriptions: list[str]) -> None:
    """Filter the page to these subscriptions on the next run (called from a chart or table click)."""
    st.session_state[PENDING] = {"sub": subscriptions}
    st.rerun()


def link_params() -> dict[str, list[str]]:
    """The URL's parameters that no widget has taken yet (a link being opened), and ``end``."""
    return {
        key: st.query_params.get_all(key)
        for key in st.query_params
        if key == "end" or key not in st.session_state
    }


def sidebar(backend: Backend, settings: Settings) -> Filters:
    for key, values in st.session_state.pop(PENDING, {}).items():
        st.session_state[key] = values  # before the widget exists, as Streamlit requires
    bar = st.sidebar
    bar.markdown("### :material/tune: Filters")
    now = datetime.now(UTC)
    live_end = tr.live_end(now, settings.query.refresh_seconds)
    pinned = tr.parse_instant(st.query_params.get("end", ""))
    zones = _zones(settings.display.timezone)
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
    default_zone = settings.display.timezone if localtime.is_zone(settings.display.timezone) else "UTC"
    tz = bar.selectbox("Time zone", zones, index=zones.index(default_zone), key="tz", bind="query-params")
    if preset == tr.CUSTOM:
        time_range = _custom_range(bar, tz, pinned or live_end)
    else:
        time_range = tr.preset_range(preset, pinned or live_end)
        if pinned:
            bar.caption(f"Ending at {tr.range_label(time_range, tz).split(' → ')[1]} (from the link).")
    granularity = bar.selectbox(
        "Granularity",
        GRANULARITY_CHOICES,
        key="bin",
        bind="query-params",
        format_func=lambda g: g if g == tr.AUTO else tr.describe_unit(g),
    )
    unit = tr.bin_unit(time_range, granularity)
    if granularity != tr.AUTO and granularity != unit:
        bar.caption(
            f"{tr.describe_unit(granularity)} bins are too fine for this range: "
            f"showing {tr.describe_unit(unit)}."
        )

    chosen = {key: _selected(key) for key in FILTER_KEYS}
    filter_box = bar.container()
    if bar.button("Refresh data", icon=":material/refresh:", width="stretch"):
        data.refresh()  # before any query of this run starts
    bar.caption(
        f"Live ranges step every {formats.length(timedelta(seconds=settings.query.refresh_seconds))}; "
        f"results are cached for {settings.query.cache_ttl_seconds} s · {md(backend.description)}"
    )
    with filter_box:
        _filter_widgets(backend, {"start_time": time_range.start, "end_time": time_range.end}, chosen)
    bins = localtime.plan(time_range.start, time_range.end, tz, unit)
    return Filters(
        time_range=time_range,
        tz=tz,
        bins=bins,
        subscriptions=tuple(chosen["sub"]),
        apis=tuple(chosen["api"]),
        models=tuple(chosen["model"]),
        now=now,
        incomplete_from=bins.incomplete_from(now, settings.query.ingestion_delay_seconds),
    )


def _zones(configured: str) -> tuple[str, ...]:
    """The zones on offer: the usual ones, the configured one, and a valid one from the link."""
    linked = st.query_params.get("tz", "") if "tz" not in st.session_state else ""
    extra = [z for z in (configured, linked) if localtime.is_zone(z) and z not in tr.TIMEZONES]
    return tuple(dict.fromkeys([*tr.TIMEZONES, *extra]))


def _selected(key: str) -> list[str]:
    """What a filter holds: its state once the widget exists, else the link's values (raw)."""
    if key in st.session_state:
        return list(st.session_state[key])
    return list(dict.fromkeys(unlabel(v) for v in st.query_params.get_all(key)))


@st.fragment(parallel=True)
def _filter_widgets(backend: Backend, range_params: dict[str, Any], chosen: dict[str, list[str]]) -> None:
    """The subscription / API / model filters, offering the values seen in the range.

    Choices come from the unfiltered ``usage_pivot``, the very query (and cache entry) the
    pages' token totals use when no filter is set. A changed filter reruns the whole page.
    """
    values: pd.DataFrame | None
    try:
        values, _ = data.run(backend, "usage_pivot", range_params)
        values = values[values["metric"] == backend.settings.telemetry.total_metric]
    except errors.CAUGHT:
        values = None
        st.caption(":material/error: The filter choices could not be loaded.")
    for key, column in FILTER_KEYS.items():
        picked = st.multiselect(
            FILTER_NAMES[key],
            _options(values, column, chosen[key]),
            key=key,
            bind="query-params",
            format_func=label,
            placeholder="All",
        )
        missing = _without_data(values, column, picked)
        if missing:
            st.caption(
                f":material/info: No data in this range for {', '.join(md(label(v)) for v in missing)}; "
                "kept as a filter."
            )
        if picked != chosen[key]:
            st.rerun()  # the page's queries were asked with the old filters


def _options(values: pd.DataFrame | None, column: str, selected: list[str]) -> list[str]:
    """Values seen in the range, busiest first, plus whatever is selected (kept even without data)."""
    seen = (
        values.groupby(column)["tokens"].sum().sort_values(ascending=False).index.tolist()
        if values is not None and len(values)
        else []
    )
    return list(dict.fromkeys([*seen, *selected]))


def _without_data(values: pd.DataFrame | None, column: str, chosen: list[str]) -> list[str]:
    if values is None:  # not known: the choices could not be loaded
        return []
    seen = set(values[column]) if len(values) else set()
    return [v for v in chosen if v not in seen]


def _custom_range(bar: Any, tz: str, end: datetime) -> tr.TimeRange:
    zone = tr.zone(tz)
    end_local = end.astimezone(zone)
    default_to = datetime.combine(end_local.date() + timedelta(days=1), time())
    default_from = default_to - timedelta(days=7)
    start = bar.datetime_input(
        "From", value=default_from, key="from", bind="query-params", step=timedelta(hours=1)
    )
    stop = bar.datetime_input("To", value=default_to, key="to", bind="query-params", step=timedelta(hours=1))
    start_utc = _bounded((start or default_from).replace(tzinfo=zone).astimezone(UTC))
    stop_utc = _bounded((stop or default_to).replace(tzinfo=zone).astimezone(UTC))
    if stop_utc <= start_utc:
        bar.warning("“To” must be after “From”: showing the 24 hours before “To”.")
        start_utc = stop_utc - timedelta(hours=24)
    return tr.TimeRange(start_utc, stop_utc)


def _bounded(value: datetime) -> datetime:
    return min(max(value, tr.EARLIEST + timedelta(days=1)), tr.LATEST)


def page_links(extra: Mapping[str, links.Rule]) -> str | None:
    """The one notice naming every value of the link this page ignored (None: nothing ignored)."""
    params = link_params()
    rules = {**LINKS, **extra}
    ignored = links.ignored(params, rules)
    if st.session_state.get("range", params.get("range", ["24h"])[-1]) != tr.CUSTOM:
        ignored += [
            f"{key}={v} (only with range=custom)" for key in ("from", "to") for v in params.get(key, [])
        ]
    return links.notice(ignored)
