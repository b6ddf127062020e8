"""End to end: the dashboard as ``./scripts/run`` starts it, every page in headless Chromium."""

from __future__ import annotations

from pathlib import Path

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


def test_every_page_renders_charts_without_errors(server, browser, tmp_path, demo_end):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    query = f"?end={format_instant(demo_end)}"
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
        page.screenshot(path=str(tmp_path / f"{name}.png"))
        page.set_viewport_size({"width": 1440, "height": 3600})  # the main area scrolls inside the page
        page.wait_for_timeout(800)
        page.screenshot(path=str(tmp_path / f"{name}-full.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})

    # The report download, through the browser.
    page.goto(f"{server}/Reports{query}&report=Monthly+chargeback&range=7d")
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
