"""The Test request page as a user sees it (AppTest), against gateways started by the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_helpers import free_port
from streamlit.testing.v1 import AppTest

from tokenboard.gateway import embedded
from tokenboard.gateway.config import demo_keys

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Test_request.py")


@pytest.fixture(autouse=True)
def no_developer_config(monkeypatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)


def page(**secrets) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in secrets.items():
        at.secrets[key] = value
    return at.run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def number(text: str) -> int:
    """A number as the page shows it: thousands separated (``9,954``)."""
    assert text.replace(",", "").isdigit() and (len(text) < 4 or "," in text), text
    return int(text.replace(",", ""))


def test_send_once_shows_status_limit_headers_and_reply(make_gateway, data_dir) -> None:
    gw = make_gateway(tokens_per_minute=500)
    at = page(gateway_url=gw.url, gateway_subscription_key=gw.key, data_dir=str(data_dir))
    assert not at.exception
    key_field = next(t for t in at.text_input if t.label == "Subscription key")
    assert key_field.value == ""  # the configured key is used server-side, never sent back to the browser
    at.button(key="send").click().run()
    shown = metrics(at)
    assert shown["Status"] == "200"
    assert number(shown["Remaining tokens"]) < 500 and number(shown["Consumed tokens"]) > 0
    assert any("Mock reply from gpt-4o-mini" in m.value for m in at.markdown)
    assert gw.key not in str(at._tree)


def test_burst_runs_until_429_and_offers_the_csv(make_gateway, data_dir) -> None:
    gw = make_gateway(tokens_per_minute=120)
    at = page(gateway_url=gw.url, gateway_subscription_key=gw.key, data_dir=str(data_dir))
    next(n for n in at.number_input if n.label == "Concurrency").set_value(1)
    at.button(key="burst").click().run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Retry-After"] == "60 s" and number(shown["Admitted before the limit"]) >= 1
    assert number(shown["Requests sent"]) == number(shown["Admitted before the limit"]) + 1
    assert any("answered 429" in s.value for s in at.success)
    assert at.get("plotly_chart") and at.get("download_button")
    assert gw.key not in str(at._tree)


def test_embedded_gateway_is_started_and_answers(data_dir) -> None:
    try:
        at = page(data_dir=str(data_dir), seed_on_start=False)
        assert any("Using the local gateway at" in i.value for i in at.info)
        first = next(iter(demo_keys(data_dir)))
        assert any(f"The key belongs to subscription **{first}**" in c.value for c in at.caption)
        at.button(key="send").click().run()
        assert metrics(at)["Status"] == "200"
    finally:
        embedded.stop_all()


def test_large_numbers_have_thousands_separators_and_the_key_is_named(make_gateway, data_dir) -> None:
    gw = make_gateway(tokens_per_minute=50_000)
    at = page(gateway_url=gw.url, gateway_subscription_key=gw.key, data_dir=str(data_dir))
    assert any("Which subscription this key belongs to is unknown" in c.value for c in at.caption)
    at.button(key="send").click().run()
    remaining = metrics(at)["Remaining tokens"]
    assert "," in remaining and 40_000 < number(remaining) < 50_000
    named = page(
        gateway_url=gw.url,
        gateway_subscription_key=gw.key,
        gateway_subscription_name="contoso-prod",
        data_dir=str(data_dir),
    )
    assert any("The key belongs to subscription **contoso-prod**" in c.value for c in named.caption)


def test_gateway_down_is_a_clear_message(data_dir) -> None:
    at = page(gateway_url=f"http://127.0.0.1:{free_port()}", gateway_subscription_key="k-123456789")
    at.button(key="send").click().run()
    assert not at.exception
    assert any("Could not connect to 127.0.0.1" in e.value for e in at.error)


def test_bad_url_is_a_warning_not_a_traceback(data_dir) -> None:
    at = page(gateway_url="apim.example.net", gateway_subscription_key="k-123456789")
    assert not at.exception
    assert any("Gateway URL must start with http" in w.value for w in at.warning)
