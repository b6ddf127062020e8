"""How a page loads on the Azure path (the real SDK against the emulator, under AppTest):
its queries run at the same time, never more than ``query.max_concurrent`` of them, a
failing query leaves the rest of the page standing, and pages and sessions opened in one
refresh window share results until Refresh asks for new ones."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from la_emulator import LogAnalyticsEmulator
from streamlit.testing.v1 import AppTest

from tokenboard.views.timerange import format_instant

ROOT = Path(__file__).resolve().parents[2]
OVERVIEW, USAGE, THROTTLING = (
    ROOT / "app.py",
    ROOT / "pages" / "1_Usage.py",
    ROOT / "pages" / "2_Throttling.py",
)


def open_page(path: Path, end: datetime | None = None) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=120)
    if end is not None:
        at.query_params["end"] = format_instant(end)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_queries_of_one_page_run_at_the_same_time(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.latency = 1.0
    at = open_page(OVERVIEW, demo_end)
    queries = azure_app.queries
    # Overview: tokens and calls now and before, gateway requests now and before, tokens over
    # time; the filter choices share the first query.
    assert len(queries) == 5 and all(q.status == 200 for q in queries)
    assert max(q.arrived for q in queries) < min(q.answered for q in queries)  # all in flight at once
    assert azure_app.overlap() == 5
    assert len(at.metric) == 8 and len(at.get("plotly_chart")) == 2


def test_no_more_queries_at_once_than_query_max_concurrent(
    azure_app: LogAnalyticsEmulator, demo_end, monkeypatch: pytest.MonkeyPatch
):
    azure_app.max_concurrent = 100  # the service would queue past 5: here only the client bounds
    azure_app.latency = 0.3
    monkeypatch.setenv("TOKENBOARD_QUERY__MAX_CONCURRENT", "3")
    at = open_page(THROTTLING, demo_end)
    texts = [q.query for q in azure_app.queries]
    assert len(texts) >= 9 and len(set(texts)) == len(texts)  # every query of the page, each asked once
    assert azure_app.overlap() == 3
    assert not at.error and at.metric


def test_one_failing_query_leaves_the_rest_of_the_page(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.set_mode("server_error", match="let split_by")  # only tokens_over_time
    at = open_page(OVERVIEW, demo_end)
    assert len(at.error) == 1
    assert "server error running query 'tokens_over_time'" in at.error[0].value
    assert len(at.metric) == 8  # the headline numbers
    assert len(at.get("plotly_chart")) == 1  # top subscriptions, not tokens over time
    assert any("Top subscriptions" in h.value for h in at.subheader)


def test_a_failure_every_query_shares_is_explained_once(azure_app: LogAnalyticsEmulator, demo_end):
    azure_app.set_mode("forbidden")
    at = open_page(OVERVIEW, demo_end)
    assert len(at.error) == 1 and "Monitoring Reader" in at.error[0].value
    assert sum("applies here too" in c.value for c in at.caption) == 2  # tokens over time, top
    assert not at.metric


def test_pages_and_sessions_in_one_refresh_window_share_results(
    azure_app: LogAnalyticsEmulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TOKENBOARD_QUERY__REFRESH_SECONDS", "86400")  # live ranges end at midnight UTC
    if (86400 - time.time() % 86400) < 120:  # do not straddle the boundary
        time.sleep(130)
    first = open_page(OVERVIEW)  # the live range: no end in the link
    asked = len(azure_app.queries)
    assert asked == 5
    later = open_page(OVERVIEW)  # another session, seconds later
    assert len(azure_app.queries) == asked
    assert [m.value for m in later.metric] == [m.value for m in first.metric]
    open_page(USAGE)  # same range, same filters: the same usage_pivot and tokens_over_time
    assert len(azure_app.queries) == asked
    end = max(datetime.fromisoformat(q.timespan.split("/")[1]) for q in azure_app.queries)
    assert end == datetime.fromtimestamp((time.time() // 86400 + 1) * 86400, UTC)  # the next midnight


def test_refresh_asks_again_and_shares_the_new_results(azure_app: LogAnalyticsEmulator, demo_end):
    at = open_page(OVERVIEW, demo_end)
    asked = [q.query for q in azure_app.queries]
    next(b for b in at.sidebar.button if b.label == "Refresh data").click()
    at.run()
    assert not at.exception
    again = [q.query for q in azure_app.queries[len(asked) :]]
    assert sorted(again) == sorted(asked)  # the page's queries, each once
    open_page(OVERVIEW, demo_end)  # someone else, after the refresh
    assert len(azure_app.queries) == 2 * len(asked)
