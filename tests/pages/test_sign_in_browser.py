"""Sign-in end to end: a real OpenID Connect provider on loopback, the container's start command,
headless Chromium.

`oidc-provider-mock` plays the identity provider with three people: a viewer, an operator (both
by the ``roles`` claim, as Entra ID sends app roles) and someone on no allow-list. The dashboard
is started by ``scripts/serve`` (every interface, sign-in from ``TOKENBOARD_AUTH_*``), as the
container starts it. One provider and one dashboard serve the whole module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from browsertools import clean_environment, dashboard, free_port, wait_for
from pagetools import ROOT

pytestmark = pytest.mark.browser

PEOPLE = {
    "vera": {"email": "vera@contoso.example", "name": "Vera Viewer", "roles": ["Tokenboard.Viewer"]},
    "otto": {"email": "otto@contoso.example", "name": "Otto Operator", "roles": ["Tokenboard.Operator"]},
    "mallory": {"email": "mallory@elsewhere.example", "name": "Mallory", "roles": ["Everyone"]},
}
READ_PAGES = ["Overview", "Usage", "Throttling", "Reports", "Budgets"]
PROMPT = "Token usage and throttling of the LLM gateway. Sign in to continue."


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> str:
    """oidc-provider-mock on a free loopback port, with the three people predefined."""
    port = free_port()
    claims = [arg for sub, c in PEOPLE.items() for arg in ("--user-claims", json.dumps({"sub": sub, **c}))]
    command = [str(Path(sys.executable).parent / "oidc-provider-mock"), "-p", str(port), "-H", "127.0.0.1"]
    log = tmp_path_factory.mktemp("oidc") / "oidc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, *claims], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/.well-known/openid-configuration", process, log)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def site(provider, demo_settings, seeded_store, tmp_path_factory) -> str:
    """The dashboard as the container starts it (scripts/serve), signing in through ``provider``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # the browser must use exactly the redirect URI's host
    env = clean_environment(
        PORT=str(port),
        TOKENBOARD_DATA_DIR=str(demo_settings.store.data_dir),
        TOKENBOARD_SEED_ON_START="false",
        TOKENBOARD_ACCESS__ALLOWED_CLAIM_VALUES="Tokenboard.Viewer",
        TOKENBOARD_ACCESS__OPERATOR_CLAIM_VALUES="Tokenboard.Operator",
        TOKENBOARD_ACCESS__CONTACT="the platform team",
        TOKENBOARD_AUTH_REDIRECT_URI=f"{url}/oauth2callback",
        TOKENBOARD_AUTH_COOKIE_SECRET="a-cookie-secret-for-this-test-only",
        TOKENBOARD_AUTH_CLIENT_ID="tokenboard",
        TOKENBOARD_AUTH_CLIENT_SECRET="client-secret-for-this-test-only",
        TOKENBOARD_AUTH_SERVER_METADATA_URL=f"{provider}/.well-known/openid-configuration",
    )
    log = tmp_path_factory.mktemp("site") / "streamlit.log"
    with dashboard([str(ROOT / "scripts" / "serve"), "--server.fileWatcherType", "none"], env, url, log):
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def ready(page) -> None:
    """The script run finished (the status widget is gone)."""
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000, polling=250
    )
    page.wait_for_timeout(300)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")


def navigation(page) -> list[str]:
    return [t.split("\n")[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


def sign_in(page, site: str, who: str) -> None:
    page.goto(site)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.locator("button", has_text=who).first.click()  # the provider's button for a predefined user
    page.wait_for_url(f"{site}/**")
    page.get_by_role("button", name="Sign out").first.wait_for(timeout=30_000)
    ready(page)


def assert_only_the_prompt(page) -> None:
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)  # the run may still be drawing
    ready(page)
    assert page.get_by_role("button", name="Sign in").count() == 1
    assert main_text(page).split() == ["tokenboard", *PROMPT.split(), "login", "Sign", "in"]
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert page.get_by_text("Page not found").count() == 0
    for element in (".js-plotly-plot", '[data-testid="stMetric"]', '[data-testid="stDataFrame"]'):
        assert page.locator(element).count() == 0


def test_signed_out_sees_only_the_sign_in_prompt_on_every_url(site, page, tmp_path) -> None:
    # A deep link first: the fresh server's very first script run is a page script of pages/.
    links = ["Usage", "", "Throttling", "Reports", "Test_request", "Usage?range=7d&sub=contoso-prod"]
    for link in links:
        page.goto(f"{site}/{link}")
        ready(page)
        assert_only_the_prompt(page)
    page.screenshot(path=str(tmp_path / "signed-out.png"))
    health = httpx.get(f"{site}/_stcore/health", timeout=5)
    assert (health.status_code, health.text) == (200, "ok")  # the one thing besides the prompt


def test_the_image_health_check_passes_against_the_running_dashboard(site) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_dockerfile import healthcheck_command

    command = [sys.executable, *healthcheck_command()[1:]]
    env = clean_environment(PORT=site.rsplit(":", 1)[1])
    assert subprocess.run(command, env=env, timeout=30).returncode == 0
    env["PORT"] = str(free_port())  # nothing listens there
    assert subprocess.run(command, env=env, timeout=30, capture_output=True).returncode != 0


def test_a_viewer_sees_the_read_pages_and_never_test_request(site, page, tmp_path) -> None:
    sign_in(page, site, "vera")
    assert navigation(page) == READ_PAGES
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text().replace("\u2060", "")
    assert "Vera Viewer" in sidebar and "vera@contoso.example · viewer" in sidebar
    for title in READ_PAGES:
        page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
        page.wait_for_function(f"() => document.querySelector('h1')?.innerText.startsWith('{title}')")
        ready(page)
    page.screenshot(path=str(tmp_path / "viewer.png"))
    page.goto(f"{site}/Test_request")  # not by URL either: Streamlit falls back to Overview
    page.wait_for_function("() => document.querySelector('h1')?.innerText.startsWith('Overview')")
    ready(page)
    assert page.get_by_text("Page not found").count() == 1
    assert page.get_by_role("button", name="Send once").count() == 0
    assert "Test request" not in navigation(page)
    page.screenshot(path=str(tmp_path / "viewer-test-request-url.png"))


def test_an_operator_sees_test_request_and_signing_out_returns_to_the_prompt(site, page, tmp_path) -> None:
    sign_in(page, site, "otto")
    assert navigation(page) == [*READ_PAGES, "Test request"]
    page.locator('[data-testid="stSidebarNav"] a', has_text="Test request").click()
    page.wait_for_selector("text=Send once", timeout=60_000)
    ready(page)
    assert page.locator("h1").first.inner_text().startswith("Test request")
    page.screenshot(path=str(tmp_path / "operator.png"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/oauth2/end_session**")
    page.get_by_role("button", name="End session").click()  # the provider's own sign-out page
    page.wait_for_url(f"{site}/**")
    ready(page)
    assert_only_the_prompt(page)
    page.goto(f"{site}/Test_request")
    ready(page)
    assert_only_the_prompt(page)


def test_someone_on_no_allow_list_reads_one_sentence_saying_who_to_ask(site, page, tmp_path) -> None:
    sign_in(page, site, "mallory")
    sentence = (
        "You are signed in as mallory@elsewhere.example, but this dashboard is not open to you: "
        "ask the platform team for access."
    )
    for link in ("", "Usage", "Test_request"):
        page.goto(f"{site}/{link}")
        page.get_by_role("button", name="Sign out").wait_for(timeout=30_000)
        ready(page)
        assert sentence in main_text(page)
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        assert page.locator('[data-testid="stMetric"], .js-plotly-plot').count() == 0
    page.screenshot(path=str(tmp_path / "outsider.png"))
