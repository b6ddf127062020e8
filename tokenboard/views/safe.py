"""Text from telemetry or a URL, made to show as text and nothing else.

Streamlit renders Markdown in most of its strings (captions, alerts), so a subscription name or
a link value like ``[x](https://evil.example)`` would become a live link. Such strings pass
through :func:`md` first.
"""

from __future__ import annotations

import re

# Characters that start Markdown (or Streamlit's extensions of it) anywhere in a line: escapes,
# code, emphasis, links and images, raw HTML and autolinks, tables, math, strikethrough, the
# :material/...: and :color[...] directives, e-mail autolinks, entities.
_ANYWHERE = re.compile(r"([\\`*_\[\]<>|$~:@&])")
# ...and what starts a block only at the beginning of a line (headings, lists, setext underlines,
# rules): a marker followed by a space, the end of the line, or more markers. "-5%" stays as it is.
_LINE_START = re.compile(r"^(\s*)([#+=-])(?=[\s#+=-]|$)", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)", re.MULTILINE)
# GFM also finds links in plain text after parsing, where no escape reaches: http(s)://...,
# www.example.com and name@example.com. A word joiner (U+2060, invisible and zero-width) inside
# each of those patterns leaves the text looking the same and the pattern unmatched. Streamlit
# also turns :material/name: into an icon after parsing: the joiner stops that too.
_AUTOLINK = re.compile(r"(?:https?|www)(?=\\?[:.])|:(?=material/)|@", re.IGNORECASE)
JOINER = "\u2060"


def md(value: object, *, lines: bool = False) -> str:
    """``value`` as Markdown that renders exactly as its characters, never as a link, image or HTML.

    Line breaks are kept as line breaks with ``lines=True`` (a reply), else they read as spaces.
    """
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _ANYWHERE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _ORDERED.sub(r"\1\\\2", text)
    text = _AUTOLINK.sub(lambda m: m.group(0) + JOINER, text)
    return text.replace("\n", "  \n") if lines else text
