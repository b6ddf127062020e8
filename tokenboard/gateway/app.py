"""The gateway as an ASGI app: APIM's ``llm-token-limit`` and ``llm-emit-token-metric`` in front of
a chat-completions backend.

One call goes: API known? (404) -> subscription key valid? (401) -> connection within the cap?
(503) -> body within the size limit, in time, and a chat request? (413 / 408 / 400; 499 when the
client hangs up) -> prompt tokens counted and admitted by the limiter? (403 quota / 429 rate) ->
backend (mock or upstream; 502 / 504 when it fails; its own errors, such as a deployment's 429
with Retry-After, passed through) -> real usage committed to the limiter and emitted as metrics.
Every call, whatever its outcome, is logged as a ``requests`` row, and every call forwarded to the
backend as a ``dependencies`` row with the same ``operation_Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tokenboard import refusals
from tokenboard.gateway import mock, tokenizer
from tokenboard.gateway.chat import BadRequest, ChatRequest, parse_chat
from tokenboard.gateway.config import MOCK, Api, GatewayConfig, Subscription
from tokenboard.gateway.connections import OVER_CAPACITY
from tokenboard.gateway.limiter import Clock, Decision, TokenLimiter
from tokenboard.gateway.telemetry import Telemetry
from tokenboard.gateway.upstream import Answer, Upstream, UpstreamError, passed_headers
from tokenboard.store import Store

log = logging.getLogger("tokenboard.gateway")

STATUS_PATH = "/status-0123456789abcdef"  # APIM's own health probe path
MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
INVALID_KEY = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
TOKENIZE_OFF_LOOP_BYTES = 64 * 1024
MOCK_URL = "http://mock-model.local"  # how the mock model's calls are named in dependencies
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that hung up before the answer
PERIOD_NOUNS = {"Hourly": "hour", "Daily": "day", "Weekly": "week", "Monthly": "month", "Yearly": "year"}


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class _ClientGone(Exception):
    pass


@dataclass
class _Call:
    """One request's facts for its ``requests`` row."""

    started: float  # gateway clock, epoch seconds
    t0: float  # perf_counter, for the duration
    id: str
    method: str
    path: str
    api: str
    subscription: str | None = None
    recorded: bool = False
    logged: dict[str, str] = field(default_factory=dict)  # what APIM's diagnostics log of the answer


class Gateway:
    def __init__(self, config: GatewayConfig, store: Store | None = None, clock: Clock = time.time) -> None:
        self.config = config
        self.settings = config.settings
        self.clock = clock
        self.limiter = TokenLimiter(clock)
        self.telemetry = Telemetry(store, config.settings)
        self.mock = mock.Deployments(config.settings.gateway.mock_backend_tokens_per_minute, clock)
        self._upstream: Upstream | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.telemetry.start()
        try:
            yield
        finally:
            if self._upstream is not None:
                await self._upstream.aclose()
                self._upstream = None
            await run_in_threadpool(self.telemetry.stop)

    @property
    def upstream(self) -> Upstream:
        if self._upstream is None:
            s = self.settings
            self._upstream = Upstream(
                s.gateway.upstream_key.get_secret_value(), s.gateway.upstream_timeout_seconds
            )
        return self._upstream

    # --- endpoints ---------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(self, request: Request) -> Response:
        call = self._new_call(request, api=request.url.path.strip("/").split("/", 1)[0])
        response = self._error(call, 404, "Resource not found")
        self._finish(call, 404)
        return response

    async def chat_completions(self, request: Request) -> Response:
        call = self._new_call(request, api=request.path_params["api"])
        try:
            response = await self._handle(request, call)
        except _ClientGone:  # nothing to answer, nothing counted; the row says what happened
            self._finish(call, CLIENT_CLOSED_REQUEST)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception:
            log.exception("Gateway error on %s %s", call.method, call.path)
            response = self._error(call, 500, "The gateway failed to process the request.")
        if not isinstance(response, StreamingResponse):
            self._finish(call, response.status_code)
        return response

    # --- the policy pipeline -----------------------------------------------------------

    async def _handle(self, request: Request, call: _Call) -> Response:
        api = self.config.apis.get(call.api)
        if api is None:
            return self._error(call, 404, "Resource not found")
        key = request.headers.get(self.config.key_header, "")
        if not key:
            return self._error(call, 401, MISSING_KEY)
        subscription = self.config.subscription_for_key(key)
        if subscription is None:
            return self._error(call, 401, INVALID_KEY)
        call.subscription = subscription.id
        if OVER_CAPACITY in request.scope.get("extensions", {}):
            message = "The gateway is at its limit of open connections. Try again in a moment."
            return self._error(call, 503, message, {"Retry-After": "1"})
        s = self.settings
        try:
            raw = await _read_body(request, s.gateway.max_body_bytes, s.gateway.body_timeout_seconds)
            chat = parse_chat(raw)
        except _TooLarge:
            message = f"The request body is larger than the limit of {s.gateway.max_body_bytes} bytes."
            return self._error(call, 413, message, self._state_headers(subscription))
        except _TooSlow:
            message = f"The request body was not received within {s.gateway.body_timeout_seconds} seconds."
            headers = self._state_headers(subscription) | {"Connection": "close"}
            return self._error(call, 408, message, headers)
        except BadRequest as exc:
            return self._error(call, 400, str(exc), self._state_headers(subscription))

        prompt = await self._prompt_tokens(chat)
        decision = self.limiter.admit(subscription.id, subscription.limits, prompt)
        if decision.status in (403, 429):
            return self._refusal(call, decision, subscription, prompt)
        assert decision.reservation is not None
        try:
            if chat.stream:
                return await self._stream(call, api, subscription, chat, decision, prompt)
            answer = await self._complete(call, api, chat)
        except UpstreamError as exc:
            after = self.limiter.release(decision.reservation)
            return self._error(call, exc.status, exc.message, self._limit_headers(after, 0))
        except BaseException:
            self.limiter.release(decision.reservation)
            raise
        if answer.status != 200 or answer.json is None:  # the backend's own error, passed through
            return self._passed_on(call, answer, decision)
        usage = _usage(answer.json.get("usage"), prompt, _reply_text(answer.json), chat.model)
        after = self.limiter.commit(decision.reservation, usage["total_tokens"])
        self.telemetry.record_tokens(self.clock(), subscription.id, api.id, _model(answer.json, chat), usage)
        headers = self._limit_headers(after, usage["total_tokens"]) | {"apim-request-id": call.id}
        return Response(answer.body, 200, headers=headers, media_type="application/json")

    async def _prompt_tokens(self, chat: ChatRequest) -> int:
        size = sum(len(tokenizer.message_text(m.get("content"))) for m in chat.messages)
        if size > TOKENIZE_OFF_LOOP_BYTES:
            return await run_in_threadpool(tokenizer.prompt_tokens, chat.messages, chat.model)
        return tokenizer.prompt_tokens(chat.messages, chat.model)

    async def _complete(self, call: _Call, api: Api, chat: ChatRequest) -> Answer:
        """The backend's answer, its call logged as a dependency (failed: no result code)."""
        started, t0 = self.clock(), time.perf_counter()
        status: int | None = None
        try:
            if api.backend == MOCK:
                await self._mock_latency()
                answer = self.mock.answer(chat)
            else:
                answer = await self.upstream.complete(api.backend, chat.body)
            status = answer.status
            return answer
        finally:
            self._record_backend_call(call, api, started, t0, status)

    def _record_backend_call(
        self, call: _Call, api: Api, started: float, t0: float, status: int | None
    ) -> None:
        url = f"{MOCK_URL}/{call.api}" if api.backend == MOCK else api.backend
        self.telemetry.record_dependency(
            at=started,
            operation_id=call.id,
            target=urlsplit(url).netloc,
            url=f"{url}/chat/completions",
            status=status,
            duration_ms=(time.perf_counter() - t0) * 1000,
        )

    def _passed_on(self, call: _Call, answer: Answer, decision: Decision) -> Response:
        """The backend's own error answer, as APIM passes it on: status, body and its wait."""
        assert decision.reservation is not None
        after = self.limiter.release(decision.reservation)
        headers = self._limit_headers(after, 0) | answer.headers | {"apim-request-id": call.id}
        response = Response(answer.body, answer.status, headers=headers, media_type=answer.content_type)
        self._log_answer(call, response)
        return response

    async def _mock_latency(self) -> None:
        if self.settings.gateway.mock_latency_ms:
            await asyncio.sleep(self.settings.gateway.mock_latency_ms / 1000)

    async def _stream(
        self,
        call: _Call,
        api: Api,
        subscription: Subscription,
        chat: ChatRequest,
        decision: Decision,
        prompt: int,
    ) -> Response:
        """Server-sent events; tokens are counted from the final usage chunk when the stream ends."""
        reservation = decision.reservation
        assert reservation is not None
        upstream_response = None
        if api.backend == MOCK:
            answer = await self._complete(call, api, chat)
            if answer.json is None:
                response = self._passed_on(call, answer, decision)
                self._finish(call, response.status_code)
                return response
            lines: AsyncIterator[str] = _aiter(mock.stream_events(answer.json))
        else:
            options = chat.body.get("stream_options")
            options = options if isinstance(options, dict) else {}
            payload = chat.body | {"stream_options": options | {"include_usage": True}}
            started, t0 = self.clock(), time.perf_counter()
            try:
                upstream_response = await self.upstream.open_stream(api.backend, payload)
            except UpstreamError:
                self._record_backend_call(call, api, started, t0, None)
                raise
            self._record_backend_call(call, api, started, t0, upstream_response.status_code)
            if upstream_response.status_code != 200:
                body = await upstream_response.aread()
                await upstream_response.aclose()
                content_type = upstream_response.headers.get("content-type", "application/json")
                error = Answer(
                    upstream_response.status_code,
                    body,
                    content_type,
                    None,
                    passed_headers(upstream_response.headers),
                )
                response = self._passed_on(call, error, decision)
                self._finish(call, response.status_code)
                return response
            lines = _with_newlines(upstream_response.aiter_lines())

        async def events() -> AsyncIterator[str]:
            usage: dict[str, Any] | None = None
            model = chat.model
            text: list[str] = []
            try:
                async for line in lines:
                    chunk = _sse_json(line)
                    if chunk is not None:
                        model = chunk.get("model") or model
                        if isinstance(chunk.get("usage"), dict):
                            usage = chunk["usage"]
                        for choice in chunk.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if isinstance(content, str):
                                text.append(content)
                    yield line
            except Exception as exc:  # the backend broke off mid-stream; the caller sees the stream end
                log.warning("Backend stream for %s ended early: %s", api.id, type(exc).__name__)
            finally:
                if upstream_response is not None:
                    with contextlib.suppress(Exception):
                        await upstream_response.aclose()
                counted = _usage(usage, prompt, "".join(text), chat.model)
                self.limiter.commit(reservation, counted["total_tokens"])
                self.telemetry.record_tokens(self.clock(), subscription.id, api.id, str(model), counted)
                self._finish(call, 200)

        headers = self._limit_headers(decision, prompt) | {
            "apim-request-id": call.id,
            "Cache-Control": "no-cache",
        }
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    # --- responses and records ---------------------------------------------------------

    def _new_call(self, request: Request, api: str) -> _Call:
        return _Call(
            self.clock(), time.perf_counter(), uuid.uuid4().hex, request.method, request.url.path, api
        )

    def _finish(self, call: _Call, status: int) -> None:
        if call.recorded:
            return
        call.recorded = True
        duration_ms = (time.perf_counter() - call.t0) * 1000
        self.telemetry.record_request(
            at=call.started,
            request_id=call.id,
            method=call.method,
            path=call.path,
            status=status,
            duration_ms=duration_ms,
            subscription=call.subscription,
            api=call.api,
            logged=call.logged,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s in %.1f ms (%s)", call.method, call.path, status, duration_ms, call.subscription
            )

    def _error(
        self, call: _Call, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        headers = (headers or {}) | {"apim-request-id": call.id}
        response = JSONResponse({"statusCode": status, "message": message}, status, headers=headers)
        self._log_answer(call, response)
        return response

    def _log_answer(self, call: _Call, response: Response) -> None:
        """Keep what APIM's diagnostics log of an error answer: its body and its Retry-After."""
        names = self.settings.telemetry
        call.logged[names.response_body_key] = refusals.logged_body(bytes(response.body))
        wait = response.headers.get(self.settings.gateway.retry_after_header) or response.headers.get(
            "retry-after"
        )
        if wait is not None:
            call.logged[names.retry_after_key] = wait

    def _limit_headers(self, decision: Decision, consumed: int) -> dict[str, str]:
        s = self.settings
        headers = {
            s.gateway.remaining_tokens_header: str(decision.remaining_tokens),
            s.gateway.consumed_tokens_header: str(consumed),
        }
        if decision.remaining_quota is not None:
            headers[s.gateway.remaining_quota_header] = str(decision.remaining_quota)
        return headers

    def _refusal(self, call: _Call, decision: Decision, subscription: Subscription, prompt: int) -> Response:
        """403 (quota) or 429 (rate); when the prompt alone exceeds the whole limit, waiting will
        not help: the message says so and no Retry-After promises otherwise."""
        limits = subscription.limits
        headers = self._limit_headers(decision, 0)
        if decision.retry_after is None and decision.status == 403:
            message = (
                f"Token quota is exceeded: this prompt alone is {prompt:,} tokens, more than the whole "
                f"quota of {limits.token_quota:,} tokens per {PERIOD_NOUNS[limits.quota_period]}. "
                "Shorten the prompt; retrying will not help."
            )
        elif decision.retry_after is None:
            message = (
                f"Token limit is exceeded: this prompt alone is {prompt:,} tokens, more than the whole "
                f"limit of {limits.tokens_per_minute:,} tokens per minute. Shorten the prompt; "
                "retrying will not help."
            )
        else:
            headers[self.settings.gateway.retry_after_header] = str(decision.retry_after)
            message = (
                refusals.quota_message(decision.retry_after)
                if decision.status == 403
                else refusals.token_limit_message(decision.retry_after)
            )
        return self._error(call, decision.status, message, headers)

    def _state_headers(self, subscription: Subscription) -> dict[str, str]:
        return self._limit_headers(self.limiter.state(subscription.id, subscription.limits), 0)


def create_app(config: GatewayConfig, store: Store | None = None, clock: Clock = time.time) -> Starlette:
    """The gateway app; ``app.state.gateway`` holds its limiter and telemetry (for tests)."""
    gateway = Gateway(config, store, clock)
    app = Starlette(
        routes=[
            Route("/{api}/chat/completions", gateway.chat_completions, methods=["POST"]),
            Route(STATUS_PATH, gateway.status, methods=["GET"]),
            Route("/{path:path}", gateway.not_found, methods=ALL_METHODS),
        ],
        lifespan=gateway.lifespan,
    )
    app.state.gateway = gateway
    return app


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, within ``limit`` bytes and ``timeout`` seconds of the head's arrival."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _TooLarge
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise _TooSlow from None
    except ClientDisconnect:
        raise _ClientGone from None
    return b"".join(chunks)


def _usage(usage: Any, prompt_estimate: int, reply: str, model: str) -> dict[str, int]:
    """The backend's usage numbers, or the gateway's own count when it sent none."""
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        result = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        details = (usage.get("prompt_tokens_details") or {}, usage.get("completion_tokens_details") or {})
        for part, key in zip(details, ("cached_tokens", "reasoning_tokens"), strict=True):
            if isinstance(part, dict) and isinstance(part.get(key), int):
                result[key] = part[key]
        return result
    completion = tokenizer.count(reply, model)
    return {
        "prompt_tokens": prompt_estimate,
        "completion_tokens": completion,
        "total_tokens": prompt_estimate + completion,
    }


def _reply_text(answer: dict[str, Any]) -> str:
    choices = answer.get("choices")
    if not isinstance(choices, list):
        return ""
    return "".join(
        tokenizer.message_text((c.get("message") or {}).get("content"))
        for c in choices
        if isinstance(c, dict)
    )


def _model(answer: dict[str, Any], chat: ChatRequest) -> str:
    model = answer.get("model")
    return model if isinstance(model, str) and model else chat.model


def _sse_json(line: str) -> dict[str, Any] | None:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None


async def _aiter(items: Iterable[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


async def _with_newlines(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        yield line + "\n"
