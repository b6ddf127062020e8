"""End to end: ``streamlit run app.py`` on a free port, every page in headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pagetools import ROOT

from tokenboard import reports
from tokenboard.views.timerange import format_instant

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# URL path -> what shows the page is drawn (Reports and Test request have tables and forms, not charts).
PAGES = {
    "overview": ("", ".js-plotly-plot"),
    "usage": ("Usage", ".js-plotly-plot"),
    "throttling": ("Throttling", ".js-plotly-plot"),
    "reports": ("Reports", '[data-testid="stDataFrame"]'),
    "test_request": ("Test_request", '[data-testid="stMainBlockContainer"] h1'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(demo_settings, seeded_store, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
    env.update(TOKENBOARD_DATA_DIR=str(demo_settings.store.data_dir), TOKENBOARD_SEED_ON_START="false")
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise AssertionError((tmp_path / "streamlit.log").read_text())
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def settle(page, selector: str = ".js-plotly-plot") -> None:
    """Wait for the page's content, then for the script run to finish."""
    page.wait_for_selector(selector, timeout=90_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000, polling=250
    )
    page.wait_for_timeout(500)


def test_every_page_renders_charts_without_errors(server, browser, tmp_path, demo_end):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    query = f"?end={format_instant(demo_end)}"
    for name, (path, selector) in PAGES.items():
        if name == "test_request" and not (ROOT / "pages" / "4_Test_request.py").exists():
            continue
        page.goto(f"{server}/{path}{query}")
        settle(page, selector)
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
    assert header[:8] == [c for c, _ in reports.MONTHLY_USAGE_COLUMNS]
    assert len(content.splitlines()) > 2
    context.close()


def test_clicking_a_bar_drills_down_to_that_subscription(server, browser, demo_end):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{server}/Usage?end={format_instant(demo_end)}")
    settle(page)
    top_chart = page.locator('[data-testid="stPlotlyChart"]').nth(1)
    top_chart.scroll_into_view_if_needed()
    box = top_chart.locator(".barlayer .point path").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("text=Drilled down to subscription", timeout=60_000)
    settle(page)
    assert "sub=" in page.url
    assert page.locator('[data-testid="stException"]').count() == 0
