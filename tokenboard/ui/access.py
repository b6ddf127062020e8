"""Sign-in and roles in the running app: who is here, and which pages they get.

With ``[auth]`` configured, a signed-out visitor gets ``st.navigation`` with the sign-in prompt
alone, registered under every page's URL (so a shared link shows the prompt, not "page not
found"): no page script runs and no query is sent before sign-in. A viewer's navigation holds
no Test request page, so its URL falls back to Overview like any unknown page.

One gap needs closing by hand: while no script of the process has called ``st.navigation`` yet,
Streamlit treats ``pages/`` as an old-style pages folder and runs a deep-linked page script
directly, without app.py. So every page script starts with :func:`guard_page`, which leaves that
mode (a rerun then goes through app.py) and checks the visitor itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from tokenboard import access
from tokenboard.access import OPERATOR, Person, SignIn
from tokenboard.config import Settings
from tokenboard.safe import md
from tokenboard.ui.settings import sign_in_settings


@dataclass(frozen=True)
class Visitor:
    mode: str  # access.SIGN_IN, LOCAL or ANONYMOUS
    role: str | None  # None: signed out, or outside every allow-list
    person: Person | None = None
    problem: str = ""  # set when tokenboard must not serve at all (exposed without sign-in)

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


def identify(settings: Settings) -> tuple[Visitor, SignIn | None]:
    """Who is visiting, from the sign-in configuration, the bind address and ``st.user``."""
    sign_in = sign_in_settings()
    address = st.get_option("server.address")
    problem = access.exposure_problem(address, sign_in is not None, settings)
    mode = access.mode(address, sign_in is not None)
    if problem:
        return Visitor(mode, None, problem=problem), sign_in
    if sign_in is None:
        return Visitor(mode, access.anonymous_role(mode)), None
    if not st.user.is_logged_in:
        return Visitor(mode, None), sign_in
    person = Person.from_claims(st.user.to_dict(), settings.access.claim)
    return Visitor(mode, access.role_of(person, settings), person), sign_in


def admit(settings: Settings, url_paths: Sequence[str]) -> Visitor:
    """The visitor with a role; anyone else gets one page (under every URL) and the run stops."""
    visitor, sign_in = identify(settings)
    if visitor.problem:
        _only(lambda: _refused_to_serve(visitor.problem), url_paths, "tokenboard")
    if visitor.role is None and visitor.person is None and sign_in is not None:
        _only(lambda: _prompt(sign_in), url_paths, "Sign in")
    if visitor.role is None and visitor.person is not None:
        person = visitor.person
        _only(lambda: _not_allowed(person, settings), url_paths, "No access")
    return visitor


def guard_page(settings: Settings, *, operator: bool = False) -> Visitor:
    """The first call of every page script: the visitor, or a stopped run for anyone without the role."""
    if PagesManager.uses_pages_directory:
        # A page script run directly by the pages-folder mode: switch that mode off for the
        # process and run again, through app.py and its navigation.
        PagesManager.uses_pages_directory = False
        st.rerun()
    visitor, sign_in = identify(settings)
    if visitor.problem:
        _refused_to_serve(visitor.problem)
    elif visitor.role is None and visitor.person is None and sign_in is not None:
        _prompt(sign_in)
    elif visitor.role is None and visitor.person is not None:
        _not_allowed(visitor.person, settings)
    elif operator and not visitor.is_operator:
        st.error("This page is for operators only.", icon=":material/block:")
    else:
        return visitor
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")


def sidebar(visitor: Visitor) -> None:
    """Who is signed in and a sign-out button; or, without sign-in, who can reach the dashboard."""
    bar = st.sidebar
    if visitor.mode == access.SIGN_IN and visitor.person is not None:
        box = bar.container(border=True)
        person = visitor.person
        box.markdown(f":material/account_circle: **{md(person.name or person.shown_as)}**")
        box.caption(f"{md(person.email) + ' · ' if person.email and person.name else ''}{visitor.role}")
        if box.button("Sign out", icon=":material/logout:", key="sign-out", width="stretch"):
            st.logout()
    elif visitor.mode == access.LOCAL:
        bar.caption(
            f":material/lock: Local mode: listening on {md(st.get_option('server.address'))} only, "
            "no sign-in. Configure `[auth]` to share the dashboard."
        )
    else:
        bar.warning(
            "No sign-in: anyone who can reach this server can read the dashboard (`allow_anonymous`).",
            icon=":material/public:",
        )


def _only(page: Callable[[], None], url_paths: Sequence[str], title: str) -> NoReturn:
    """Run ``page`` whatever URL was asked for, and nothing else."""
    pages = [st.Page(page, title=title, url_path="", default=True)]
    pages += [st.Page(page, title=title, url_path=path) for path in url_paths]
    st.navigation(pages, position="hidden").run()
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")


def _prompt(sign_in: SignIn) -> None:
    st.set_page_config(page_title="Sign in · tokenboard", page_icon=":material/lock:", layout="centered")
    st.title("tokenboard")
    st.write("Token usage and throttling of the LLM gateway. Sign in to continue.")
    for provider in sign_in.providers:
        label = "Sign in" if provider is None else f"Sign in with {provider.replace('_', ' ').title()}"
        if st.button(label, type="primary", icon=":material/login:", key=f"sign-in-{provider or ''}"):
            st.login(provider) if provider else st.login()


def _not_allowed(person: Person, settings: Settings) -> None:
    st.set_page_config(page_title="No access · tokenboard", page_icon=":material/block:", layout="centered")
    st.title("tokenboard")
    st.warning(md(access.refusal(person, settings)), icon=":material/block:")
    if st.button("Sign out", icon=":material/logout:", key="sign-out"):
        st.logout()


def _refused_to_serve(problem: str) -> None:
    st.set_page_config(page_title="tokenboard", page_icon=":material/block:", layout="centered")
    st.error(md(problem), icon=":material/block:")
