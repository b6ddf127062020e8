"""Fault injection against the gateway over real loopback sockets: slow and vanishing clients,
bodies nothing can parse, prompts that can never fit, more connections than the cap."""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest
from gateway_helpers import read_table

from tokenboard.gateway import tokenizer
from tokenboard.gateway.app import STATUS_PATH
from tokenboard.gateway.connections import QuietLog

CHAT_PATH = "/ai/chat/completions"


def connect(gw) -> socket.socket:
    sock = socket.create_connection((gw.server.host, gw.server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(gw, length: int, key: str | None = None) -> bytes:
    return (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"{gw.config.key_header}: {gw.key if key is None else key}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the gateway sends until it closes the connection, and how long that took."""
    started = time.perf_counter()
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.perf_counter() - started


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer on a connection that stays open (framed by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head_text, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head_text.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head_text + b"\r\n\r\n" + body


def answer_json(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head_text, _, body = raw.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def chat_body(content: str = "Say hello", **extra: object) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": content}], **extra}).encode()


# --- slow clients ------------------------------------------------------------------------------


def test_half_sent_header_is_answered_408_and_closed_at_the_header_timeout(make_gateway) -> None:
    gw = make_gateway(gateway_header_timeout_seconds=1)
    with connect(gw) as sock:
        sock.sendall(b"POST /ai/chat/completions HTTP/1.1\r\nHost: gw\r\n")  # and nothing more
        data, seconds = read_until_closed(sock)
    status, headers, body = answer_json(data)
    assert (status, headers["connection"]) == (408, "close")
    assert body["message"] == "The request head was not received within 1 seconds."
    assert 0.9 <= seconds < 2.0


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(make_gateway) -> None:
    gw = make_gateway(gateway_header_timeout_seconds=1)
    with connect(gw) as sock:
        data, seconds = read_until_closed(sock)
    assert data == b""  # nothing was asked, nothing is answered
    assert 0.9 <= seconds < 2.0


def test_a_keep_alive_connection_gets_a_new_header_timeout_after_each_answer(make_gateway) -> None:
    gw = make_gateway(gateway_header_timeout_seconds=1)
    body = chat_body()
    with connect(gw) as sock:
        for _ in range(3):  # well within the timeout each time: served
            sock.sendall(head(gw, len(body)) + body)
            assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.4)
        sock.sendall(b"POST /ai/chat/completions HTTP/1.1\r\n")
        data, seconds = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ") and seconds < 2.0


def test_half_sent_body_is_408_at_the_body_timeout_and_counts_nothing(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=500, gateway_body_timeout_seconds=1)
    body = chat_body()
    with connect(gw) as sock:
        sock.sendall(head(gw, len(body)) + body[:10])
        data, seconds = read_until_closed(sock)
    status, headers, answer = answer_json(data)
    assert (status, headers["connection"]) == (408, "close")
    assert answer["message"] == "The request body was not received within 1 seconds."
    assert headers["remaining-tokens"] == "500"
    assert 0.9 <= seconds < 2.0
    ok = gw.chat()
    assert int(ok.headers["remaining-tokens"]) == 500 - ok.json()["usage"]["total_tokens"]
    gw.flush()
    rows = read_table(gw.store, "requests")
    assert sorted(rows["resultCode"]) == ["200", "408"]


# --- clients that hang up, bodies nothing can parse ---------------------------------------------


def test_client_that_hangs_up_mid_body_is_499_without_a_traceback(make_gateway, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    gw = make_gateway(tokens_per_minute=500)
    body = chat_body("x" * 2_000)
    for _ in range(3):
        with connect(gw) as sock:
            sock.sendall(head(gw, len(body)) + body[: len(body) // 2])
            time.sleep(0.2)
    deadline = time.monotonic() + 5
    while len(gw.gateway.telemetry._requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    gw.flush()
    rows = read_table(gw.store, "requests")
    assert list(rows["resultCode"]) == ["499"] * 3
    assert all(d["Subscription Name"] == gw.subscription for d in rows["dims"])
    assert not rows["success"].any()
    assert read_table(gw.store, "customMetrics").empty  # no tokens
    assert gw.chat().headers["remaining-tokens"] != "500"  # the next call is the first counted
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []


def _nested(depth: int) -> bytes:
    return (
        b'{"messages": [{"role": "user", "content": "hi"}], "metadata": ' + b"[" * depth + b"]" * depth + b"}"
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_nested(5_000), "nested more than 64 levels deep"),  # RecursionError in json.loads
        (_nested(100), "nested more than 64 levels deep"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "n": ' + b"9" * 5_000 + b"}", "too many digits"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
            "NaN is not a JSON number",
        ),
        (b'{"messages": [{"role": "user", "content": "\\ud800 broken"}]}', "unpaired surrogate"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "model": "\\udfff"}', "unpaired surrogate"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "model": "' + b"m" * 300 + b'"}', "at most 256"),
    ],
    ids=[
        "5000-deep",
        "100-deep",
        "5000-digit-number",
        "nan",
        "surrogate-text",
        "surrogate-model",
        "long-model",
    ],
)
def test_any_unparsable_body_is_400_and_telemetry_still_writes(make_gateway, caplog, body, fragment) -> None:
    gw = make_gateway(tokens_per_minute=500)
    headers = {gw.config.key_header: gw.key, "content-type": "application/json"}
    answer = httpx.post(f"{gw.url}{CHAT_PATH}", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["message"]
    assert answer.headers["remaining-tokens"] == "500"
    assert gw.chat().status_code == 200
    gw.flush()  # both rows written: nothing in the refused body poisons the store
    assert sorted(read_table(gw.store, "requests")["resultCode"]) == ["200", "400"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_reasonably_nested_tool_schema_is_accepted(make_gateway) -> None:
    gw = make_gateway()
    schema: dict = {"type": "string"}
    for _ in range(12):
        schema = {"type": "object", "properties": {"inner": schema}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    assert gw.chat(tools=tools).status_code == 200


# --- prompts that can never fit ----------------------------------------------------------------


def test_prompt_larger_than_the_whole_limit_is_429_without_retry_after(make_gateway, clock) -> None:
    gw = make_gateway(tokens_per_minute=40)
    long_prompt = [{"role": "user", "content": "tell me everything about " * 20}]
    refused = gw.chat(messages=long_prompt)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers  # waiting will not help: nothing promises it will
    message = refused.json()["message"]
    assert message.startswith("Token limit is exceeded: this prompt alone is ")
    assert message.endswith(
        "more than the whole limit of 40 tokens per minute. Shorten the prompt; retrying will not help."
    )
    assert refused.headers["remaining-tokens"] == "40"
    clock.advance(3600)  # an hour later, an empty window: still refused, the same way
    again = gw.chat(messages=long_prompt)
    assert again.status_code == 429 and "retry-after" not in again.headers
    assert gw.chat(max_tokens=5).status_code == 200  # the refusals counted nothing


def test_a_prompt_that_fits_later_still_gets_retry_after(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=100)
    assert gw.chat(max_tokens=10).status_code == 200
    messages = [{"role": "user", "content": "word " * 80}]
    assert 80 < tokenizer.prompt_tokens(messages, "gpt-4o-mini") < 100  # fits in an empty window
    refused = gw.chat(messages=messages)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["message"].startswith("Token limit is exceeded. Try again in ")


def test_prompt_larger_than_the_whole_quota_is_403_without_retry_after(make_gateway) -> None:
    gw = make_gateway(tokens_per_minute=10_000, token_quota=30, token_quota_period="Daily")
    refused = gw.chat(messages=[{"role": "user", "content": "a rather long question " * 10}])
    assert refused.status_code == 403
    assert "retry-after" not in refused.headers
    assert refused.json()["message"].endswith(
        "more than the whole quota of 30 tokens per day. Shorten the prompt; retrying will not help."
    )
    assert refused.headers["remaining-quota-tokens"] == "30"


# --- more connections than the cap -------------------------------------------------------------


def test_over_the_cap_busy_connections_leave_503s_but_the_health_probe_answers(make_gateway) -> None:
    gw = make_gateway(gateway_max_connections=4, gateway_body_timeout_seconds=30)
    body = chat_body()
    busy = [connect(gw) for _ in range(4)]
    try:
        for sock in busy:  # each in a request, reading a body that does not come
            sock.sendall(head(gw, len(body)) + body[:5])
        time.sleep(0.3)
        refused = gw.chat()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1" and refused.headers["connection"] == "close"
        assert refused.json()["message"] == (
            "The gateway is at its limit of open connections. Try again in a moment."
        )
        for _ in range(3):
            probe = httpx.get(f"{gw.url}{STATUS_PATH}", timeout=5)
            assert probe.status_code == 200 and probe.json() == {"status": "ok"}
    finally:
        for sock in busy:
            sock.close()
    time.sleep(0.3)
    assert gw.chat().status_code == 200  # room again
    gw.flush()
    codes = read_table(gw.store, "requests")["resultCode"]
    assert list(codes).count("503") == 1 and list(codes).count("499") == 4


def test_over_the_cap_the_longest_idle_connection_makes_room(make_gateway) -> None:
    gw = make_gateway(gateway_max_connections=4)
    idle = []
    for _ in range(10):
        idle.append(connect(gw))
        time.sleep(0.02)  # the order they came in
    time.sleep(0.3)
    try:
        assert gw.chat().status_code == 200  # not a 503: idle connections gave way
        closed = []
        for sock in idle:
            sock.settimeout(0.5)
            try:
                closed.append(sock.recv(1) == b"")
            except TimeoutError:
                closed.append(False)
        assert closed == [True] * 7 + [False] * 3  # the oldest went first; the cap holds 4 with the chat
    finally:
        for sock in idle:
            sock.close()


def test_quiet_log_writes_the_first_event_then_one_line_per_interval_with_a_count(caplog) -> None:
    now = [0.0]
    quiet = QuietLog(logging.getLogger("tokenboard.test"), interval=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="tokenboard.test")
    for _ in range(47_000):
        quiet.event("emfile", logging.ERROR, "Cannot accept connections: Too many open files")
        now[0] += 6 / 47_000
    now[0] = 61
    quiet.event("emfile", logging.ERROR, "Cannot accept connections: Too many open files")
    assert [r.getMessage() for r in caplog.records] == [
        "Cannot accept connections: Too many open files",
        "Cannot accept connections: Too many open files (47,000 times in the last 61 s)",
    ]


def test_a_flood_of_malformed_requests_is_one_log_line(make_gateway, caplog) -> None:
    caplog.set_level(logging.INFO)
    gw = make_gateway()
    for _ in range(50):
        with connect(gw) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")
            data, _ = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 400 ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["Invalid HTTP request received."]
