"""What a shared link may say, and what of it is ignored.

Every choice on a page is kept in the URL, so a view is a link. A link's values are checked
before the widgets take them: a value a widget cannot take (``range=zzz``, ``tz=Mars/Base``,
``end=0001-01-01T00:00:00Z``, a parameter no page knows) is named in one notice instead of
vanishing silently, and no value can raise. Filter values (subscriptions, APIs, models) are
always kept, even when the range holds no data for them (the sidebar says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tokenboard import safe

# Streamlit's own query parameters: never ours to judge.
RESERVED = frozenset({"embed", "embed_options"})
MAX_SHOWN = 60  # characters of one value in the notice


@dataclass(frozen=True)
class Rule:
    """What one link parameter accepts: ``check(value)`` is None when fine, else a short reason
    (or ""); ``many`` when the parameter may repeat (``sub=a&sub=b``)."""

    check: Callable[[str], str | None]
    many: bool = False


def one_of(choices: Iterable[str]) -> Rule:
    allowed = tuple(choices)
    return Rule(lambda value: None if value in allowed else "")


def whole_between(low: int, high: int) -> Rule:
    def check(value: str) -> str | None:
        try:
            number = int(value.strip())
        except ValueError:
            return ""
        return None if low <= number <= high else f"not {low}-{high}"

    return Rule(check)


def anything(many: bool = False) -> Rule:
    """Free values (filters, a subscription to show): kept whatever they are."""
    return Rule(lambda value: None, many=many)


def ignored(params: Mapping[str, Sequence[str]], rules: Mapping[str, Rule]) -> list[str]:
    """``key=value`` for every value of ``params`` that its rule rejects, and for every
    parameter no rule knows (in the order of ``params``)."""
    out = []
    for key, values in params.items():
        if key in RESERVED:
            continue
        rule = rules.get(key)
        if rule is None:
            out += [_pair(key, v) for v in values]
            continue
        if not rule.many and len(values) > 1:
            out += [_pair(key, v) for v in values[:-1]]  # one value: the last one wins
            values = values[-1:]
        for value in values:
            reason = rule.check(value)
            if reason is not None:
                out.append(_pair(key, value) + (f" ({reason})" if reason else ""))
    return out


def notice(items: Sequence[str]) -> str | None:
    """One sentence naming everything ignored: ``Ignored from the link: range=zzz, tz=Mars/Base.``

    Markdown (for ``st.warning``), each value escaped: a link's text is shown, never rendered."""
    if not items:
        return None
    return "Ignored from the link: " + ", ".join(safe.md(item) for item in items) + "."


def _pair(key: str, value: str) -> str:
    text = value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 1] + "…"
    return f"{key}={text}"
