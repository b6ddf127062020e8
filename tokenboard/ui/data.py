"""Query calls through ``st.cache_data``, keyed by the backend and the exact bound KQL text.

Pages run their sections at the same time (``page.section``), and a section with several
queries runs them at once (``run_all``); the queries themselves are bounded per backend to
``query.max_concurrent`` (the Log Analytics API runs 5 per user at once and queues the
rest, and every session of this process queries as the same identity). Only cache misses
take a slot, so a page whose results are cached never waits behind another page's queries.

The cached function is context-free (no ``st.*`` inside), so it may be called from the
worker threads of ``run_all``: that is how Streamlit's own background refresh calls it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import streamlit as st

from tokenboard import kql
from tokenboard.backends import Backend, QueryResult
from tokenboard.ui.backend import settings_key

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
REFRESHED_AT = "_tokenboard_refreshed_at"
NOTICES_SHOWN = "_tokenboard_notices_shown"
# Refetches after Refresh: one at a time per query text (striped), so two sections asking
# for the same result refetch it once.
_REFETCH_LOCKS = tuple(threading.Lock() for _ in range(64))
_notices_lock = threading.Lock()


@dataclass(frozen=True)
class Fetched:
    """A query's result and when it was fetched (``time.time()``), as the cache holds it."""

    result: QueryResult
    at: float


def params_for(query_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the query file declares (filters are shared, queries differ)."""
    declared = {p.name for p in kql.get_query(query_name).params}
    return {k: v for k, v in params.items() if k in declared}


def bind(backend: Backend, query_name: str, params: Mapping[str, Any]) -> kql.BoundQuery:
    return backend.bind(query_name, params_for(query_name, params))


def run(backend: Backend, query_name: str, params: Mapping[str, Any]) -> tuple[pd.DataFrame, kql.BoundQuery]:
    """The query's frame (from cache when fresh) and the bound query that produced it."""
    bound = bind(backend, query_name, params)
    return run_bound_all(backend, [bound])[0].frame, bound


def run_all(
    backend: Backend, *queries: tuple[str, Mapping[str, Any]]
) -> tuple[list[pd.DataFrame], list[kql.BoundQuery]]:
    """Several queries at once: their frames and their bound queries, in the order asked.

    The first failure (in that order) is raised once every query has finished.
    """
    bound = [bind(backend, name, params) for name, params in queries]
    return [result.frame for result in run_bound_all(backend, bound)], bound


def run_bound_all(backend: Backend, bound: Sequence[kql.BoundQuery]) -> list[QueryResult]:
    """Results of bound queries, fetched concurrently, under one spinner saying what loads."""
    refreshed_at = st.session_state.get(REFRESHED_AT, 0.0)
    what = ", ".join(dict.fromkeys(WHAT.get(b.name, b.name) for b in bound))
    with st.spinner(f"Loading {what}…"):
        if len(bound) == 1:
            results = [fetch(backend, bound[0], refreshed_at)]
        else:
            # Threads of this call alone: a cached result never queues behind other sessions'
            # queries (the backend's slots bound what runs). Every query finishes, and is
            # cached, before a failure is raised.
            with ThreadPoolExecutor(len(bound), thread_name_prefix="tokenboard-query") as pool:
                futures = [pool.submit(fetch, backend, b, refreshed_at) for b in bound]
            results = [future.result() for future in futures]
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        st.warning(warning, icon=":material/warning:")
    show_notices(backend)
    return results


def show_notices(backend: Backend) -> None:
    """The data source's notices (e.g. a damaged segment set aside), each once per page run."""
    with _notices_lock:  # sections run at the same time
        shown = st.session_state.setdefault(NOTICES_SHOWN, set())
        new = [notice for notice in backend.notices() if notice not in shown]
        shown.update(new)
    for notice in new:
        st.warning(notice, icon=":material/warning:")


def new_page_run() -> None:
    """Forget which notices this run has shown (each page run shows them afresh)."""
    st.session_state[NOTICES_SHOWN] = set()


def fetch(backend: Backend, bound: kql.BoundQuery, newer_than: float = 0.0) -> QueryResult:
    """One result from the cache, or from the backend on a miss or when older than ``newer_than``.

    Callable from any thread: no ``st.*`` display command runs here.
    """
    cached = _cached(backend.settings.query.cache_ttl_seconds)
    args = (settings_key(backend.settings), bound.text, backend, bound)
    fetched = cached(*args)
    if fetched.at < newer_than:  # Refresh was pressed after this was fetched
        with _REFETCH_LOCKS[hash(bound.text) % len(_REFETCH_LOCKS)]:
            fetched = cached(*args)
            if fetched.at < newer_than:
                cached.clear(*args)
                fetched = cached(*args)
    return fetched.result


def refresh() -> None:
    """Make every query this session runs from now on newer than this moment (the Refresh button).

    Only the results a page asks for are fetched again (and then shared with everyone);
    other pages' and other people's cached results stay until their TTL.
    """
    st.session_state[REFRESHED_AT] = time.time()


class _CachedQuery(Protocol):
    """``run_query`` below, as ``st.cache_data`` wraps it."""

    def __call__(self, backend_key: str, text: str, _backend: Backend, _bound: kql.BoundQuery) -> Fetched: ...

    def clear(self, *args: Any) -> None: ...


@functools.cache
def _cached(ttl: int) -> _CachedQuery:
    @st.cache_data(ttl=ttl, show_spinner=False, max_entries=512)
    def run_query(backend_key: str, text: str, _backend: Backend, _bound: kql.BoundQuery) -> Fetched:
        with _slots(backend_key, _backend.settings.query.max_concurrent):
            return Fetched(_backend.run_query(_bound), time.time())

    return run_query


@functools.cache
def _slots(backend_key: str, size: int) -> threading.BoundedSemaphore:
    """How many of one backend's queries may run at once, across every session of the process."""
    return threading.BoundedSemaphore(max(1, size))


def run_binned(
    backend: Backend,
    query_name: str,
    filters: Filters,
    maxima: tuple[str, ...] = (),
    each: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    **extra: Any,
) -> tuple[pd.DataFrame, list[kql.BoundQuery]]:
    """A query over time in the local bins of ``filters.bins``: run once per piece of the range
    with one UTC offset (``localtime``), the pieces at once, then regrouped; with the bound
    queries that ran.

    ``each`` works on every piece's rows before they are added up (e.g. pricing each UTC day)."""
    frames, bound = run_all(backend, *pieces(query_name, filters, **extra))
    return regroup(filters, frames, maxima, each), bound


def pieces(query_name: str, filters: Filters, **extra: Any) -> list[tuple[str, dict[str, Any]]]:
    """The queries of ``run_binned``, for a section that runs them together with others."""
    return [(query_name, filters.params(**extra, **piece.params())) for piece in filters.bins.pieces]


def regroup(
    filters: Filters,
    frames: Sequence[pd.DataFrame],
    maxima: tuple[str, ...] = (),
    each: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The frames of ``pieces`` (in order) as one frame in the local bins."""
    parts = [
        (piece, each(frame) if each is not None else frame)
        for piece, frame in zip(filters.bins.pieces, frames, strict=True)
    ]
    return filters.bins.regroup(parts, maxima=maxima)
