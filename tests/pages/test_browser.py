"""End to end: the dashboard as ``./scripts/run`` starts it, every page in headless Chromium."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browsertools import SERVE, clean_environment, dashboard, free_port, settle

from tokenboard import reports
from tokenboard.views.timerange import format_instant

pytestmark = pytest.mark.browser

# URL path -> what shows the page is drawn (Reports and Test request have tables and forms, not charts).
PAGES = {
    "overview": ("", ".js-plotly-plot"),
    "usage": ("Usage", ".js-plotly-plot"),
    "throttling": ("Throttling", ".js-plotly-plot"),
    "reports": ("Reports", '[data-testid="stDataFrame"]'),
    "test_request": ("Test_request", '[data-testid="stMainBlockContainer"] h1'),
    "budgets": ("Budgets", ".js-plotly-plot"),
}


@pytest.fixture(scope="module")
def server(demo_settings, seeded_store, tmp_path_factory):
    """The dashboard as ``./scripts/run`` starts it: local mode, no sign-in, 127.0.0.1 only."""
    port = free_port()
    # A daily token quota, so the Budgets page draws both burn-downs: budget and quota.
    env = clean_environment(
        TOKENBOARD_DATA_DIR=str(demo_settings.store.data_dir),
        TOKENBOARD_SEED_ON_START="false",
        TOKENBOARD_LIMITS__TOKEN_QUOTA="2000000",
        TOKENBOARD_LIMITS__TOKEN_QUOTA_PERIOD="Daily",
    )
    log = tmp_path_factory.mktemp("browser") / "streamlit.log"
    with dashboard([*SERVE, "--server.port", str(port)], env, f"http://127.0.0.1:{port}", log) as url:
        yield url


# Anything that reads as a number or a name and is cut off ("woodgrove-ban…"), and every table
# that scrolls sideways (its data-testid index). At 1440 px no table scrolls but the report
# preview, whose key columns are pinned.
CUT_OFF = """() => {
  const cut = [];
  const texts = '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *,'
    + ' [data-testid="stMetricLabel"] *, button p, [data-testid="stCaptionContainer"], h1, h2, h3,'
    + ' [data-testid="stMarkdownContainer"] p';
  for (const el of document.querySelectorAll(texts)) {
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) cut.push(el.textContent.trim());
  }
  const scrolled = [];
  document.querySelectorAll('[data-testid="stDataFrame"]').forEach((grid, i) => {
    const s = grid.querySelector('.dvn-scroller');
    if (s && s.scrollWidth > s.clientWidth + 1) scrolled.push(i);
  });
  return {cut, scrolled};
}"""


def test_every_page_renders_without_errors_or_cut_off_values(server, browser, tmp_path, demo_end):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    query = f"?end={format_instant(demo_end)}&range=7d"
    for width in (1280, 1440):
        page.set_viewport_size({"width": width, "height": 4200})  # the whole page: the main area scrolls
        for name, (path, selector) in PAGES.items():
            page.goto(f"{server}/{path}{query}")
            settle(page, selector)
            sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
            assert "Local mode: listening on 127.0.0.1 only" in sidebar, name  # and no sign-in asked
            assert page.get_by_role("button", name="Sign in").count() == 0, name
            if selector == ".js-plotly-plot":
                assert page.locator(".js-plotly-plot").count() >= 2, name
            assert page.locator('[data-testid="stException"]').count() == 0, name
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, name
            found = page.evaluate(CUT_OFF)
            assert found["cut"] == [], (name, width, found["cut"])
            if width >= 1440:  # tables show all their columns; the report preview pins its keys
                assert found["scrolled"] == ([0] if name == "reports" and found["scrolled"] else []), name
            page.screenshot(path=str(tmp_path / f"{name}-{width}.png"))
        # A long subscription name as a headline value: filtered to it, it is the busiest.
        page.goto(f"{server}/{query}&sub=woodgrove-bank-prod")
        settle(page)
        assert "woodgrove-bank-prod" in page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert page.evaluate(CUT_OFF)["cut"] == [], width

    # The report download, through the browser.
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{server}/Reports{query}&report=Monthly+chargeback")
    settle(page, '[data-testid="stDataFrame"]')
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").first.click()
    content = Path(info.value.path()).read_bytes()
    header = content.decode("utf-8").splitlines()[0].split(",")
    documented = [c for c, _ in reports.MONTHLY_USAGE_COLUMNS]
    assert header[: len(documented)] == documented
    assert len(content.splitlines()) > 2
    context.close()


def test_clicking_a_bar_drills_down_to_that_subscription(server, browser, demo_end):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/Usage?end={format_instant(demo_end)}")
    settle(page)
    top_chart = page.locator('[data-testid="stPlotlyChart"]').nth(2)  # tokens, cost, top consumers
    top_chart.scroll_into_view_if_needed()
    box = top_chart.locator(".barlayer .point path").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("text=Drilled down to subscription", timeout=60_000)
    settle(page)
    assert "sub=" in page.url
    assert page.locator('[data-testid="stException"]').count() == 0


def plotted(values: list[float] | dict[str, str]) -> list[float]:
    """A trace's numbers as the browser holds them: a list, or plotly's typed array (base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return values


def test_a_gap_in_the_data_is_drawn_as_zeros(server, browser, demo_rows, demo_end):
    # A quiet Saturday night hour of the demo: some minutes hold no calls at all.
    end = demo_end - timedelta(hours=39)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/Usage?end={format_instant(end)}&range=1h&bin=1m")
    settle(page)
    traces = page.evaluate(
        "() => document.querySelectorAll('.js-plotly-plot')[0].data"
        ".map(trace => ({name: trace.name, x: trace.x, y: trace.y}))"
    )
    total = next(t for t in traces if t["name"] == "Total Tokens")
    shown = dict(zip((pd.Timestamp(x) for x in total["x"]), plotted(total["y"]), strict=True))
    rows = demo_rows.metrics[demo_rows.metrics["name"] == "Total Tokens"]
    minutes = pd.date_range(pd.Timestamp(end) - pd.Timedelta(hours=1), end, freq="min", inclusive="left")
    busy = set(rows["timestamp"].dt.floor("min"))
    quiet = [m for m in minutes if m not in busy]
    assert len(quiet) >= 5  # the hour has real gaps
    assert sorted(shown) == [m.tz_localize(None) for m in minutes]  # a point for every minute
    assert [shown[m.tz_localize(None)] for m in quiet] == [0] * len(quiet)  # drawn at zero
    assert all(shown[m.tz_localize(None)] > 0 for m in minutes if m in busy)


def test_ignored_link_values_are_named_in_one_notice(server, browser, demo_end):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/?end={format_instant(demo_end)}&range=zzz&tz=Mars/Base&top=99")
    settle(page)
    notice = page.locator('[data-testid="stAlertContentWarning"]', has_text="Ignored from the link")
    assert notice.count() == 1
    assert "Ignored from the link: range=zzz, tz=Mars/Base, top=99." in notice.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.goto(f"{server}/Throttling?end=0001-01-01T00:00:00Z")
    page.wait_for_selector("text=Ignored from the link: end=0001-01-01T00:00:00Z", timeout=90_000)
    assert page.locator('[data-testid="stException"]').count() == 0
