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
from la_emulator import LogAnalyticsEmulator, marker
from playwright.sync_api import expect
from streamlit_server import serve, settle

from tokenboard.views.timerange import format_instant

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SPINNER = '[data-testid="stSpinner"]'
PAGES = ["", "Usage", "Throttling"]  # the Overview, and two pages on the same range


@pytest.fixture
def server(azure_app: LogAnalyticsEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("TOKENBOARD_QUERY__REFRESH_SECONDS", "86400")  # live ranges end at midnight UTC
    env = {k: v for k, v in os.environ.items() if k.startswith("TOKENBOARD_")}
    with serve(ROOT / "app.py", env, tmp_path / "streamlit.log") as url:
        yield url


def test_headline_numbers_show_while_a_slow_chart_loads(server, browser, azure_app, demo_end):
    azure_app.set_mode(
        "slow", delay=120, honor_wait=False, match=marker("tokens_over_time")
    )  # until release()
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/?end={format_instant(demo_end)}")
    # The ten headline numbers are on screen while the chart's spinner still turns.
    seen = page.wait_for_function(
        f"""() => {{
            const spinners = [...document.querySelectorAll('{SPINNER}')].map(s => s.innerText);
            const metrics = document.querySelectorAll('[data-testid="stMetric"]').length;
            const charts = document.querySelectorAll('.js-plotly-plot').length;
            const waiting = spinners.some(s => s.includes("tokens over time"));
            return metrics == 10 && waiting && {{spinners, charts}};
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
    first = [context.new_page() for _ in PAGES]
    for tab, path in zip(first, PAGES, strict=True):
        tab.goto(f"{server}/{path}")
        settle(tab, '[data-testid="stMainBlockContainer"] h1')
    asked = len(azure_app.queries)
    assert asked >= 10 and all(q.status == 200 for q in azure_app.queries)
    for path, before in zip(PAGES, first, strict=True):
        second = context.new_page()
        second.goto(f"{server}/{path}")
        settle(second, '[data-testid="stMainBlockContainer"] h1')
        for shown in ("h1", '[data-testid="stMetricValue"]', '[data-testid="stCaptionContainer"]'):
            # Sections draw on their own after the run settles: wait for them, up to the timeout.
            expect(second.locator(shown)).to_have_text(
                before.locator(shown).all_inner_texts(), use_inner_text=True, timeout=60_000
            )
    assert len(azure_app.queries) == asked  # nothing new reached the query API
    context.close()
