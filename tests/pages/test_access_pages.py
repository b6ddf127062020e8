"""Sign-in gating under AppTest: what each visitor gets, and that nothing runs before sign-in.

The real round trip through an OpenID Connect provider, deep links and sign-out are in
test_sign_in_browser.py; here ``st.user`` is AppTest's, which lets a test count what ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pagetools import PAGES, ROOT, shown
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from tokenboard.backends.local import LocalBackend
from tokenboard.gateway import embedded
from tokenboard.ui import page as ui_page
from tokenboard.views.timerange import format_instant

DEMO_END = datetime(2025, 3, 3, 14, 7, tzinfo=UTC)  # tests/conftest.py: the seeded store's end
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-secret-for-tests",
    "client_id": "tokenboard",
    "client_secret": "client-secret-for-tests",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
VIEWER = {
    "is_logged_in": True,
    "sub": "v",
    "name": "Vera",
    "email": "vera@contoso.example",
    "roles": ["Reader"],
}
OPERATOR = {**VIEWER, "sub": "o", "name": "Otto", "email": "otto@contoso.example", "roles": ["Operator"]}
OUTSIDER = {**VIEWER, "sub": "m", "name": "Mallory", "email": "mallory@elsewhere.example", "roles": []}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every query bound and every page started, while the test runs."""
    seen: list[str] = []
    bind, start = LocalBackend.bind, ui_page.start
    monkeypatch.setattr(
        LocalBackend, "bind", lambda self, name, *a, **k: seen.append(name) or bind(self, name, *a, **k)
    )
    monkeypatch.setattr(ui_page, "start", lambda *a, **k: seen.append("page.start") or start(*a, **k))
    yield seen


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch, app_env) -> None:
    monkeypatch.setenv("TOKENBOARD_ACCESS__ALLOWED_CLAIM_VALUES", "Reader")
    monkeypatch.setenv("TOKENBOARD_ACCESS__OPERATOR_CLAIM_VALUES", "Operator")
    monkeypatch.setenv("TOKENBOARD_ACCESS__CONTACT", "the platform team")


def app(user: dict | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    at.query_params["end"] = format_instant(DEMO_END)
    at.secrets["auth"] = AUTH
    at.user = user or {"is_logged_in": False}
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def everything_shown(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "title", "error", "warning", "info")
                    for e in getattr(at, kind))  # fmt: skip


def test_signed_out_sees_only_the_sign_in_prompt_and_nothing_runs(roles, calls) -> None:
    at = app()
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.get("plotly_chart") and not at.dataframe and not at.sidebar.multiselect
    assert calls == []  # no page script started, no query bound


def test_a_viewer_reads_the_overview_and_cannot_switch_to_test_request(roles, calls) -> None:
    at = app(VIEWER)
    assert at.metric and "usage_pivot" in calls
    assert "Vera" in everything_shown(at) and any(b.label == "Sign out" for b in at.sidebar.button)
    with pytest.raises(ValueError):  # not a registered page for a viewer
        at.switch_page("pages/4_Test_request.py")


def test_a_viewer_reads_money_on_the_overview_and_the_budgets_page(roles, calls) -> None:
    at = app(VIEWER)
    assert any(m.label == "Cost" and shown(m.value).startswith("$") for m in at.metric)
    budgets = app(VIEWER, page="pages/5_Budgets.py")
    assert [t.value for t in budgets.title] == ["Budgets"]
    assert budgets.dataframe and len(budgets.dataframe[0].value) == 8  # the demo's budgets
    assert "cost_basis" in calls


def test_an_operator_can_open_test_request(roles) -> None:
    try:
        at = app(OPERATOR, page="pages/4_Test_request.py")
        assert [t.value for t in at.title] == ["Test request"]
        assert any(b.label == "Send once" for b in at.button)
    finally:
        embedded.stop_all()


def test_an_outsider_reads_one_sentence_saying_who_to_ask(roles, calls) -> None:
    at = app(OUTSIDER)
    assert len(at.warning) == 1
    sentence = shown(at.warning[0].value)
    assert sentence == (
        "You are signed in as mallory@elsewhere.example, but this dashboard is not open to you: "
        "ask the platform team for access."
    )
    assert not at.metric and calls == []


def test_a_page_script_run_on_its_own_checks_the_visitor_too(roles, calls) -> None:
    """Defence in depth: a page script started without app.py's navigation gates itself."""
    for page in ("usage", "throttling", "reports", "budgets"):
        at = AppTest.from_file(str(PAGES[page]), default_timeout=120)
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": False}
        at.run()
        assert [b.label for b in at.button] == ["Sign in"] and not at.metric
    test_request = AppTest.from_file(str(ROOT / "pages" / "4_Test_request.py"), default_timeout=60)
    test_request.secrets["auth"] = AUTH
    test_request.user = VIEWER
    test_request.run()
    assert [e.value for e in test_request.error] == ["This page is for operators only."]
    assert not test_request.text_input
    assert [c for c in calls if c != "page.start"] == []  # the guard inside page.start stopped them


@pytest.fixture
def exposed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if started with --server.address 0.0.0.0."""
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", before)


def test_exposed_without_sign_in_shows_one_sentence_and_nothing_else(app_env, exposed, calls) -> None:
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120).run()
    assert len(at.error) == 1 and "allow_anonymous = true" in shown(at.error[0].value)
    assert not at.metric and calls == []


def test_exposed_with_allow_anonymous_reads_as_a_viewer(app_env, exposed, monkeypatch) -> None:
    monkeypatch.setenv("TOKENBOARD_ACCESS__ALLOW_ANONYMOUS", "true")
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    at.query_params["end"] = format_instant(DEMO_END)
    at.run()
    assert at.metric
    assert any("anyone who can reach this server" in w.value for w in at.sidebar.warning)
    with pytest.raises(ValueError):
        at.switch_page("pages/4_Test_request.py")


def test_local_mode_says_so_in_the_sidebar(open_page) -> None:
    at = open_page("overview")
    assert any("Local mode: listening on 127.0.0.1 only" in shown(c.value) for c in at.sidebar.caption)
    try:
        at.switch_page("pages/4_Test_request.py").run()  # the person at this machine may send requests
        assert [t.value for t in at.title] == ["Test request"]
    finally:
        embedded.stop_all()
