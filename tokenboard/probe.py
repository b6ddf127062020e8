"""Test requests through a gateway (local or APIM), without Streamlit: what the Test request page runs.

``send_once`` makes one chat-completions call and reads the token-limit headers; ``burst`` sends
up to N calls at a concurrency (or a rate) until the first 429 / 403, yielding each result as it
arrives so a chart can grow live. Failures that are not HTTP answers (connection refused, timeouts,
TLS, a body that is not JSON) come back as results with a worded ``error``, never as exceptions.
The subscription key goes into one request header and nowhere else: results, CSV exports and
error messages never hold it. :func:`key_for` decides which key a call carries: the configured
key only ever goes to the configured gateway (same scheme, host and port, read the way httpx
sends the request), and redirects are never followed, so no answer can forward it elsewhere.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

from tokenboard.export import to_csv

LIMIT_STATUSES = (429, 403)
DEFAULT_PORTS = {"http": 80, "https": 443}
CSV_COLUMNS = (
    "index", "started_at", "status", "latency_ms", "remaining_tokens", "consumed_tokens", "retry_after",
    "remaining_quota_tokens", "prompt_tokens", "completion_tokens", "total_tokens", "error",
)  # fmt: skip


class ProbeInputError(ValueError):
    """A field of the form is unusable; the message says which and why."""


@dataclass(frozen=True)
class ProbeRequest:
    gateway_url: str
    api_path: str = "ai"
    key_header: str = "Ocp-Apim-Subscription-Key"
    key: str = field(default="", repr=False)
    model: str = "gpt-4o-mini"
    system: str = ""
    user: str = "Say hello."
    max_tokens: int = 32
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    timeout_seconds: float = 30.0
    remaining_header: str = "remaining-tokens"
    consumed_header: str = "consumed-tokens"
    quota_header: str = "remaining-quota-tokens"
    retry_after_header: str = "Retry-After"

    @property
    def url(self) -> str:
        return endpoint(self.gateway_url, self.api_path)

    def body(self) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}] if self.system.strip() else []
        messages.append({"role": "user", "content": self.user})
        return {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.key:
            headers[self.key_header] = self.key
        return headers


@dataclass(frozen=True)
class ProbeResult:
    index: int
    started_at: datetime
    status: int | None  # None: no HTTP answer (see error)
    latency_ms: float
    remaining_tokens: int | None = None
    consumed_tokens: int | None = None
    retry_after: int | None = None
    remaining_quota_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reply: str = ""
    message: str = ""  # the gateway's own message on 4xx/5xx (e.g. "Token limit is exceeded...")
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # why there is no usable answer

    @property
    def limited(self) -> bool:
        return self.status in LIMIT_STATUSES


@dataclass(frozen=True)
class BurstSummary:
    requests: int
    admitted: int
    admitted_tokens: int
    first_limit_status: int | None
    first_limit_index: int | None
    retry_after: int | None
    errors: int
    median_latency_ms: float | None


def endpoint(gateway_url: str, api_path: str) -> str:
    """``https://apim.azure-api.net`` + ``ai`` -> ``.../ai/chat/completions`` (checked, not guessed)."""
    base = gateway_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProbeInputError("Gateway URL must start with http:// or https:// and name a host.")
    if parts.query or parts.fragment:
        raise ProbeInputError("Gateway URL must not carry a query string; put the API path in its own field.")
    if "@" in parts.netloc or "\\" in base:
        raise ProbeInputError("Gateway URL must not contain a user name, password or backslash.")
    path = api_path.strip().strip("/")
    if path.endswith("chat/completions"):
        path = path[: -len("chat/completions")].rstrip("/")
    return f"{base}/{path}/chat/completions" if path else f"{base}/chat/completions"


def same_origin(url: str, home: str) -> bool:
    """Whether ``url`` goes to the same scheme, host and port as ``home``, as httpx reads both."""
    try:
        a, b = httpx.URL(url), httpx.URL(home)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if not a.host or a.scheme not in DEFAULT_PORTS or b.scheme not in DEFAULT_PORTS:
        return False
    return (a.scheme, a.host, a.port or DEFAULT_PORTS[a.scheme]) == (
        b.scheme,
        b.host,
        b.port or DEFAULT_PORTS[b.scheme],
    )


def key_for(url: str, home: str, configured: str, typed: str) -> str:
    """The key a call to ``url`` carries: the visitor's own, else the configured key at home only.

    ``home`` is the configured gateway (or the embedded one); anywhere else a call without a
    typed key goes out with no key at all.
    """
    if typed:
        return typed
    return configured if configured and home and same_origin(url, home) else ""


def prepare(
    gateway_url: str,
    api_path: str,
    *,
    home: str,
    configured_key: str,
    typed_key: str,
    any_url: bool,
    **fields: Any,
) -> ProbeRequest:
    """The request a form describes, carrying only the key it may carry.

    ``home`` is the configured (or embedded) gateway. Without ``any_url`` every call goes there,
    whatever URL was typed. Raises ProbeInputError for an unusable field.
    """
    base = gateway_url if any_url or not home else home
    target = endpoint(base, api_path)
    if not any_url and home and not same_origin(target, home):
        raise ProbeInputError("Test requests go only to the configured gateway here.")
    key = key_for(target, home, configured_key, typed_key)
    return ProbeRequest(gateway_url=base, api_path=api_path, key=key, **fields)


def parse_headers(text: str) -> dict[str, str]:
    """``Name: value`` lines from the form's extra-headers box."""
    headers = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or any(c.isspace() or not c.isprintable() for c in name):
            raise ProbeInputError(f"Extra headers line {number} must look like 'Name: value'.")
        headers[name] = value.strip()
    return headers


def make_client(request: ProbeRequest) -> httpx.Client:
    return httpx.Client(
        verify=request.verify_tls,
        follow_redirects=False,  # a redirect would carry the key header to wherever it points
        timeout=httpx.Timeout(request.timeout_seconds, connect=min(10.0, request.timeout_seconds)),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


def send_once(request: ProbeRequest, client: httpx.Client | None = None, index: int = 0) -> ProbeResult:
    """One call; every outcome, including no answer at all, is a result."""
    if client is None:
        with make_client(request) as own:
            return send_once(request, own, index)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        response = client.post(request.url, json=request.body(), headers=request.headers())
    except Exception as exc:
        latency = (time.perf_counter() - t0) * 1000
        return ProbeResult(
            index, started, None, latency, error=_scrub(describe_error(exc, request), request.key)
        )
    latency = (time.perf_counter() - t0) * 1000
    return _result(request, response, index, started, latency)


def burst(
    request: ProbeRequest,
    count: int,
    concurrency: int = 1,
    rate_per_second: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[ProbeResult]:
    """Up to ``count`` calls, ``concurrency`` at a time (paced to ``rate_per_second`` if given).

    No new call starts after the first 429/403, after ``stop`` is set, or once the generator is
    closed; calls already in flight finish and are yielded too (they are part of what happened).
    """
    if count < 1 or concurrency < 1:
        raise ProbeInputError("Requests and concurrency must be at least 1.")
    stop = stop or threading.Event()
    started = time.monotonic()
    next_index, limited = 0, False
    running: set[Future[ProbeResult]] = set()
    with make_client(request) as client, ThreadPoolExecutor(concurrency, thread_name_prefix="probe") as pool:
        try:
            while True:
                wait_for: float | None = None
                while not (limited or stop.is_set()) and next_index < count and len(running) < concurrency:
                    if rate_per_second:
                        due = started + next_index / rate_per_second - time.monotonic()
                        if due > 0:
                            wait_for = due
                            break
                    running.add(pool.submit(send_once, request, client, next_index))
                    next_index += 1
                if not running:
                    if wait_for is None or limited or stop.is_set():
                        return
                    stop.wait(wait_for)
                    continue
                done, running = wait(running, timeout=wait_for, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: f.result().index):
                    result = future.result()
                    limited = limited or result.limited
                    yield result
        finally:
            for future in running:
                future.cancel()


def summarize(results: list[ProbeResult]) -> BurstSummary:
    ordered = sorted(results, key=lambda r: r.index)
    first = next((r for r in ordered if r.limited), None)
    admitted = [r for r in ordered if r.status == 200]
    latencies = sorted(r.latency_ms for r in ordered if r.status is not None)
    return BurstSummary(
        requests=len(ordered),
        admitted=len(admitted),
        admitted_tokens=sum(r.total_tokens or 0 for r in admitted),
        first_limit_status=first.status if first else None,
        first_limit_index=first.index if first else None,
        retry_after=first.retry_after if first else None,
        errors=sum(1 for r in ordered if r.error),
        median_latency_ms=latencies[len(latencies) // 2] if latencies else None,
    )


def results_csv(results: list[ProbeResult]) -> bytes:
    """The run as CSV: numbers and errors only (no key, no headers, no replies)."""
    ordered = sorted(results, key=lambda r: r.index)
    frame = pd.DataFrame({c: pd.Series([getattr(r, c) for r in ordered], dtype=object) for c in CSV_COLUMNS})
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    frame["latency_ms"] = frame["latency_ms"].astype("float64").round(1)
    return to_csv(frame)


def describe_error(exc: Exception, request: ProbeRequest) -> str:
    """A sentence a person can act on, for failures that produced no HTTP answer."""
    host = urlsplit(request.url).netloc
    if isinstance(exc, ProbeInputError):
        return str(exc)
    if isinstance(exc, httpx.ConnectError) and _is_tls(exc):
        return (
            f"TLS verification failed for {host}: the certificate is not trusted or does not match the name. "
            "Fix the certificate, or untick 'Verify TLS' only for a gateway you trust."
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return f"Connecting to {host} timed out after {request.timeout_seconds:g} s."
    if isinstance(exc, httpx.TimeoutException):
        return f"{host} did not answer within {request.timeout_seconds:g} s."
    if isinstance(exc, httpx.ConnectError):
        return f"Could not connect to {host} (connection refused or host not found). Is the gateway running?"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} closed the connection without a valid HTTP answer."
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "The gateway URL is not a valid http(s) URL."
    if isinstance(exc, httpx.LocalProtocolError):
        return "A header name or value is not valid HTTP (check the key header and extra headers)."
    return f"The request failed ({type(exc).__name__})."


# --- internals ---------------------------------------------------------------------------


def _result(
    request: ProbeRequest, response: httpx.Response, index: int, started: datetime, latency: float
) -> ProbeResult:
    headers = {k: ("***" if request.key and request.key in v else v) for k, v in response.headers.items()}
    limits: dict[str, Any] = {
        "remaining_tokens": _int(response.headers.get(request.remaining_header)),
        "consumed_tokens": _int(response.headers.get(request.consumed_header)),
        "retry_after": _int(response.headers.get(request.retry_after_header)),
        "remaining_quota_tokens": _int(response.headers.get(request.quota_header)),
    }
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        snippet = " ".join(response.text[:160].split())
        error = f"The gateway answered {response.status_code} with non-JSON content ({kind}): {snippet}"
        return ProbeResult(index, started, response.status_code, latency, **limits, headers=headers,
                           error=_scrub(error, request.key))  # fmt: skip
    body = body if isinstance(body, dict) else {}
    usage: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
    choices = body.get("choices") if isinstance(body.get("choices"), list) else []
    reply = ""
    if choices and isinstance(choices[0], dict):
        reply = str((choices[0].get("message") or {}).get("content") or "")
    message = _error_message(body) if response.status_code >= 400 else ""
    return ProbeResult(
        index,
        started,
        response.status_code,
        latency,
        **limits,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        total_tokens=_int(usage.get("total_tokens")),
        reply=reply,
        message=_scrub(str(message or ""), request.key),
        headers=headers,
    )


def _error_message(body: dict[str, Any]) -> str:
    """APIM words errors as ``{"message"}``, OpenAI-compatible backends as ``{"error": {"message"}}``."""
    error = body.get("error")
    nested = error.get("message") if isinstance(error, dict) else error
    return str(body.get("message") or nested or "")


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen) or "SSL" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text
