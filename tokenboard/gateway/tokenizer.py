"""Token counting offline with ``bpe-openai``, for ``estimate-prompt-tokens`` and the mock model.

``tiktoken`` downloads its encodings at run time; ``bpe-openai`` ships them in the wheel, so the
gateway counts tokens with no network. Prompts are counted the way OpenAI bills chat messages
(a few tokens of framing per message plus the text), so the estimate matches what an
OpenAI-compatible backend reports in ``usage.prompt_tokens`` for plain text messages.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import bpe_openai

DEFAULT_ENCODING = "o200k_base"
TOKENS_PER_MESSAGE = 3  # <|start|>{role}\n ... <|end|>
REPLY_PRIMING_TOKENS = 3  # every reply is primed with <|start|>assistant<|message|>
_CHUNK_CHARS = 100_000  # keeps each call under the library's per-call token limit


@functools.cache
def _encoding(name: str) -> bpe_openai.Encoding:
    return bpe_openai.get_encoding(name)


@functools.cache
def encoding_for(model: str) -> bpe_openai.Encoding:
    """The model's encoding when the library knows the model, else ``o200k_base`` (GPT-4o family)."""
    try:
        return _encoding(bpe_openai.encoding_name_for_model(model))
    except Exception:  # unknown model names are the norm behind a gateway (Phi-4, Llama, ...)
        return _encoding(DEFAULT_ENCODING)


def count(text: str, model: str = "") -> int:
    """Tokens of plain text (special-token look-alikes in user text count as ordinary text)."""
    if not text:
        return 0
    encoding = encoding_for(model)
    return sum(
        len(encoding.encode_ordinary(text[i : i + _CHUNK_CHARS])) for i in range(0, len(text), _CHUNK_CHARS)
    )


def truncate(text: str, max_tokens: int, model: str = "") -> str:
    """The longest prefix of ``text`` that is at most ``max_tokens`` tokens."""
    encoding = encoding_for(model)
    tokens = encoding.encode_ordinary(text)
    return text if len(tokens) <= max_tokens else encoding.decode(tokens[:max_tokens])


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts of which text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part
        )
    return ""


def prompt_tokens(messages: Iterable[Mapping[str, Any]], model: str = "") -> int:
    """Tokens of a chat prompt: framing per message, role, name and text, plus the reply priming."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += count(str(message.get("role", "")), model)
        total += count(message_text(message.get("content")), model)
        if message.get("name"):
            total += count(str(message["name"]), model) + 1
    return total
