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
