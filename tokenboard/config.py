"""Settings: one typed object, read from secrets and ``TOKENBOARD_*`` environment variables.

Every key has an offline default, so a fresh clone runs the embedded demo with no
configuration at all. An environment variable wins over the secrets file, which
lets a container or a test change one key without writing a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "TOKENBOARD_"
BACKENDS = ("local", "azure")
QUOTA_PERIODS = ("Hourly", "Daily", "Weekly", "Monthly", "Yearly")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"Configuration key '{key}' {problem}")


@dataclass(frozen=True)
class Settings:
    """Everything tokenboard can be told. Field docs are in .streamlit/secrets.toml.example."""

    backend: str = "local"
    # Azure: one of the two identifies where the telemetry is.
    app_insights_resource_id: str = ""
    workspace_id: str = ""
    azure_endpoint: str = ""  # empty: the public Log Analytics API
    azure_audience: str = ""  # empty: derived from the endpoint by the SDK
    # Local embedded store.
    data_dir: Path = Path("data")
    seed_on_start: bool = True
    # How the team named its llm-emit-token-metric dimensions.
    subscription_dimension: str = "Client Subscription"
    api_dimension: str = "API ID"
    model_dimension: str = "Model"
    # APIM's own keys in requests.customDimensions.
    request_subscription_key: str = "Subscription Name"
    request_api_key: str = "API Name"
    # Metric names written by llm-emit-token-metric.
    total_metric: str = "Total Tokens"
    prompt_metric: str = "Prompt Tokens"
    completion_metric: str = "Completion Tokens"
    # llm-token-limit as configured on the gateway, per subscription.
    tokens_per_minute: int = 10_000
    tokens_per_minute_overrides: Mapping[str, int] = field(default_factory=dict)
    token_quota: int = 0  # 0: no quota
    token_quota_period: str = "Monthly"
    # Querying and display.
    query_timeout_seconds: int = 60
    cache_ttl_seconds: int = 300
    ingestion_delay_seconds: int = 180
    display_timezone: str = "UTC"
    # Live test requests.
    gateway_url: str = ""  # empty with the local backend: start the embedded gateway
    gateway_key_header: str = "Ocp-Apim-Subscription-Key"
    gateway_subscription_key: str = dataclasses.field(default="", repr=False)
    # Local gateway (tokenboard/gateway), added by the gateway issue. Text values, parsed by
    # tokenboard/gateway/config.py, so one environment variable can set each of them.
    # Subscriptions as "id=key,id2=key2" or JSON; empty: demo subscriptions, keys generated per data dir.
    gateway_subscriptions: str = dataclasses.field(default="", repr=False)
    # APIs as "name" or "name=backend" (backend "mock" or an OpenAI-compatible base URL); empty: demo APIs.
    gateway_apis: str = ""
    gateway_upstream_url: str = ""  # backend of APIs named without one; empty: the mock model
    gateway_upstream_key: str = dataclasses.field(default="", repr=False)
    gateway_upstream_timeout_seconds: int = 60
    gateway_token_quota_overrides: str = ""  # "sub=N,..." or JSON: token-quota per subscription
    gateway_mock_latency_ms: int = 0
    gateway_max_body_bytes: int = 1_048_576
    gateway_flush_ms: int = 1_000  # telemetry reaches the store within about this long
    gateway_remaining_tokens_header: str = "remaining-tokens"
    gateway_consumed_tokens_header: str = "consumed-tokens"
    gateway_remaining_quota_header: str = "remaining-quota-tokens"
    gateway_retry_after_header: str = "Retry-After"

    def limit_for(self, subscription: str) -> int:
        """Tokens-per-minute limit of one subscription (its override, else the default)."""
        return int(self.tokens_per_minute_overrides.get(subscription, self.tokens_per_minute))

    @property
    def azure_target(self) -> str:
        """What the Azure backend queries, for display: resource id or workspace id."""
        return self.app_insights_resource_id or self.workspace_id

    def dimension_names(self) -> dict[str, str]:
        """Dimension and metric names as the query prelude binds them."""
        return {
            "subscription_dimension": self.subscription_dimension,
            "api_dimension": self.api_dimension,
            "model_dimension": self.model_dimension,
            "request_subscription_key": self.request_subscription_key,
            "request_api_key": self.request_api_key,
            "total_metric": self.total_metric,
            "prompt_metric": self.prompt_metric,
            "completion_metric": self.completion_metric,
        }


KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))


def load_settings(
    secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from secrets (e.g. ``st.secrets``) overlaid with the environment."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for key, value in (secrets or {}).items():
        key = key.lower()
        if key in KEYS:
            raw[key] = value
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower()
            if key in KEYS:
                raw[key] = value
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values = {key: _coerce(key, fields[key].default, value) for key, value in raw.items()}
    settings = Settings(**values)
    _validate(settings)
    return settings


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Turn a secrets value or an environment string into the field's type."""
    if key == "tokens_per_minute_overrides" or isinstance(default, Mapping):
        return _overrides(key, value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"must be true or false, not {value!r}")
    if isinstance(default, int):
        try:
            number = int(str(value).strip().replace("_", ""))
        except ValueError:
            raise ConfigError(key, f"must be a whole number, not {value!r}") from None
        if number < 0:
            raise ConfigError(key, f"must not be negative, not {number}")
        return number
    if isinstance(default, Path):
        return Path(str(value)).expanduser()
    if not isinstance(value, str):
        raise ConfigError(key, f"must be text, not {value!r}")
    return value.strip()


def parse_pairs(key: str, value: Any, example: str = "name=value,name2=value2") -> dict[str, str]:
    """``a=1,b=2``, a JSON object, or a secrets table, as text pairs.

    Errors name the key, never the values: some of these maps hold subscription keys.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(key, f"must be JSON (an object) or pairs like {example}") from None
        else:
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
                raise ConfigError(key, f"must look like {example}")
            value = dict(pairs)
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a table, a JSON object or name=value pairs")
    return {str(k).strip(): str(v).strip() for k, v in value.items()}


def _overrides(key: str, value: Any) -> dict[str, int]:
    """Per-subscription limits: a table in secrets, or JSON / ``a=1,b=2`` in the environment."""
    result = {}
    for name, limit in parse_pairs(key, value, "sub-a=50000,sub-b=20000").items():
        try:
            result[name] = int(limit)
        except ValueError:
            raise ConfigError(key, f"has a non-numeric limit for {name!r}: {limit!r}") from None
        if result[name] <= 0:
            raise ConfigError(key, f"has a limit for {name!r} that is not positive")
    return result


def _validate(settings: Settings) -> None:
    if settings.backend not in BACKENDS:
        raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, not {settings.backend!r}")
    if settings.backend == "azure" and not settings.azure_target:
        raise ConfigError(
            "app_insights_resource_id",
            "is required with backend = 'azure' (or set workspace_id for a Log Analytics workspace)",
        )
    rid = settings.app_insights_resource_id
    if rid and not rid.lower().startswith("/subscriptions/"):
        raise ConfigError(
            "app_insights_resource_id",
            "must be a resource id like /subscriptions/<id>/resourceGroups/<rg>/providers/"
            "microsoft.insights/components/<name>",
        )
    for key in ("subscription_dimension", "api_dimension", "model_dimension",
                "request_subscription_key", "request_api_key",
                "total_metric", "prompt_metric", "completion_metric"):  # fmt: skip
        if not getattr(settings, key):
            raise ConfigError(key, "must not be empty")
        if "\\" in getattr(settings, key):
            # duckdb-kql does not escape a backslash in a customDimensions["..."] key.
            raise ConfigError(key, "must not contain a backslash")
    if settings.tokens_per_minute <= 0:
        raise ConfigError("tokens_per_minute", "must be positive")
    if settings.token_quota_period not in QUOTA_PERIODS:
        raise ConfigError("token_quota_period", f"must be one of {', '.join(QUOTA_PERIODS)}")
    if settings.query_timeout_seconds <= 0:
        raise ConfigError("query_timeout_seconds", "must be positive")
    if settings.azure_endpoint and not settings.azure_endpoint.startswith(("https://", "http://")):
        raise ConfigError("azure_endpoint", "must be an http(s) URL")
