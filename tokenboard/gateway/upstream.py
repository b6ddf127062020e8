"""Forwarding to a real OpenAI-compatible backend with httpx.

The caller's subscription key never goes upstream: the gateway sends its own upstream key.
The backend's own HTTP errors (400, 429, 500, ...) pass through unchanged, as APIM passes them;
when the backend cannot be reached the caller gets 502, when it is too slow 504, each with a
JSON body saying which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


class UpstreamError(Exception):
    """The backend failed at the transport level; ``status`` is 502 or 504."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# A backend's headers the gateway passes on with its error answers (a 429's wait above all).
PASSED_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-remaining-requests",
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    json: dict[str, Any] | None  # the parsed body of a 200 answer
    headers: dict[str, str] = field(default_factory=dict)  # PASSED_HEADERS it carried


def passed_headers(headers: httpx.Headers) -> dict[str, str]:
    """The headers of a backend's answer that the gateway passes on."""
    return {name: headers[name] for name in PASSED_HEADERS if name in headers}


class Upstream:
    def __init__(self, key: str, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._headers = {"Authorization": f"Bearer {key}", "api-key": key} if key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _request(self, base_url: str, payload: dict[str, Any]) -> httpx.Request:
        return self._client.build_request(
            "POST", f"{base_url}/chat/completions", json=payload, headers=self._headers
        )

    async def complete(self, base_url: str, payload: dict[str, Any]) -> Answer:
        try:
            response = await self._client.send(self._request(base_url, payload))
        except httpx.TimeoutException:
            raise UpstreamError(504, self._timeout_message()) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, _unreachable_message(exc)) from None
        content_type = response.headers.get("content-type", "application/json")
        if response.status_code != 200:
            return Answer(
                response.status_code, response.content, content_type, None, passed_headers(response.headers)
            )
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(502, "The backend answered 200 with a body that is not a JSON object.")
        return Answer(200, response.content, content_type, data)

    async def open_stream(self, base_url: str, payload: dict[str, Any]) -> httpx.Response:
        """Start a streamed call; the caller reads ``aiter_lines()`` and must ``aclose()`` it."""
        try:
            return await self._client.send(self._request(base_url, payload), stream=True)
        except httpx.TimeoutException:
            raise UpstreamError(504, self._timeout_message()) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, _unreachable_message(exc)) from None

    def _timeout_message(self) -> str:
        return f"The backend did not answer within {self.timeout_seconds:g} seconds."


def _unreachable_message(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "The backend could not be reached (connection refused or name not resolved)."
    if isinstance(exc, httpx.RemoteProtocolError):
        return "The backend closed the connection without a valid HTTP answer."
    return f"The backend call failed ({type(exc).__name__})."
