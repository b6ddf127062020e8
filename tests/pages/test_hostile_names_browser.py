"""Hostile names, in a real browser, on every page: shown as text, never linked, never loaded.

Subscription, API, model and metric names full of Markdown links and images, HTML and
``javascript:`` URLs go in through the real importer (a Logs-blade CSV export); a gateway answers
Test request with the same kind of text in its reply, headers and error message. On every page
(and in chart hover labels, the filter list, the headers table) no element may link to or load
any of it, the browser may request none of it, and the names must read as typed.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from browsertools import LINKS_AND_LOADS, SERVE, clean_environment, dashboard, free_port, settle
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokenboard import importer
from tokenboard.gateway.server import BackgroundServer
from tokenboard.store import Store
from tokenboard.views.timerange import format_instant

pytestmark = pytest.mark.browser

SUBSCRIPTIONS = [
    "[x](https://evil.example/md) ![p](https://evil.example/p.png)",  # the busiest
    '<a href="https://evil.example/html">h</a><img src="https://evil.example/i.png" onerror="alert(1)">',
    "[j](javascript:alert(1)) <a href='javascript:alert(2)'>j</a>",
    "https://evil.example/bare www.evil.example mail@evil.example",
]
APIS = ["<script>alert(3)</script>api", "![a](https://evil.example/api.png)"]
MODELS = ["<img src=https://evil.example/m.png>", "[m](https://evil.example/model) :material/home:"]
METRIC = "![metric](https://evil.example/metric.png) <b>Tokens</b>"
REPLY = "Sure! [click](https://evil.example/reply) ![r](https://evil.example/r.png) <img src=https://evil.example/x>"
MESSAGE = "<a href='https://evil.example/429'>Token limit</a> ![m](https://evil.example/msg.png)"
HEADER = "[h](https://evil.example/header) <img src=https://evil.example/h.png>"


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory, demo_end) -> Path:
    """A day of traffic under hostile names, imported through the real importer."""
    folder = tmp_path_factory.mktemp("hostile")
    metrics, requests = [], []
    for hour in range(24):
        ts = format_instant(demo_end - timedelta(hours=hour + 1))
        for i, sub in enumerate(SUBSCRIPTIONS):
            dims = {"Client Subscription": sub, "API ID": APIS[i % 2], "Model": MODELS[i % 2], "Region": "x"}
            total = 4_000 - 900 * i
            for name, value in (("Total Tokens", total), ("Prompt Tokens", total * 0.7),
                                ("Completion Tokens", total * 0.3), (METRIC, total * 0.1)):  # fmt: skip
                metrics.append([ts, name, value, 3, value, 1, value, 0, json.dumps(dims), "POST", 1, "apim"])
            req_dims = json.dumps({"Subscription Name": sub, "API Name": APIS[i % 2]})
            for n, code in enumerate(("200", "200", "429", "403")):
                requests.append([ts, f"{hour}-{i}-{n}", "POST", "/x", code, "", 12, req_dims, "POST", 1])
    data = folder / "data"
    store = Store(data)
    metric_header = [
        "timestamp", "name", "value", "valueCount", "valueSum", "valueMin", "valueMax", "valueStdDev",
        "customDimensions", "operation_Name", "itemCount", "cloud_RoleName",
    ]  # fmt: skip
    request_header = [
        "timestamp", "id", "name", "url", "resultCode", "success", "duration", "customDimensions",
        "operation_Name", "itemCount",
    ]  # fmt: skip
    for table, header, rows in (
        ("customMetrics", metric_header, metrics),
        ("requests", request_header, requests),
    ):
        result = importer.import_csv(write_csv(folder / f"{table}.csv", header, rows), table, store)
        assert result.rows == len(rows) and not result.bad_rows
    return data


@pytest.fixture(scope="module")
def hostile_gateway():
    """A gateway whose reply, headers and error message are hostile text."""

    async def chat(request):
        if request.path_params["api"] == "bad":
            return JSONResponse({"statusCode": 429, "message": MESSAGE}, 429, headers={"Retry-After": "60"})
        usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
        body = {"choices": [{"message": {"role": "assistant", "content": REPLY}}], "usage": usage}
        return JSONResponse(body, headers={"x-hostile": HEADER, "remaining-tokens": "88"})

    server = BackgroundServer(Starlette(routes=[Route("/{api}/chat/completions", chat, methods=["POST"])]))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def site(hostile_store, hostile_gateway, tmp_path_factory) -> str:
    port = free_port()
    env = clean_environment(
        TOKENBOARD_DATA_DIR=str(hostile_store),
        TOKENBOARD_SEED_ON_START="false",
        TOKENBOARD_GATEWAY_URL=hostile_gateway,
        TOKENBOARD_GATEWAY_SUBSCRIPTION_KEY="hostile-test-key",
        # Budgets and a quota under hostile names (their models have no price: named, unpriced).
        TOKENBOARD_BUDGETS=json.dumps({SUBSCRIPTIONS[0]: {"cost": 1}, SUBSCRIPTIONS[1]: {"tokens": 10_000}}),
        TOKENBOARD_LIMITS__TOKEN_QUOTA="50000",
        TOKENBOARD_LIMITS__TOKEN_QUOTA_PERIOD="Daily",
    )
    log = tmp_path_factory.mktemp("hostile-site") / "streamlit.log"
    with dashboard([*SERVE, "--server.port", str(port)], env, f"http://127.0.0.1:{port}", log) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    page = context.new_page()
    page.requested = []  # every URL the browser asked for
    page.on("request", lambda r: page.requested.append(r.url))
    yield page
    context.close()


def shown_text(page) -> str:
    return page.locator('[data-testid="stApp"]').inner_text().replace("\u2060", "")


def assert_nothing_links_or_loads(page, where: str, within: str = "*") -> None:
    """No element (``within``: a CSS selector, e.g. the hover layer) links to or loads hostile text."""
    assert page.evaluate(LINKS_AND_LOADS, within) == [], where
    fetched = [
        u for u in page.requested if "evil" in (urlsplit(u).hostname or "") or u.startswith("javascript:")
    ]
    assert fetched == [], where
    assert page.locator("svg a, .hoverlayer a").count() == 0, where


def hover_every_chart(page, where: str) -> None:
    """Show a hover label on each chart (they exist only while hovered) and check it."""
    charts = page.locator(".js-plotly-plot")
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        target = chart.locator(".barlayer .point path, .heatmaplayer image, .nsewdrag").first
        box = target.bounding_box()
        if not box:
            continue
        page.mouse.move(box["x"] + min(box["width"] / 2, 40), box["y"] + min(box["height"] / 2, 12))
        page.wait_for_timeout(150)
        assert_nothing_links_or_loads(page, f"{where}, chart {i} hovered", ".hoverlayer *")


def visit(page, url: str, selector: str, where: str) -> None:
    page.goto(url)
    settle(page, selector)
    assert page.locator('[data-testid="stException"]').count() == 0, where
    assert_nothing_links_or_loads(page, where)
    hover_every_chart(page, where)


def test_hostile_names_are_text_on_every_page(site, page, demo_end, tmp_path) -> None:
    end = f"end={format_instant(demo_end)}"

    visit(page, f"{site}/?{end}", ".js-plotly-plot", "Overview")
    text = shown_text(page)
    busiest = page.locator('[data-testid="stMetric"]', has_text="Busiest subscription")
    assert (
        busiest.locator('[data-testid="stMetricValue"]').inner_text().replace("\u2060", "")
        == SUBSCRIPTIONS[0]
    )
    assert f"Also emitted: {METRIC}" in text
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first.click()  # the filter list
    page.wait_for_selector('[role="option"]')
    options = page.locator('[role="option"]').all_inner_texts()
    assert set(SUBSCRIPTIONS) <= {o.replace("\u2060", "") for o in options}
    assert_nothing_links_or_loads(page, "Overview, subscription filter open")
    page.keyboard.press("Escape")

    # One visit: the heatmap of a hostile metric, drilled down to a hostile subscription by the URL.
    usage = f"{site}/Usage?{end}&view=Heatmap&measure={quote(METRIC)}&sub={quote(SUBSCRIPTIONS[1])}"
    visit(page, usage, ".js-plotly-plot", "Usage")
    legend = " ".join(page.locator(".legendtext").all_text_contents())
    ticks = page.locator(".ytick text").all_text_contents()
    assert METRIC in legend and SUBSCRIPTIONS[1] in ticks  # plotly labels read as typed, tags and all
    assert f"Drilled down to subscription {SUBSCRIPTIONS[1]}." in shown_text(page)
    page.screenshot(path=str(tmp_path / "usage.png"), full_page=True)

    visit(page, f"{site}/Throttling?{end}", ".js-plotly-plot", "Throttling")
    page.screenshot(path=str(tmp_path / "throttling.png"), full_page=True)
    visit(page, f"{site}/Reports?{end}", '[data-testid="stDataFrame"]', "Reports")
    visit(page, f"{site}/Budgets?{end}", ".js-plotly-plot", "Budgets")
    text = shown_text(page)
    assert f"Money budgets leave out unpriced tokens: {SUBSCRIPTIONS[0]}" in text
    assert page.locator(".js-plotly-plot").count() == 2  # the budget's burn-down and the quota's
    page.screenshot(path=str(tmp_path / "budgets.png"), full_page=True)

    visit(page, f"{site}/Test_request", "text=Send once", "Test request")
    page.get_by_role("button", name="Send once").click()
    page.wait_for_selector("text=Reply:")
    settle(page, "text=Reply:")
    page.get_by_text("All response headers").click()
    page.wait_for_selector('[data-testid="stTable"]')
    text = shown_text(page)
    assert REPLY in text and HEADER in text
    assert_nothing_links_or_loads(page, "Test request, reply and headers")
    page.screenshot(path=str(tmp_path / "test-request.png"), full_page=True)
    page.get_by_label("API path").fill("bad")
    page.get_by_label("API path").press("Enter")
    settle(page, "text=Send once")
    page.get_by_role("button", name="Send once").click()
    page.wait_for_selector("text=429")
    settle(page, "text=429")
    assert f"429: {MESSAGE}" in shown_text(page)
    assert_nothing_links_or_loads(page, "Test request, the gateway's error message")
