"""Settings for the running app: ``st.secrets`` (when a secrets file exists) plus the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import streamlit as st

from tokenboard.access import SignIn, sign_in
from tokenboard.config import ConfigError, Settings
from tokenboard.safe import md
from tokenboard.settings import load_settings


def read_secrets() -> Mapping[str, Any]:
    """The secrets as a plain dict; no secrets file is normal (the embedded default needs none)."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # StreamlitSecretNotFoundError is one
        return {}


def app_settings() -> Settings:
    """The settings, or one error naming the bad key and a stopped page."""
    try:
        return load_settings(read_secrets())
    except ConfigError as exc:
        _stop(exc)


def sign_in_settings() -> SignIn | None:
    """The checked ``[auth]`` table (None: no sign-in), or one error naming the bad key."""
    try:
        return sign_in(read_secrets())
    except ConfigError as exc:
        _stop(exc)


def _stop(exc: ConfigError) -> NoReturn:
    """One error box naming the key (never a secret's value), and a stopped page."""
    st.error(
        f"**tokenboard is not configured correctly.** {md(exc)}.\n\n"
        "Fix it in `.streamlit/secrets.toml` or the matching `TOKENBOARD_*` environment variable, "
        "then reload the page.",
        icon=":material/settings:",
    )
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")
