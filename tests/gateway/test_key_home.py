"""The configured subscription key only ever reaches the configured gateway.

Two raw listeners on loopback record every byte they receive: "home" is the configured
``gateway_url``, "away" another port. Whatever a visitor types into the Test request page (URL,
API path, headers; Send once or Burst), the configured key never appears in what "away"
received, while "home" receives it. The page runs under AppTest; the calls are real HTTP.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from tokenboard import probe

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Test_request.py")
KEY = "configured-key-5f3a9c0d41"
REPLY = json.dumps(
    {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
).encode()


class Recorder(socketserver.ThreadingTCPServer):
    """Answers every HTTP request with a small chat completion (or a redirect) and keeps the raw bytes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, redirect_to: str = "") -> None:
        self.received: list[bytes] = []
        self.redirect_to = redirect_to
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server_address[1]

    def saw(self, text: str) -> bool:
        return any(text.encode() in raw for raw in self.received)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Recorder = self.server  # type: ignore[assignment]
        raw = self._read()
        server.received.append(raw)
        if server.redirect_to and b" /redirect/" in raw.split(b"\r\n", 1)[0]:
            answer = (
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {server.redirect_to}/ai/chat/completions\r\n"
            )
            self.request.sendall((answer + "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
            return
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(REPLY)}\r\n"
        self.request.sendall((head + "Connection: close\r\n\r\n").encode() + REPLY)

    def _read(self) -> bytes:
        """Headers and body of one request, as they arrived."""
        self.request.settimeout(5)
        raw = b""
        try:
            while b"\r\n\r\n" not in raw:
                chunk = self.request.recv(65536)
                if not chunk:
                    return raw
                raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            missing = (int(lengths[0].split(b":", 1)[1]) if lengths else 0) - len(body)
            while missing > 0 and (chunk := self.request.recv(65536)):
                raw += chunk
                missing -= len(chunk)
        except OSError:
            pass
        return raw


@pytest.fixture
def away() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.shutdown()


@pytest.fixture
def home(away: Recorder) -> Iterator[Recorder]:
    server = Recorder(redirect_to=away.url)
    yield server
    server.shutdown()


@pytest.fixture(autouse=True)
def no_developer_config(monkeypatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)


def page(home: Recorder, **secrets) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets["gateway_url"] = home.url
    at.secrets["gateway_subscription_key"] = KEY
    for key, value in secrets.items():
        at.secrets[key] = value
    return at.run()


def field(at: AppTest, label: str):
    return next(t for t in [*at.text_input, *at.text_area] if t.label == label)


LABELS = {"gateway_url": "Gateway URL", "api_path": "API path", "key_header": "Key header",
          "extra_headers": "Extra headers"}  # fmt: skip


def visitor_types(at: AppTest, **fields: str) -> AppTest:
    for name, value in fields.items():
        field(at, LABELS[name]).set_value(value)
    return at.run()


def send_once_and_burst(at: AppTest) -> None:
    if not any(b.key == "send" for b in at.button):  # the form refused the input: nothing to send
        assert len(at.warning) == 1, [w.value for w in at.warning]
        return
    at.button(key="send").click().run()
    next(n for n in at.number_input if n.label == "Requests (at most)").set_value(3)
    at.button(key="burst").click().run()
    assert not at.exception, [e.message for e in at.exception]


def test_the_configured_gateway_receives_the_configured_key(home: Recorder, away: Recorder) -> None:
    at = page(home)
    send_once_and_burst(at)
    assert home.saw(f"Ocp-Apim-Subscription-Key: {KEY}") and len(home.received) >= 2
    assert {m.label: m.value for m in at.metric}["Status"] == "200"
    assert not away.received


def visitor_inputs(home: Recorder, away: Recorder) -> list[dict[str, str]]:
    h, a = home.port, away.port
    return [
        {"gateway_url": away.url},
        {"gateway_url": away.url + "/"},
        {"gateway_url": f"HTTP://127.0.0.1:{a}"},
        {"gateway_url": f"http://localhost:{a}"},
        {"gateway_url": f"http://127.0.0.1:{h}@127.0.0.1:{a}"},
        {"gateway_url": f"http://127.0.0.1:{a}\\@127.0.0.1:{h}"},
        {"gateway_url": f"http://127.0.0.1:{a}#@127.0.0.1:{h}"},
        {"gateway_url": f"http://127.0.0.1:{a}?@127.0.0.1:{h}"},
        {"gateway_url": home.url, "api_path": f"@127.0.0.1:{a}/ai"},
        {"gateway_url": home.url, "api_path": f"//127.0.0.1:{a}/ai"},
        {"gateway_url": home.url, "api_path": f"http://127.0.0.1:{a}/ai"},
        {"gateway_url": home.url, "extra_headers": f"Host: 127.0.0.1:{a}"},
        {"gateway_url": home.url, "api_path": "redirect"},  # home answers 307 to away
        {"gateway_url": away.url, "key_header": "Ocp-Apim-Subscription-Key", "extra_headers": "X-A: b"},
    ]


def test_whatever_a_visitor_types_the_key_never_reaches_another_port(home: Recorder, away: Recorder) -> None:
    at = page(home)
    for typed in visitor_inputs(home, away):
        visitor_types(at, **{"gateway_url": home.url, "api_path": "ai", "extra_headers": ""} | typed)
        send_once_and_burst(at)
        assert not away.saw(KEY), f"the key reached another port after {typed}"
    assert away.received  # the visitor's calls did go there (without the key)...
    assert home.saw(KEY)  # ...and the configured gateway still got it
    caption = " ".join(c.value for c in at.caption)
    assert "The configured key is only sent to" in caption  # said next to the field


def test_a_key_the_visitor_types_goes_where_they_point_it(home: Recorder, away: Recorder) -> None:
    at = page(home)
    visitor_types(at, gateway_url=away.url)
    field(at, "Subscription key").set_value("visitor-own-key-123").run()
    at.button(key="send").click().run()
    assert away.saw("visitor-own-key-123") and not away.saw(KEY)


def test_with_other_urls_off_every_call_goes_to_the_configured_gateway(
    home: Recorder, away: Recorder
) -> None:
    auth = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "c" * 24,
        "client_id": "tokenboard",
        "client_secret": "s",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets.update({"gateway_url": home.url, "gateway_subscription_key": KEY, "auth": auth})
    at.secrets["access"] = {"operator_emails": ["otto@contoso.example"]}
    at.user = {"is_logged_in": True, "sub": "o", "email": "otto@contoso.example"}
    at.run()
    assert field(at, "Gateway URL").disabled
    at.session_state["gateway-url"] = away.url  # as if a crafted client sent another value
    send_once_and_burst(at.run())
    assert field(at, "Gateway URL").value == away.url
    assert not away.received and home.saw(KEY)


HOSTS = ["127.0.0.1", "localhost", "127.1", "0x7f.1", "[::ffff:127.0.0.1]", "127.0.0.1.", "LOCALHOST"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_urls_never_carry_the_key_to_another_port(home: Recorder, away: Recorder, data) -> None:
    """The page's own preparation (probe.prepare), fuzzed, then sent for real."""
    host = data.draw(st.sampled_from(HOSTS))
    port = data.draw(st.sampled_from([away.port, home.port]))
    userinfo = data.draw(st.sampled_from(["", f"127.0.0.1:{home.port}@", "u:p@"]))
    tail = data.draw(st.sampled_from(["", "/", "\\", f"\\@127.0.0.1:{home.port}", "/x/..", "#f", "?q"]))
    scheme = data.draw(st.sampled_from(["http", "HTTP", "Http"]))
    url = f"{scheme}://{userinfo}{host}:{port}{tail}"
    api_path = data.draw(
        st.sampled_from(["ai", "", f"@127.0.0.1:{away.port}", f"http://127.0.0.1:{away.port}/ai"])
    )
    try:
        request = probe.prepare(
            url, api_path, home=home.url, configured_key=KEY, typed_key="", any_url=True, timeout_seconds=3
        )
    except probe.ProbeInputError:
        return
    probe.send_once(request)
    assert not away.saw(KEY), url
