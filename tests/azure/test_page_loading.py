"""How every page loads on the Azure path (the real SDK against the emulator, under AppTest):
its queries are in flight at the same time, never more than ``query.max_concurrent`` of
them, a failing query leaves the rest of the page standing, and pages and sessions opened
in one refresh window share results until Refresh asks for new ones."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import streamlit as st
from la_emulator import LogAnalyticsEmulator, RecordedQuery, marker
from streamlit.testing.v1 import AppTest
from streamlit_server import PAGES

from tokenboard.views.timerange import format_instant

# Round trips a page waits for when nothing bounds how many queries run at once: one, but on
# Throttling the what-if of limit planning is asked for a subscription the limit plan names.
ROUND_TRIPS = {"overview": 1, "usage": 1, "throttling": 2, "reports": 1, "budgets": 1}
# The query that fails in the failure test (Reports: the report's one table needs all its queries).
FAILING = {
    "overview": "tokens_over_time",
    "usage": "cost_basis",
    "throttling": "limit_hit_causes",
    "reports": "usage_pivot",
    "budgets": "cost_basis",
}


def open_page(path: Path, end: datetime | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=120)
    if end is not None:
        at.query_params["end"] = format_instant(end)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def round_trips(queries: list[RecordedQuery]) -> int:
    """The longest chain of queries each asked only after the one before it was answered."""
    depth: dict[int, int] = {}
    for i, q in sorted(enumerate(queries), key=lambda iq: iq[1].arrived):
        before = [depth[j] for j, p in enumerate(queries) if j in depth and p.answered <= q.arrived]
        depth[i] = 1 + max(before, default=0)
    return max(depth.values(), default=0)


def shown(at: AppTest) -> int:
    """Headline numbers, charts, tables, notes and choices on the page (not the sidebar)."""
    elements = ("metric", "plotly_chart", "dataframe", "info", "selectbox", "caption")
    return sum(len(at.main.get(kind)) for kind in elements)


@pytest.mark.parametrize("name", PAGES)
def test_a_page_waits_for_its_slowest_query_not_the_sum(
    name: str, azure_app: LogAnalyticsEmulator, demo_end, monkeypatch: pytest.MonkeyPatch
):
    azure_app.max_concurrent = 100  # neither the service nor the client holds any query back
    monkeypatch.setenv("TOKENBOARD_QUERY__MAX_CONCURRENT", "100")
    azure_app.latency = 1.0
    at = open_page(PAGES[name], demo_end)
    queries = azure_app.queries
    assert queries and all(q.status == 200 for q in queries)
    assert len({q.query for q in queries}) == len(queries)  # each asked once, however many sections
    assert round_trips(queries) == ROUND_TRIPS[name]
    assert azure_app.overlap() >= min(len(queries), 3)
    assert not at.error and shown(at)


def test_the_overview_asks_all_its_queries_at_once(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.latency = 1.0
    at = open_page(PAGES["overview"], demo_end)
    queries = azure_app.queries
    # Tokens and calls, gateway requests and costs, now and before; the data's coverage; tokens
    # over time. The filter choices and top subscriptions share the first query.
    assert len(queries) == 8 and all(q.status == 200 for q in queries)
    assert azure_app.overlap() == 5  # the service runs 5 at once; the others waited their turn
    assert round_trips(queries) == 2
    assert len(at.metric) == 10 and len(at.get("plotly_chart")) == 2


def test_no_more_queries_at_once_than_query_max_concurrent(
    azure_app: LogAnalyticsEmulator, demo_end, monkeypatch: pytest.MonkeyPatch
):
    azure_app.max_concurrent = 100  # the service would queue past 5: here only the client bounds
    azure_app.latency = 0.3
    monkeypatch.setenv("TOKENBOARD_QUERY__MAX_CONCURRENT", "3")
    at = open_page(PAGES["throttling"], demo_end)
    texts = [q.query for q in azure_app.queries]
    assert len(texts) >= 12 and len(set(texts)) == len(texts)  # every query of the page, each asked once
    assert azure_app.overlap() == 3
    assert not at.error and at.metric


@pytest.mark.parametrize("name", PAGES)
def test_one_failing_query_leaves_the_rest_of_the_page(name: str, azure_app: LogAnalyticsEmulator, demo_end):
    whole = shown(open_page(PAGES[name], demo_end))
    st.cache_data.clear()
    failing = FAILING[name]
    azure_app.set_mode("server_error", match=marker(failing))
    at = open_page(PAGES[name], demo_end)
    assert len(at.error) == 1
    assert f"server error running query '{failing}'" in at.error[0].value.replace("\\", "")  # unescaped
    assert 0 < shown(at) < whole  # only the failed query's part is missing
    assert at.title[0].value


def test_the_overview_without_tokens_over_time_keeps_its_numbers(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.set_mode("server_error", match=marker("tokens_over_time"))
    at = open_page(PAGES["overview"], demo_end)
    assert len(at.error) == 1
    assert len(at.metric) == 10  # the headline numbers
    assert len(at.get("plotly_chart")) == 1  # top subscriptions, not tokens over time
    assert any("Top subscriptions" in h.value for h in at.subheader)


def test_a_failure_every_query_shares_is_explained_once(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.set_mode("forbidden")
    at = open_page(PAGES["overview"], demo_end)
    assert len(at.error) == 1 and "Monitoring Reader" in at.error[0].value
    assert sum("applies here too" in c.value for c in at.caption) == 2  # tokens over time, top
    assert not at.metric


def test_pages_and_sessions_in_one_refresh_window_share_results(
    azure_app: LogAnalyticsEmulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TOKENBOARD_QUERY__REFRESH_SECONDS", "86400")  # live ranges end at midnight UTC
    if (86400 - time.time() % 86400) < 120:  # do not straddle the boundary
        time.sleep(130)
    first = open_page(PAGES["overview"])  # the live range: no end in the link
    asked = len(azure_app.queries)
    assert asked == 8
    later = open_page(PAGES["overview"])  # another session, seconds later
    assert len(azure_app.queries) == asked
    assert [m.value for m in later.metric] == [m.value for m in first.metric]
    open_page(PAGES["usage"])  # same range and filters: usage_pivot, tokens over time, costs
    usage_asked = len(azure_app.queries) - asked
    assert usage_asked == 2  # its costs per day and per chart bin; the rest came from the cache
    end = max(datetime.fromisoformat(q.timespan.split("/")[1]) for q in azure_app.queries)
    assert end == datetime.fromtimestamp((time.time() // 86400 + 1) * 86400, UTC)  # the next midnight


@pytest.mark.parametrize("name", ["overview", "throttling"])
def test_refresh_asks_again_and_shares_the_new_results(name: str, azure_app: LogAnalyticsEmulator, demo_end):
    at = open_page(PAGES[name], demo_end)
    asked = [q.query for q in azure_app.queries]
    next(b for b in at.sidebar.button if b.label == "Refresh data").click()
    at.run()
    assert not at.exception
    again = [q.query for q in azure_app.queries[len(asked) :]]
    assert sorted(again) == sorted(asked)  # the page's queries, each once
    open_page(PAGES[name], demo_end)  # someone else, after the refresh
    assert len(azure_app.queries) == 2 * len(asked)
