"""Who may use the dashboard: the sign-in table, roles from ID-token claims, and exposure.

Signing in is Streamlit's own OpenID Connect (``st.login`` / ``st.user``, Authlib), configured in
the ``[auth]`` table of the secrets; tokenboard decides what a signed-in person may do:

- ``viewer``: Overview, Usage, Throttling, Reports, Budgets and their CSV downloads;
- ``operator``: also Test request, which spends real tokens with the configured key.

Everyone the identity provider signs in may read unless an allow-list (e-mail addresses, e-mail
domains, values of a claim such as Entra ID's ``roles`` or ``groups``) narrows that. Operators are
always named explicitly, by e-mail address or claim value. Without sign-in tokenboard is one
person's tool: it listens on loopback only, unless ``allow_anonymous`` says otherwise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tokenboard.config import ConfigError, Settings

VIEWER, OPERATOR = "viewer", "operator"
# How the dashboard is being used: people sign in; one person on this machine; anyone who can reach it.
SIGN_IN, LOCAL, ANONYMOUS = "sign-in", "local", "anonymous"
AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
DEFAULT_CONTACT = "the team that runs this dashboard"


@dataclass(frozen=True)
class SignIn:
    """The checked ``[auth]`` table: the providers to offer (``None``: the table's own client)."""

    providers: tuple[str | None, ...]


def sign_in(secrets: Mapping[str, Any]) -> SignIn | None:
    """The sign-in configuration, or None when there is no ``[auth]`` table.

    Errors name the key, never its value: every value here is, or sits beside, a secret.
    """
    auth = secrets.get("auth")
    if auth is None:
        return None
    if not isinstance(auth, Mapping):
        raise ConfigError("auth", "must be a table ([auth] in .streamlit/secrets.toml)")
    for key in AUTH_KEYS:
        _text(auth, key, "auth")
    redirect = urlsplit(str(auth["redirect_uri"]))
    if redirect.scheme not in ("http", "https") or not redirect.netloc or redirect.path != "/oauth2callback":
        raise ConfigError("auth.redirect_uri", "must be this dashboard's address ending in /oauth2callback")
    providers: list[str | None] = []
    if "client_id" in auth:
        for key in PROVIDER_KEYS:
            _text(auth, key, "auth")
        providers.append(None)
    for name, table in auth.items():
        if isinstance(table, Mapping) and "client_id" in table:
            for key in PROVIDER_KEYS:
                _text(table, key, f"auth.{name}")
            providers.append(str(name))
    if not providers:
        raise ConfigError(
            "auth", "has no identity provider: set client_id, client_secret and server_metadata_url"
        )
    return SignIn(tuple(providers))


def _text(table: Mapping[str, Any], key: str, where: str) -> None:
    if key not in table:
        raise ConfigError(f"{where}.{key}", "is missing")
    if not isinstance(table[key], str) or not table[key].strip():
        raise ConfigError(f"{where}.{key}", "must be non-empty text")


@dataclass(frozen=True)
class Person:
    """A signed-in person as their ID token describes them."""

    subject: str
    name: str
    email: str  # lower case; "" when the provider sent none or says it is not verified
    claim_values: frozenset[str]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], claim: str) -> Person:
        email = claims.get("email")
        verified = claims.get("email_verified") is not False  # Entra ID sends no such claim
        values = claims.get(claim)
        if isinstance(values, str):
            values = [values]
        return cls(
            subject=str(claims.get("sub") or ""),
            name=str(claims.get("name") or ""),
            email=email.strip().lower() if isinstance(email, str) and verified else "",
            claim_values=frozenset(str(v) for v in values or () if isinstance(v, str | int)),
        )

    @property
    def shown_as(self) -> str:
        """How the sidebar and messages name this person."""
        return self.email or self.name or self.subject or "you"


def role_of(person: Person, settings: Settings) -> str | None:
    """``operator``, ``viewer``, or None when an allow-list leaves this person out."""
    domain = person.email.rpartition("@")[2] if "@" in person.email else ""
    if (person.email and person.email in _lower(settings.access.operator_emails)) or (
        person.claim_values & set(settings.access.operator_claim_values)
    ):
        return OPERATOR
    allow_lists = (
        settings.access.allowed_emails,
        settings.access.allowed_email_domains,
        settings.access.allowed_claim_values,
    )
    if not any(allow_lists):
        return VIEWER  # the identity provider is the gate (e.g. Entra ID's app assignment)
    domains = {d.lstrip("@") for d in _lower(settings.access.allowed_email_domains)}
    if (
        (person.email and person.email in _lower(settings.access.allowed_emails))
        or (domain and domain in domains)
        or person.claim_values & set(settings.access.allowed_claim_values)
    ):
        return VIEWER
    return None


def refusal(person: Person, settings: Settings) -> str:
    """The one sentence a signed-in person outside every allow-list reads."""
    contact = settings.access.contact or DEFAULT_CONTACT
    return (
        f"You are signed in as {person.shown_as}, but this dashboard is not open to you: "
        f"ask {contact} for access."
    )


def _lower(values: tuple[str, ...]) -> set[str]:
    return {v.lower() for v in values}


# --- exposure -------------------------------------------------------------------------------


def is_loopback(address: str | None) -> bool:
    """True for addresses only this machine can reach (``None`` / "" is every interface)."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def mode(address: str | None, signed_in: bool) -> str:
    if signed_in:
        return SIGN_IN
    return LOCAL if is_loopback(address) else ANONYMOUS


def exposure_problem(address: str | None, signed_in: bool, settings: Settings) -> str | None:
    """Why tokenboard must not serve on this address, or None when it may."""
    if signed_in or is_loopback(address) or settings.access.allow_anonymous:
        return None
    where = f"address {address}" if address else "every network interface"
    return (
        f"tokenboard will not listen on {where} without sign-in: configure the [auth] table "
        "(README: Deploying for a team), or set allow_anonymous = true in [access] to let in anyone who "
        "can reach it."
    )


def anonymous_role(current_mode: str) -> str:
    """Without sign-in: the person at this machine may do everything; a network of strangers reads.

    Operators are named explicitly, and nobody is named when nobody signs in.
    """
    return OPERATOR if current_mode == LOCAL else VIEWER


def any_url_allowed(current_mode: str, settings: Settings) -> bool:
    """May Test request call a URL other than the configured gateway (always with a typed key)?"""
    return current_mode == LOCAL or settings.access.test_request_any_url
