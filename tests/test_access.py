"""Who may use the dashboard: the [auth] table, roles from claims, allow-lists, exposure."""

from __future__ import annotations

import pytest

from tokenboard import access
from tokenboard.access import OPERATOR, VIEWER, Person
from tokenboard.config import ConfigError, Settings
from tokenboard.settings import load_settings

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-secret-4242",
    "client_id": "client-id-4242",
    "client_secret": "client-secret-4242",
    "server_metadata_url": "https://login.example/.well-known/openid-configuration",
}


def person(email: str = "", roles: list[str] | None = None, **claims: object) -> Person:
    return Person.from_claims({"sub": "s1", "email": email, "roles": roles or [], **claims}, "roles")


def settings(**access_values: object) -> Settings:
    return load_settings({"access": access_values}, environ={})


# --- the [auth] table ---------------------------------------------------------------------------


def test_no_auth_table_means_no_sign_in() -> None:
    assert access.sign_in({"backend": "local"}) is None


def test_the_default_provider_and_named_providers_are_offered() -> None:
    named = {k: v for k, v in AUTH.items() if k not in ("redirect_uri", "cookie_secret")}
    found = access.sign_in({"auth": {**AUTH, "microsoft": named}})
    assert found is not None and found.providers == (None, "microsoft")
    only_named = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "c", "microsoft": named}
    assert access.sign_in({"auth": only_named}).providers == ("microsoft",)


@pytest.mark.parametrize("key", ["redirect_uri", "cookie_secret", "client_id", "client_secret"])
def test_a_missing_auth_key_is_named(key: str) -> None:
    auth = {k: v for k, v in AUTH.items() if k != key}
    if key == "client_id":
        with pytest.raises(ConfigError, match="'auth' has no identity provider"):
            access.sign_in({"auth": auth})
        return
    with pytest.raises(ConfigError, match=f"'auth.{key}' is missing"):
        access.sign_in({"auth": auth})


@pytest.mark.parametrize("key", ["cookie_secret", "client_id", "client_secret", "server_metadata_url"])
@pytest.mark.parametrize("value", [98765432109876, ["client-secret-4242"], True, ""])
def test_a_bad_auth_value_is_named_never_shown(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        access.sign_in({"auth": {**AUTH, key: value}})
    message = str(caught.value)
    assert f"'auth.{key}'" in message
    for secret in ("98765432109876", "client-secret-4242", "cookie-secret-4242", "client-id-4242"):
        assert secret not in message


def test_the_redirect_uri_must_end_in_oauth2callback() -> None:
    with pytest.raises(ConfigError, match=r"'auth\.redirect_uri' must be this dashboard's address"):
        access.sign_in({"auth": {**AUTH, "redirect_uri": "http://localhost:8501/"}})


# --- roles ------------------------------------------------------------------------------------------


def test_without_allow_lists_everyone_signed_in_reads() -> None:
    assert access.role_of(person("anyone@anywhere.example"), Settings()) == VIEWER
    assert access.role_of(person(), Settings()) == VIEWER  # not even an e-mail address


@pytest.mark.parametrize(
    ("config", "who", "role"),
    [
        ({"allowed_emails": ["Ana@Contoso.example"]}, person("ana@contoso.example"), VIEWER),
        ({"allowed_emails": ["ana@contoso.example"]}, person("bob@contoso.example"), None),
        ({"allowed_email_domains": ["contoso.example"]}, person("BOB@CONTOSO.EXAMPLE"), VIEWER),
        ({"allowed_email_domains": ["@contoso.example"]}, person("bob@contoso.example"), VIEWER),
        ({"allowed_email_domains": ["contoso.example"]}, person("bob@evilcontoso.example"), None),
        ({"allowed_email_domains": ["contoso.example"]}, person("bob@contoso.example.evil"), None),
        ({"allowed_claim_values": ["Tokenboard.Viewer"]}, person(roles=["Tokenboard.Viewer"]), VIEWER),
        ({"allowed_claim_values": ["Tokenboard.Viewer"]}, person(roles=["tokenboard.viewer"]), None),
        ({"allowed_claim_values": ["Tokenboard.Viewer"]}, person(roles=["Other"]), None),
        # Operators are named explicitly, and being named lets them in even outside the lists.
        ({"operator_emails": ["ops@contoso.example"]}, person("ops@contoso.example"), OPERATOR),
        ({"operator_claim_values": ["Tokenboard.Operator"]}, person(roles=["Tokenboard.Operator"]), OPERATOR),
        (
            {"allowed_claim_values": ["V"], "operator_claim_values": ["Tokenboard.Operator"]},
            person(roles=["Tokenboard.Operator"]),
            OPERATOR,
        ),
        # ...never implied by a domain or a reader's claim.
        ({"allowed_email_domains": ["contoso.example"]}, person("ops@contoso.example"), VIEWER),
        ({"allowed_claim_values": ["Tokenboard.Operator"]}, person(roles=["Tokenboard.Operator"]), VIEWER),
    ],
)
def test_roles_follow_the_allow_lists(config: dict, who: Person, role: str | None) -> None:
    assert access.role_of(who, settings(**config)) == role


def test_an_unverified_email_matches_no_list() -> None:
    config = settings(allowed_emails=["ana@contoso.example"], operator_emails=["ana@contoso.example"])
    assert access.role_of(person("ana@contoso.example", email_verified=False), config) is None
    assert access.role_of(person("ana@contoso.example", email_verified=True), config) == OPERATOR


def test_groups_can_be_the_claim() -> None:
    group = "5f0b3a53-7d7a-4c5b-9f0a-1a2b3c4d5e6f"
    config = settings(claim="groups", allowed_claim_values=[group])
    who = Person.from_claims({"sub": "s", "groups": [group], "roles": ["x"]}, "groups")
    assert access.role_of(who, config) == VIEWER
    assert access.role_of(Person.from_claims({"sub": "s", "roles": [group]}, "groups"), config) is None


def test_allow_lists_come_from_the_environment_too() -> None:
    config = load_settings(
        {},
        environ={
            "TOKENBOARD_ACCESS__ALLOWED_EMAILS": "a@x.example, b@x.example",
            "TOKENBOARD_ACCESS__OPERATOR_CLAIM_VALUES": '["Op"]',
        },
    )
    assert config.access.allowed_emails == ("a@x.example", "b@x.example")
    assert config.access.operator_claim_values == ("Op",)


def test_an_outsider_reads_one_sentence_saying_who_to_ask() -> None:
    sentence = access.refusal(person("eve@elsewhere.example"), settings(contact="the platform team"))
    assert sentence.count(".") == sentence.count("example") + 1 and sentence.endswith("for access.")
    assert "eve@elsewhere.example" in sentence and "ask the platform team" in sentence
    assert "ask the team that runs this dashboard" in access.refusal(person("e@x.example"), Settings())


# --- exposure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("192.168.1.5", False),
     ("tokenboard.contoso.example", False)],
)  # fmt: skip
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert access.is_loopback(address) is loopback


def test_another_address_without_sign_in_is_refused_in_one_sentence_naming_the_setting() -> None:
    problem = access.exposure_problem("0.0.0.0", False, Settings())
    assert problem is not None and "allow_anonymous = true" in problem and "[auth]" in problem
    assert problem.count(". ") == 0 and problem.endswith(".")
    assert "every network interface" in access.exposure_problem(None, False, Settings())
    assert access.exposure_problem("0.0.0.0", True, Settings()) is None
    assert access.exposure_problem("0.0.0.0", False, settings(allow_anonymous=True)) is None
    assert access.exposure_problem("127.0.0.1", False, Settings()) is None


def test_who_may_send_test_requests_where() -> None:
    assert access.anonymous_role(access.LOCAL) == OPERATOR
    assert access.anonymous_role(access.ANONYMOUS) == VIEWER
    assert access.any_url_allowed(access.LOCAL, Settings()) is True
    assert access.any_url_allowed(access.SIGN_IN, Settings()) is False
    assert access.any_url_allowed(access.ANONYMOUS, Settings()) is False
    assert access.any_url_allowed(access.SIGN_IN, settings(test_request_any_url=True)) is True
