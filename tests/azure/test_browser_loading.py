"""The Azure path in a real browser: ``streamlit run`` against the emulator, headless Chromium.

A page shows what is ready while a slow query runs, and a second tab opened on the live
range (no ``end`` in the link) is answered from the cache: the emulator sees no query.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from la_emulator import LogAnalyticsEmulator
from streamlit_server import serve, settle

from tokenboard.views.timerange import format_instant

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SPINNER = '[data-testid="stSpinner"]'


@pytest.fixture
def server(azure_app: LogAnalyticsEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("TOKENBOARD_QUERY__REFRESH_SECONDS", "86400")  # live ranges end at midnight UTC
    env = {k: v for k, v in os.environ.items() if k.startswith("TOKENBOARD_")}
    with serve(ROOT / "app.py", env, tmp_path / "streamlit.log") as url:
        yield url


def test_headline_numbers_show_while_a_slow_chart_loads(server, browser, azure_app, demo_end):
    azure_app.set_mode("slow", delay=120, honor_wait=False, match="let split_by")  # until release()
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/?end={format_instant(demo_end)}")
    # The eight headline numbers are on screen while the chart's spinner still turns.
    seen = page.wait_for_function(
        f"""() => {{
            const spinners = [...document.querySelectorAll('{SPINNER}')].map(s => s.innerText);
            const metrics = document.querySelectorAll('[data-testid="stMetric"]').length;
            const charts = document.querySelectorAll('.js-plotly-plot').length;
            return metrics == 8 && spinners.some(s => s.includes("tokens over time")) && {{spinners, charts}};
        }}""",
        timeout=90_000,
    ).json_value()
    assert seen["charts"] <= 1  # at most top subscriptions so far
    azure_app.release()
    settle(page)
    spinners = page.locator(SPINNER)
    assert page.locator(".js-plotly-plot").count() == 2 and spinners.count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_a_second_tab_on_the_live_range_is_answered_from_the_cache(server, browser, azure_app):
    if (86400 - time.time() % 86400) < 180:  # do not straddle midnight UTC
        time.sleep(190)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    first = context.new_page()
    first.goto(f"{server}/")
    settle(first, '[data-testid="stMainBlockContainer"] h1')
    asked = len(azure_app.queries)
    assert asked == 5 and all(q.status == 200 for q in azure_app.queries)
    second = context.new_page()
    second.goto(f"{server}/")
    settle(second, '[data-testid="stMainBlockContainer"] h1')
    assert (
        second.locator('[data-testid="stSidebar"]').inner_text()
        == first.locator('[data-testid="stSidebar"]').inner_text()
    )
    assert len(azure_app.queries) == asked  # nothing new reached the query API
    third = context.new_page()
    third.goto(f"{server}/Usage")
    settle(third, '[data-testid="stMainBlockContainer"] h1')
    assert len(azure_app.queries) == asked  # another page on the same range, too
    context.close()
