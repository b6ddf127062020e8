"""Failures as one clear message with what to do: never a traceback."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import streamlit as st

from tokenboard import backends
from tokenboard.backends import BackendError
from tokenboard.kql import QueryError
from tokenboard.safe import md
from tokenboard.store import StoreError

# What a page catches and words; anything else is a bug and shows as one.
CAUGHT = (BackendError, QueryError, StoreError, OSError)
SHOWN = "_tokenboard_errors_shown"
_shown_lock = threading.Lock()

CHECK_SOURCE = "Check the data source in the settings, then press **Refresh**."
# What to do, by kind of failure (when the backend gave no hint of its own).
ADVICE: dict[type[BackendError], str] = {
    backends.AuthError: "Sign in with `az login` (or check the app's managed identity), "
    "then press **Refresh**.",
    backends.ForbiddenError: "Ask for the **Monitoring Reader** (or Log Analytics Reader) role on the "
    "Application Insights resource, then press **Refresh**.",
    backends.NotFoundError: "Check `app_insights_resource_id` (or `workspace_id`) in the settings.",
    backends.QueryTimeoutError: "Pick a shorter time range or fewer filters, "
    "or raise `query_timeout_seconds`.",
    backends.ThrottledError: "The query API is busy: wait a minute, then press **Refresh**.",
    backends.NetworkError: "Check the network connection and `azure_endpoint`, then press **Refresh**.",
    backends.BadQueryError: "This is a bug in tokenboard's query files: "
    "please report it with the KQL shown here.",
}


def message(exc: Exception) -> str:
    """The text of the one error box for a failure (its own words shown as text, never Markdown)."""
    if isinstance(exc, backends.StoreReadError):
        said = str(exc).removesuffix(exc.hint).strip() if exc.hint else str(exc)
        return f"**The local data store cannot be read.** {md(said)} {exc.hint or CHECK_SOURCE}".strip()
    if isinstance(exc, BackendError):
        advice = exc.hint or ADVICE.get(type(exc), CHECK_SOURCE)  # our own words, with Markdown
        said = str(exc).removesuffix(exc.hint).strip() if exc.hint else str(exc)
        return f"**The data could not be loaded.** {md(said)} {advice}".strip()
    if isinstance(exc, QueryError):
        return f"**That view cannot be shown.** {md(exc)}. Check the filters or the link you opened."
    if isinstance(exc, StoreError):
        return f"**{exc.title}** {md(exc)}."
    if isinstance(exc, OSError):
        where = f" ({md(exc.filename)})" if getattr(exc, "filename", None) else ""
        text = md(exc.strerror or exc)
        return f"**The local data store cannot be read**{where}: {text}. {CHECK_SOURCE}"
    return f"**Something went wrong.** {type(exc).__name__}."


@contextlib.contextmanager
def shown() -> Iterator[None]:
    """Run a page body; a backend, query or store failure becomes one ``st.error`` and stops."""
    try:
        yield
    except CAUGHT as exc:
        st.error(message(exc), icon=":material/error:")
        st.stop()


def start_page() -> None:
    """A full run begins: no error has been shown on the page yet."""
    st.session_state[SHOWN] = set()


def show(exc: Exception) -> None:
    """A failure in its own place on the page.

    A failure every query shares (no sign-in, no access, no network) is shown in full once
    per page run; other places that hit it only say so, instead of repeating the advice.
    """
    text = message(exc)
    with _shown_lock:
        shown = st.session_state.setdefault(SHOWN, set())
        first = text not in shown
        shown.add(text)
    if first:
        st.error(text, icon=":material/error:")
    else:
        st.caption(":material/error: Not loaded: the error shown on this page applies here too.")
