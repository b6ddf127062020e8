"""The chat-completions request body: parsed and checked before anything is counted.

Whatever cannot be a request is a 400 here, so nothing later (the tokenizer, the backend
call, the telemetry written to Parquet) meets it: JSON nested deeper than ``MAX_DEPTH``,
numbers JSON cannot carry (NaN, more digits than Python converts), unpaired surrogates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "gpt-4o-mini"
MAX_DEPTH = 64  # nesting of objects and arrays; tool schemas need a dozen or so
MAX_MODEL_CHARS = 256  # the model name becomes a telemetry dimension


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
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(f"The request body is nested more than {MAX_DEPTH} levels deep.") from None
    except ValueError as exc:  # also JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"The request body is not valid JSON ({_short(exc)}).") from None
    _check_values(body)
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
    if len(model) > MAX_MODEL_CHARS:
        raise BadRequest(f"'model' must be at most {MAX_MODEL_CHARS} characters.")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise BadRequest("'max_tokens' must be a whole number of at least 1.")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false.")
    return ChatRequest(body, model.strip(), messages, max_tokens, stream)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_values(body: Any) -> None:
    """Depth at most MAX_DEPTH, and every string (keys too) encodable as UTF-8."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadRequest(f"The request body is nested more than {MAX_DEPTH} levels deep.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "The request body holds text that is not valid Unicode (an unpaired surrogate)."
        ) from None


def _short(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if "digits" in str(exc):  # int() refuses more than sys.get_int_max_str_digits() digits
        return "a number has too many digits"
    return str(exc)
