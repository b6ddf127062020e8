"""The built-in mock model: a deterministic reply, usage counted with the gateway's tokenizer.

It answers exactly like an OpenAI-compatible backend (``chat.completion`` objects, or server-sent
``chat.completion.chunk`` events ending with a usage chunk and ``[DONE]``), so the gateway's own
code path is the same for the mock and for a real upstream. :func:`mock_app` serves it alone,
which tests use as a second, independent upstream and the bench uses as its baseline.
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

from tokenboard.gateway import tokenizer
from tokenboard.gateway.chat import BadRequest, ChatRequest, parse_chat

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


def mock_app(latency_ms: int = 0) -> Starlette:
    """The mock model alone, as an OpenAI-compatible API: ``POST /v1/chat/completions``."""

    async def chat_completions(request: Request) -> Response:
        try:
            chat = parse_chat(await request.body())
        except BadRequest as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error"}}, 400)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        answer = completion(chat)
        if chat.stream:
            return StreamingResponse(stream_events(answer), media_type="text/event-stream")
        return JSONResponse(answer)

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
