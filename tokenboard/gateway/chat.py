"""The chat-completions request body: parsed and checked before anything is counted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "gpt-4o-mini"


class BadRequest(ValueError):
    """The body cannot be a chat-completions request; the message says why (400)."""


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None
    stream: bool


def parse_chat(raw: bytes) -> ChatRequest:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON ({_short(exc)}).") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object with 'messages'.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("The request body needs 'messages': a non-empty list of chat messages.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role' (system, user, assistant, ...).")
    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a non-empty string.")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise BadRequest("'max_tokens' must be a whole number of at least 1.")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false.")
    return ChatRequest(body, model.strip(), messages, max_tokens, stream)


def _short(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "it is not UTF-8 text"
