"""The built-in mock model: a deterministic reply, usage counted with the gateway's tokenizer.

It answers exactly like an OpenAI-compatible backend (``chat.completion`` objects, or server-sent
``chat.completion.chunk`` events ending with a usage chunk and ``[DONE]``), so the gateway's own
code path is the same for the mock and for a real upstream. :func:`mock_app` serves it alone,
which tests use as a second, independent upstream and the bench uses as its baseline.

:class:`Deployments` gives it a model deployment's own tokens-per-minute limit, as Azure OpenAI
enforces per deployment whoever calls: one sliding-window counter per model, shared by every
subscription; over it the answer is Azure OpenAI's 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tokenboard import refusals
from tokenboard.gateway import tokenizer
from tokenboard.gateway.chat import BadRequest, ChatRequest, parse_chat
from tokenboard.gateway.limiter import Clock, Limits, TokenLimiter
from tokenboard.gateway.upstream import Answer

MAX_REPLY_TOKENS = 64


def reply_text(request: ChatRequest) -> str:
    """Same prompt, same reply: an echo of the last user message, cut to ``max_tokens``."""
    last_user = next(
        (
            tokenizer.message_text(m.get("content"))
            for m in reversed(request.messages)
            if m.get("role") == "user"
        ),
        "",
    )
    text = f"Mock reply from {request.model}. You said: {' '.join(last_user.split())}"
    limit = min(request.max_tokens or MAX_REPLY_TOKENS, MAX_REPLY_TOKENS)
    return tokenizer.truncate(text, limit, request.model)


def completion(request: ChatRequest, created: int | None = None) -> dict[str, Any]:
    reply = reply_text(request)
    prompt = tokenizer.prompt_tokens(request.messages, request.model)
    completion_tokens = tokenizer.count(reply, request.model)
    return {
        "id": "chatcmpl-"
        + hashlib.sha256(json.dumps(request.messages, sort_keys=True).encode()).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": request.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


class Deployments:
    """The mock model's deployments, one per model, each with its own tokens-per-minute limit."""

    def __init__(self, tokens_per_minute: int = 0, clock: Clock = time.time) -> None:
        self.limits = Limits(tokens_per_minute) if tokens_per_minute else None
        self.limiter = TokenLimiter(clock)

    def answer(self, request: ChatRequest) -> Answer:
        """The completion, or Azure OpenAI's 429 when the model's deployment is over its limit."""
        result = completion(request)
        usage = result["usage"]
        if self.limits is not None:
            decision = self.limiter.admit(request.model, self.limits, usage["prompt_tokens"])
            if decision.reservation is None:
                # A prompt larger than the whole limit never fits; Azure OpenAI still says a minute.
                wait = decision.retry_after if decision.retry_after is not None else 60
                body = refusals.backend_limit_body(wait).encode()
                headers = {"retry-after": str(wait), "retry-after-ms": str(wait * 1000)}
                return Answer(429, body, "application/json", None, headers)
            self.limiter.commit(decision.reservation, usage["total_tokens"])
        return Answer(200, json.dumps(result, ensure_ascii=False).encode(), "application/json", result)


def stream_events(answer: dict[str, Any]) -> Iterator[str]:
    """The completion as server-sent events, the way OpenAI streams with ``include_usage``."""
    base = {k: answer[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    reply = answer["choices"][0]["message"]["content"]
    words = reply.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    yield _event(base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    for piece in pieces:
        yield _event(base | {"choices": [{"index": 0, "delta": {"content": piece}}]})
    yield _event(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield _event(base | {"choices": [], "usage": answer["usage"]})
    yield "data: [DONE]\n\n"


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def mock_app(latency_ms: int = 0, tokens_per_minute: int = 0) -> Starlette:
    """The mock model alone, as an OpenAI-compatible API: ``POST /v1/chat/completions``
    (``tokens_per_minute``: each model deployment's own limit, 0 for none)."""
    deployments = Deployments(tokens_per_minute)

    async def chat_completions(request: Request) -> Response:
        try:
            chat = parse_chat(await request.body())
        except BadRequest as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error"}}, 400)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        answer = deployments.answer(chat)
        if answer.json is None:
            return Response(
                answer.body, answer.status, headers=answer.headers, media_type=answer.content_type
            )
        if chat.stream:
            return StreamingResponse(stream_events(answer.json), media_type="text/event-stream")
        return JSONResponse(answer.json)

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
