"""Settings: defaults, secrets, environment overrides, and errors that name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tokenboard import kql
from tokenboard.backends.local import LOCAL_PRELUDE
from tokenboard.config import ALIASES, ConfigError, Settings, example_toml
from tokenboard.settings import load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / ".streamlit" / "secrets.toml.example"
RESOURCE_ID = "/subscriptions/0000/resourceGroups/rg/providers/microsoft.insights/components/ai"


def test_no_configuration_gives_the_offline_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert settings.backend == "local"
    assert settings.telemetry.subscription_dimension == "Client Subscription"
    assert settings.telemetry.api_dimension == "API ID"


def test_secrets_set_values_of_every_type() -> None:
    settings = load_settings(
        {
            "backend": "azure",
            "app_insights_resource_id": RESOURCE_ID,
            "data_dir": "~/tb",
            "seed_on_start": False,
            "tokens_per_minute": 50_000,
            "tokens_per_minute_overrides": {"contoso-prod": 90_000},
            "subscription_dimension": "Subscription ID",
        },
        environ={},
    )
    assert settings.backend == "azure"
    assert settings.store.data_dir == Path("~/tb").expanduser()
    assert settings.store.seed_on_start is False
    assert settings.limits.for_subscription("contoso-prod") == 90_000
    assert settings.limits.for_subscription("anyone-else") == 50_000
    assert settings.telemetry.subscription_dimension == "Subscription ID"


def test_environment_wins_over_secrets() -> None:
    settings = load_settings(
        {"tokens_per_minute": 1000, "api_dimension": "API ID", "seed_on_start": True},
        environ={
            "TOKENBOARD_TOKENS_PER_MINUTE": "2_500",
            "TOKENBOARD_API_DIMENSION": "  Api Name ",
            "TOKENBOARD_SEED_ON_START": "off",
        },
    )
    assert settings.limits.tokens_per_minute == 2500
    assert settings.telemetry.api_dimension == "Api Name"
    assert settings.store.seed_on_start is False


def test_unrelated_environment_and_secret_keys_are_ignored() -> None:
    settings = load_settings(
        {"connections": {"x": 1}, "OTHER": "y"},
        environ={"TOKENBOARD_NOT_A_KEY": "1", "BACKEND": "azure", "PATH": "/bin"},
    )
    assert settings == Settings()


def test_secret_keys_are_case_insensitive() -> None:
    assert load_settings({"TOKENS_PER_MINUTE": 7}, environ={}).limits.tokens_per_minute == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"contoso-prod": 50000, "müller-ağ-東京": "20000"}',
            {"contoso-prod": 50000, "müller-ağ-東京": 20000},
        ),
        ("contoso-prod=50000, fabrikam = 20000", {"contoso-prod": 50000, "fabrikam": 20000}),
        ("", {}),
        ("   ", {}),
    ],
)
def test_overrides_parse_from_json_or_pairs(text: str, expected: dict[str, int]) -> None:
    env = {"TOKENBOARD_TOKENS_PER_MINUTE_OVERRIDES": text}
    assert dict(load_settings({}, environ=env).limits.tokens_per_minute_overrides) == expected


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("backend", "bigquery", "must be one of local, azure"),
        ("tokens_per_minute", "lots", "must be a whole number"),
        ("tokens_per_minute", "-5", "must not be negative"),
        ("tokens_per_minute", "0", "must be positive"),
        ("seed_on_start", "perhaps", "must be true or false"),
        ("query_timeout_seconds", "0", "must be positive"),
        ("token_quota_period", "Fortnightly", "must be one of Hourly"),
        ("tokens_per_minute_overrides", "{not json", "must be JSON"),
        ("tokens_per_minute_overrides", "a=1,b", "must look like sub-a=50000"),
        ("tokens_per_minute_overrides", "a=many", "non-numeric limit for 'a'"),
        ("tokens_per_minute_overrides", "a=0", "not positive"),
        ("tokens_per_minute_overrides", "[1, 2]", "must look like"),
        ("app_insights_resource_id", "my-app-insights", "must be a resource id"),
        ("azure_endpoint", "api.loganalytics.io", "must be an http"),
        ("subscription_dimension", "   ", "must not be empty"),
        ("total_metric", "", "must not be empty"),
    ],
)
def test_a_bad_value_gives_one_message_naming_the_key(key: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={f"TOKENBOARD_{key.upper()}": value})
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"Configuration key '{key}' ")
    assert problem in message
    assert "\n" not in message


def test_azure_without_a_target_names_the_resource_id_key() -> None:
    with pytest.raises(ConfigError, match="'app_insights_resource_id' is required with backend = 'azure'"):
        load_settings({"backend": "azure"}, environ={})


def test_azure_with_a_workspace_id_is_enough() -> None:
    settings = load_settings({"backend": "azure", "workspace_id": "abc-123"}, environ={})
    assert settings.azure.target == "abc-123"


def test_a_bad_secrets_value_of_the_wrong_kind_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'api_dimension' must be text"):
        load_settings({"api_dimension": ["API ID"]}, environ={})


def test_secret_values_stay_out_of_the_repr() -> None:
    settings = Settings(gateway_subscription_key="sk-very-secret")
    assert "sk-very-secret" not in repr(settings)
    assert settings.gateway.subscription_key.get_secret_value() == "sk-very-secret"


def test_dimension_names_carry_every_prelude_slot() -> None:
    queries = EXAMPLE.parent.parent / "queries"
    for prelude in [*kql.PRELUDES.values(), LOCAL_PRELUDE]:
        code = [
            line for line in (queries / prelude).read_text("utf-8").splitlines() if not line.startswith("//")
        ]
        slots = set(re.findall(r"\{\{([a-z_]+)\}\}", "\n".join(code)))
        assert slots and slots <= set(Settings().telemetry.names()), prelude


# --- .streamlit/secrets.toml.example -----------------------------------------------------


def test_secrets_example_is_generated_from_the_model() -> None:
    assert EXAMPLE.read_text("utf-8") == example_toml(), (
        "regenerate it: .venv/bin/python -m tokenboard.config > .streamlit/secrets.toml.example"
    )


def test_secrets_example_documents_every_settings_key() -> None:
    documented = tomllib.loads(EXAMPLE.read_text("utf-8"))
    for name, field in Settings.model_fields.items():
        section = field.annotation
        assert name in documented, f"add to {EXAMPLE.name}: {name}"
        if isinstance(section, type) and hasattr(section, "model_fields"):
            missing = set(section.model_fields) - set(documented[name])
            assert not missing, f"add to [{name}] in {EXAMPLE.name}: {', '.join(sorted(missing))}"
    assert set(documented) <= set(Settings.model_fields), "the example names keys Settings does not have"


def test_secrets_example_shows_the_true_defaults() -> None:
    """Copying the example unchanged must change nothing."""
    documented = tomllib.loads(EXAMPLE.read_text("utf-8"))
    assert load_settings(documented, environ={}) == Settings()


def test_secrets_example_explains_environment_overrides() -> None:
    text = EXAMPLE.read_text("utf-8")
    assert "TOKENBOARD_<SECTION>__<KEY>" in text
    assert "wins over" in text


def test_every_flat_key_of_earlier_versions_still_works() -> None:
    for flat, path in ALIASES.items():
        section, key = path.split(".")
        default = getattr(getattr(Settings(), section), key)
        assert getattr(getattr(Settings(**{flat: default}), section), key) == default, flat


# --- sections, aliases, the environment ----------------------------------------------------


def test_sections_in_the_secrets_file_set_nested_keys() -> None:
    settings = load_settings(
        {
            "gateway": {"url": "https://apim.example.net", "key_header": "api-key"},
            "limits": {"tokens_per_minute": 500, "tokens_per_minute_overrides": {"contoso": 900}},
            "QUERY": {"Timeout_Seconds": 9},  # section and key names are case-insensitive
        },
        environ={},
    )
    assert settings.gateway.url == "https://apim.example.net"
    assert settings.gateway.key_header == "api-key"
    assert settings.limits.for_subscription("contoso") == 900
    assert settings.limits.for_subscription("other") == 500
    assert settings.query.timeout_seconds == 9


def test_a_flat_key_and_its_section_mean_the_same() -> None:
    flat = load_settings(
        {"gateway_url": "https://a.example", "display_timezone": "Europe/Berlin"}, environ={}
    )
    nested = load_settings(
        {"gateway": {"url": "https://a.example"}, "display": {"timezone": "Europe/Berlin"}}, environ={}
    )
    assert flat == nested


def test_environment_nests_with_double_underscores_and_wins() -> None:
    settings = load_settings(
        {"gateway": {"url": "https://file.example", "flush_ms": 300}},
        environ={"TOKENBOARD_GATEWAY__URL": "https://env.example", "TOKENBOARD_STORE__SEED_ON_START": "no"},
    )
    assert settings.gateway.url == "https://env.example"
    assert settings.gateway.flush_ms == 300  # the rest of the section stays
    assert settings.store.seed_on_start is False


def test_environment_takes_a_whole_section_or_a_table_as_json() -> None:
    settings = load_settings(
        {},
        environ={
            "TOKENBOARD_TELEMETRY": '{"subscription_dimension": "Subscription ID", '
            '"model_dimension": "Modell"}',
            "TOKENBOARD_GATEWAY__APIS": '{"ai": "mock", "chat": "https://upstream.example/v1/"}',
            "TOKENBOARD_LIMITS__TOKENS_PER_MINUTE_OVERRIDES": '{"müller-ağ-東京": 20000}',
        },
    )
    assert settings.telemetry.subscription_dimension == "Subscription ID"
    assert settings.telemetry.model_dimension == "Modell"
    assert settings.gateway.apis == {"ai": "mock", "chat": "https://upstream.example/v1"}
    assert settings.limits.for_subscription("müller-ağ-東京") == 20000


def test_nested_variables_win_over_flat_ones() -> None:
    environ = {
        "TOKENBOARD_GATEWAY_URL": "https://flat.example",
        "TOKENBOARD_GATEWAY__URL": "https://nested.example",
    }
    assert load_settings({}, environ=environ).gateway.url == "https://nested.example"


def test_a_bad_nested_value_names_the_key_as_written() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={"TOKENBOARD_LIMITS__TOKENS_PER_MINUTE": "lots"})
    assert caught.value.key == "limits.tokens_per_minute"
    assert (
        str(caught.value) == "Configuration key 'limits.tokens_per_minute' must be a whole number, not 'lots'"
    )


def test_a_section_that_is_not_json_names_the_section() -> None:
    with pytest.raises(ConfigError, match="'gateway' must be JSON"):
        load_settings({}, environ={"TOKENBOARD_GATEWAY": "{not json"})


def test_an_unknown_key_inside_a_section_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'gateway\.urll' is not a setting"):
        load_settings({"gateway": {"urll": "https://typo.example"}}, environ={})


def test_replace_takes_flat_keys_and_sections_and_validates_again() -> None:
    settings = Settings().replace(data_dir="/tmp/x", gateway={"flush_ms": 50})
    assert (settings.store.data_dir, settings.gateway.flush_ms) == (Path("/tmp/x"), 50)
    assert settings.gateway.key_header == Settings().gateway.key_header
    with pytest.raises(ConfigError, match=r"'limits\.tokens_per_minute' must be positive"):
        settings.replace(tokens_per_minute=0)


def test_gateway_tables_are_parsed_and_checked_once() -> None:
    settings = load_settings(
        {
            "gateway_subscriptions": "team-a=k1, team-b=k2",
            "gateway_apis": "ai, chat=mock",
            "gateway_token_quota_overrides": "team-a=1_000",
        },
        environ={},
    )
    keys = {sub: key.get_secret_value() for sub, key in settings.gateway.subscriptions.items()}
    assert keys == {"team-a": "k1", "team-b": "k2"}
    assert settings.gateway.apis == {"ai": "", "chat": "mock"}
    assert settings.gateway.token_quota_overrides == {"team-a": 1000}
    with pytest.raises(ConfigError, match="not one path segment"):
        load_settings({"gateway": {"apis": {"a/b": "mock"}}}, environ={})
    with pytest.raises(ConfigError, match="neither 'mock' nor a URL"):
        load_settings({"gateway": {"apis": {"ai": "ftp://x"}}}, environ={})


# --- secrets are never echoed ----------------------------------------------------------------

SECRET = "98765432109876"


def _error_text(exc: BaseException) -> str:
    """Everything an error could show: its message, repr and whatever it was raised from."""
    parts = [str(exc), repr(exc)]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            parts += [str(linked), repr(linked)]
    return "\n".join(parts)


@pytest.mark.parametrize(
    "toml",
    [
        f"gateway_subscription_key = {SECRET}\n",  # an unquoted key is a TOML number
        f"[gateway]\nsubscription_key = {SECRET}\n",
        f"[gateway]\nupstream_key = [{SECRET}]\n",
        f"[gateway.subscriptions]\nteam-a = {SECRET}\n",
        f'[gateway.subscriptions]\nteam-a = "{SECRET}"\nteam-b = "{SECRET}"\n',  # the same key twice
        f'[gateway]\nsubscriptions = "team-a={SECRET},team-b"\n',
    ],
)
def test_a_bad_secret_never_echoes_its_value(toml: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tomllib.loads(toml), environ={})
    assert SECRET not in _error_text(caught.value)
    assert "gateway" in caught.value.key


def test_a_bad_secret_from_the_environment_never_echoes_its_value() -> None:
    environ = {"TOKENBOARD_GATEWAY__SUBSCRIPTIONS": f'{{"a": "{SECRET}", "b": "{SECRET}"}}'}
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ=environ)
    assert SECRET not in _error_text(caught.value)


def test_secrets_are_masked_wherever_settings_are_printed() -> None:
    settings = load_settings(
        {"gateway": {"subscription_key": SECRET, "upstream_key": SECRET, "subscriptions": {"a": SECRET}}},
        environ={},
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text


def test_a_secrets_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f"gateway_subscription_key = {SECRET}abc\n", "utf-8")
    with pytest.raises(ConfigError, match=r"secrets\.toml is not valid TOML") as caught:
        load_settings(environ={}, files=(path,))
    assert SECRET not in str(caught.value)


def test_files_are_read_lowest_precedence_first(tmp_path: Path) -> None:
    user, project = tmp_path / "user.toml", tmp_path / "project.toml"
    user.write_text('display_timezone = "Asia/Tokyo"\n[gateway]\nurl = "https://user.example"\n', "utf-8")
    project.write_text('[gateway]\nurl = "https://project.example"\n', "utf-8")
    settings = load_settings(environ={}, files=(user, project, tmp_path / "missing.toml"))
    assert settings.gateway.url == "https://project.example"
    assert settings.display.timezone == "Asia/Tokyo"


# --- secrets are never echoed (issue 9) ------------------------------------------------------


@pytest.mark.parametrize("key", ["gateway_subscription_key", "gateway_upstream_key", "gateway_subscriptions"])
@pytest.mark.parametrize("value", [98765432109876, 98765.4321, True, ["98765432109876"]])
def test_a_secret_of_the_wrong_type_is_named_never_shown(key: str, value: object) -> None:
    """The bug from issue 9: `gateway_subscription_key = 98765432109876` without quotes."""
    for written in ({key: value}, {"gateway": {key.removeprefix("gateway_"): value}}):
        with pytest.raises(ConfigError) as caught:
            load_settings(written, environ={})
        message = str(caught.value)
        assert caught.value.key in (key, f"gateway.{key.removeprefix('gateway_')}")
        assert "98765" not in message and "4321" not in message and "True" not in message


def test_a_secret_table_entry_is_named_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"gateway": {"subscriptions": {"contoso": 98765432109876}}}, environ={})
    assert "'gateway.subscriptions'" in str(caught.value) and "98765" not in str(caught.value)


def test_access_lists_come_from_a_table_or_the_environment() -> None:
    settings = load_settings(
        {"access": {"allowed_emails": ["a@x.example"], "operator_claim_values": ["Op"]}},
        environ={"TOKENBOARD_ACCESS__ALLOWED_EMAIL_DOMAINS": "x.example, y.example"},
    )
    assert settings.access.allowed_emails == ("a@x.example",)
    assert settings.access.allowed_email_domains == ("x.example", "y.example")
    assert settings.access.operator_claim_values == ("Op",)
    env = load_settings({}, environ={"TOKENBOARD_ACCESS__OPERATOR_EMAILS": '["o@x.example"]'})
    assert env.access.operator_emails == ("o@x.example",)


@pytest.mark.parametrize("value", ['["a", 1]', "[not json"])
def test_a_bad_list_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"'access\.allowed_emails' must be a"):
        load_settings({}, environ={"TOKENBOARD_ACCESS__ALLOWED_EMAILS": value})
    with pytest.raises(ConfigError, match=r"'access\.operator_emails' must be a list of text"):
        load_settings({"access": {"operator_emails": 5}}, environ={})
