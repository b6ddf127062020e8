"""Query calls through ``st.cache_data``, keyed by the backend and the exact bound KQL text."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from tokenboard import kql
from tokenboard.backends import Backend, QueryResult
from tokenboard.ui.backend import settings_key

NOTICES_SHOWN = "_tokenboard_notices_shown"

if TYPE_CHECKING:
    from tokenboard.ui.sidebar import Filters

# What the spinner says while each query runs.
WHAT = {
    "call_counts": "call counts",
    "cost_basis": "costs",
    "daily_usage": "daily usage",
    "data_coverage": "how far back the data goes",
    "dimension_values": "subscriptions, APIs and models",
    "limit_hit_causes": "who refused the calls",
    "limit_hits": "limit hits by subscription",
    "limit_plan": "tokens per minute by subscription",
    "monthly_usage": "monthly usage",
    "peak_minute_tokens": "peak minutes",
    "peak_tokens_over_time": "peak tokens over time",
    "request_totals": "gateway request totals",
    "requests_over_time": "gateway requests over time",
    "retry_calls": "the calls around each 429",
    "throttled_minutes": "throttled minutes",
    "tokens_over_time": "tokens over time",
    "top_consumers": "top consumers",
    "usage_pivot": "token usage",
}


def params_for(query_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the query file declares (filters are shared, queries differ)."""
    declared = {p.name for p in kql.get_query(query_name).params}
    return {k: v for k, v in params.items() if k in declared}


def bind(backend: Backend, query_name: str, params: Mapping[str, Any]) -> kql.BoundQuery:
    return backend.bind(query_name, params_for(query_name, params))


def run(backend: Backend, query_name: str, params: Mapping[str, Any]) -> tuple[pd.DataFrame, kql.BoundQuery]:
    """The query's frame (from cache when fresh) and the bound query that produced it."""
    bound = bind(backend, query_name, params)
    return run_bound(backend, bound).frame, bound


def run_bound(backend: Backend, bound: kql.BoundQuery) -> QueryResult:
    with st.spinner(f"Loading {WHAT.get(bound.name, bound.name)}…"):
        result = _cached(backend.settings.query.cache_ttl_seconds)(
            settings_key(backend.settings), bound.text, backend, bound
        )
    for warning in result.warnings:
        st.warning(warning, icon=":material/warning:")
    show_notices(backend)
    return result


def show_notices(backend: Backend) -> None:
    """The data source's notices (e.g. a damaged segment set aside), each once per page run."""
    shown = st.session_state.setdefault(NOTICES_SHOWN, set())
    for notice in backend.notices():
        if notice not in shown:
            shown.add(notice)
            st.warning(notice, icon=":material/warning:")


def new_page_run() -> None:
    """Forget which notices this run has shown (each page run shows them afresh)."""
    st.session_state[NOTICES_SHOWN] = set()


@functools.cache
def _cached(ttl: int) -> Callable[[str, str, Backend, kql.BoundQuery], QueryResult]:
    @st.cache_data(ttl=ttl, show_spinner=False, max_entries=512)
    def run_query(backend_key: str, text: str, _backend: Backend, _bound: kql.BoundQuery) -> QueryResult:
        return _backend.run_query(_bound)

    return run_query


def clear() -> None:
    """Forget every cached query result (the Refresh button)."""
    st.cache_data.clear()


def run_binned(
    backend: Backend,
    query_name: str,
    filters: Filters,
    maxima: tuple[str, ...] = (),
    each: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    **extra: Any,
) -> tuple[pd.DataFrame, list[kql.BoundQuery]]:
    """A query over time in the local bins of ``filters.bins``: run once per piece of the range
    with one UTC offset (``localtime``), then regrouped; with the bound queries that ran.

    ``each`` works on every piece's rows before they are added up (e.g. pricing each UTC day)."""
    bins = filters.bins
    parts, bound = [], []
    for piece in bins.pieces:
        frame, query = run(backend, query_name, filters.params(**extra, **piece.params()))
        parts.append((piece, each(frame) if each is not None else frame))
        bound.append(query)
    return bins.regroup(parts, maxima=maxima), bound
