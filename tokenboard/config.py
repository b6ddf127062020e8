"""Settings: one typed model, read from secrets files and ``TOKENBOARD_*`` environment variables.

Every key has an offline default, so a fresh clone runs the embedded demo with no configuration
at all. Keys live in sections (``[azure]``, ``[gateway]``, ...: TOML tables in
``.streamlit/secrets.toml``); the flat keys of earlier versions (``gateway_url``,
``tokens_per_minute``, ...) still work as aliases of their place in a section. An environment
variable wins over the files: ``TOKENBOARD_GATEWAY__URL`` (``__`` nests), a whole section or a
table as JSON (``TOKENBOARD_GATEWAY='{"url": "..."}'``), or a flat key (``TOKENBOARD_GATEWAY_URL``).

A bad value is one :class:`ConfigError` naming the key as it was written; the value of a secret
key (``Secret`` fields and tables) is never part of a message.

To add a section: a :class:`Section` subclass whose fields carry a ``description``, and one
field on :class:`Settings`. To add a table (names to values, e.g. a price per model): a field
typed ``Table[...]`` (see ``Limits.tokens_per_minute_overrides``). The example file
``.streamlit/secrets.toml.example`` is generated from the model (``python -m tokenboard.config``)
and a test keeps the two equal.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic import ValidationError as _ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

ENV_PREFIX = "TOKENBOARD_"
QUOTA_PERIODS = ("Hourly", "Daily", "Weekly", "Monthly", "Yearly")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
# Where Streamlit looks for secrets, lowest precedence first. The dashboard reads them through
# ``st.secrets``; the CLI and the gateway read the same files from the directory they run in.
SECRETS_FILES = (Path("~/.streamlit/secrets.toml"), Path(".streamlit/secrets.toml"))
EXAMPLE_FILE = Path(__file__).resolve().parent.parent / ".streamlit" / "secrets.toml.example"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key (never a secret's value)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"Configuration key '{key}' {problem}")


class SecretsFileError(ConfigError):
    """A secrets file cannot be read as TOML."""

    def __init__(self, path: Path, detail: str) -> None:
        self.key = str(path)
        ValueError.__init__(self, f"{path} is not valid TOML: {detail}")


def parse_bool(text: str) -> bool:
    """The one set of true/false words (settings, query parameters, imported CSV)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not true or false")


# --- value types: each says what is wrong in words a person can act on ----------------------
# ``config_value`` errors get ", not <value>" appended unless the key is secret.


def _problem(message: str, echo: bool = True) -> PydanticCustomError:
    return PydanticCustomError("config_value" if echo else "config", message)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    raise _problem("must be text")


def _secret(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value.strip())
    raise _problem("must be text (in quotes)", echo=False)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return parse_bool(str(value))
    except ValueError:
        raise _problem("must be true or false") from None


def _whole(noun: str = "") -> Callable[[Any], int]:
    """A whole number (``_`` allowed); ``noun`` words the message for a table entry."""

    def parse(value: Any) -> int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = int(value.strip().replace("_", ""))
        if number is None:
            raise _problem(f"has a non-numeric {noun}" if noun else "must be a whole number")
        if number < 0:
            raise _problem(f"has a negative {noun}" if noun else "must not be negative")
        return number

    return parse


def _positive(noun: str = "") -> Callable[[int], int]:
    def check(number: int) -> int:
        if number <= 0:
            raise _problem(f"has a {noun} that is not positive" if noun else "must be positive", echo=False)
        return number

    return check


def _at_most(limit: int) -> Callable[[int], int]:
    def check(number: int) -> int:
        if number > limit:
            raise _problem(f"must be at most {limit:,}")
        return number

    return check


def _path(value: Any) -> Path:
    return Path(_text(value) if not isinstance(value, Path) else value).expanduser()


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise _problem(f"must be one of {', '.join(choices)}")
        return value

    return check


def _not_empty(value: str) -> str:
    if not value:
        raise _problem("must not be empty", echo=False)
    return value


def _http_url(value: str) -> str:
    if value and not value.startswith(("https://", "http://")):
        raise _problem("must be an http(s) URL")
    return value


def _table(example: str, bare: bool = False) -> Callable[[Any], dict[str, Any]]:
    """A TOML table, a JSON object, or ``name=value,name2=value2`` text (``bare``: ``name`` alone).

    Errors name the key, never the values: some tables hold subscription keys.
    """

    def parse(value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise _problem(f"must be JSON (an object) or pairs like {example}", echo=False) from None
            else:
                value = {}
                for part in (p for p in text.split(",") if p.strip()):
                    name, sep, item = part.partition("=")
                    if not name.strip() or not (sep or bare):
                        raise _problem(f"must look like {example}", echo=False)
                    value[name.strip()] = item.strip()
        if not isinstance(value, Mapping):
            raise _problem("must be a table, a JSON object or name=value pairs", echo=False)
        return {str(k).strip(): (v.strip() if isinstance(v, str) else v) for k, v in value.items()}

    return parse


Text = Annotated[str, BeforeValidator(_text)]
Name = Annotated[str, BeforeValidator(_text), AfterValidator(_not_empty)]
Url = Annotated[str, BeforeValidator(_text), AfterValidator(_http_url)]
Secret = Annotated[SecretStr, BeforeValidator(_secret)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Whole = Annotated[int, BeforeValidator(_whole())]
Positive = Annotated[int, BeforeValidator(_whole()), AfterValidator(_positive())]
Directory = Annotated[Path, BeforeValidator(_path)]


# Tables: ``dict[str, value]`` that also take JSON or pairs text (NoDecode: parsed here, not by
# pydantic-settings, so the pairs form works in the environment too).
Limit = Annotated[int, BeforeValidator(_whole("limit")), AfterValidator(_positive("limit"))]
LimitTable = Annotated[dict[str, Limit], NoDecode, BeforeValidator(_table("sub-a=50000,sub-b=20000"))]
Quota = Annotated[int, BeforeValidator(_whole("quota"))]
QuotaTable = Annotated[dict[str, Quota], NoDecode, BeforeValidator(_table("sub=N,sub2=N"))]


# --- the sections -----------------------------------------------------------------------------


class Section(BaseModel):
    """A TOML table of settings; unknown keys in it are mistakes, so they are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    #: The comment above the table in the example file.
    title: ClassVar[str] = ""


class Store(Section):
    title = "Local store: the embedded App Insights-shaped store (backend local, gateway, import)"

    data_dir: Directory = Field(
        Path("data"),
        description="Directory of the local store (one folder of Parquet segments per table). Relative\n"
        "paths are relative to the directory the app or the CLI starts in; ~ is expanded.",
    )
    seed_on_start: Flag = Field(
        True, description="Fill an empty local store with 30 days of demo traffic when the dashboard starts."
    )
    rollups: Flag = Field(
        True,
        description="Answer long ranges from roll-ups of customMetrics (per-hour and\n"
        "per-subscription-minute sums the dashboard keeps in data_dir/customMetrics/rollups) when a\n"
        "query allows; the answers are the same as from raw rows. false: raw rows only, nothing written.",
    )


def _resource_id(value: str) -> str:
    if value and not value.lower().startswith("/subscriptions/"):
        raise _problem(
            "must be a resource id like /subscriptions/<id>/resourceGroups/<rg>/providers/"
            "microsoft.insights/components/<name>"
        )
    return value


class Azure(Section):
    title = (
        'Azure: where the telemetry is with backend = "azure" (Log Analytics query API,\n'
        "DefaultAzureCredential: az login or a managed identity with a reader role on it,\n"
        'e.g. "Monitoring Reader" or "Log Analytics Reader")'
    )

    resource_id: Annotated[str, BeforeValidator(_text), AfterValidator(_resource_id)] = Field(
        "",
        description="The Application Insights resource to query (classic customMetrics / requests tables):\n"
        "/subscriptions/<id>/resourceGroups/<rg>/providers/microsoft.insights/components/<name>",
    )
    workspace_id: Text = Field(
        "",
        description="Or a Log Analytics workspace id (a GUID) of a workspace-based Application Insights\n"
        "resource: then the AppMetrics / AppRequests tables are queried instead. One of the two\n"
        'is required with backend = "azure"; the resource id wins when both are set.',
    )
    endpoint: Url = Field(
        "",
        description="Log Analytics API endpoint. Empty: the public cloud (https://api.loganalytics.io).\n"
        'Set it for a sovereign cloud or a private link, e.g. "https://api.loganalytics.azure.us".',
    )
    audience: Text = Field(
        "",
        description="Token audience for that endpoint. Empty: the SDK derives it from the endpoint; set\n"
        'the real audience (e.g. "https://api.loganalytics.azure.us") when the endpoint is a proxy\n'
        "or private link, or tokens will be rejected.",
    )

    @property
    def target(self) -> str:
        """What the Azure backend queries, for display: resource id or workspace id."""
        return self.resource_id or self.workspace_id


def _no_backslash(value: str) -> str:
    if "\\" in value:  # duckdb-kql does not escape a backslash in a customDimensions["..."] key
        raise _problem("must not contain a backslash", echo=False)
    return value


DimensionName = Annotated[Name, AfterValidator(_no_backslash)]


class Telemetry(Section):
    title = (
        'Telemetry: the names your APIM policies write. The <dimension name="..."> values of\n'
        "llm-emit-token-metric are keys of customMetrics.customDimensions; APIM's own keys are\n"
        "in requests.customDimensions. Metric names the policy emits beyond these (e.g.\n"
        '"Prompt Cached Tokens") are shown as they are.'
    )

    subscription_dimension: DimensionName = Field(
        "Client Subscription", description='often "Subscription ID" (APIM fills it)'
    )
    api_dimension: DimensionName = Field("API ID")
    model_dimension: DimensionName = Field("Model", description='optional; empty values show as ""')
    request_subscription_key: DimensionName = Field("Subscription Name")
    request_api_key: DimensionName = Field("API Name")
    retry_after_key: DimensionName = Field(
        "Response-Retry-After",
        description="Where a requests row holds the Retry-After it answered: APIM logs a response header\n"
        'named in its diagnostic settings ("Headers to log") as "Response-<header>".',
    )
    response_body_key: DimensionName = Field(
        "Response-Body",
        description='Where a requests row holds the answer\'s body (APIM: "Number of payload bytes to log"\n'
        "for the frontend response): it tells a quota 403 from a content-safety block.",
    )
    total_metric: DimensionName = Field("Total Tokens")
    prompt_metric: DimensionName = Field("Prompt Tokens")
    completion_metric: DimensionName = Field("Completion Tokens")
    cached_metric: DimensionName = Field(
        "Prompt Cached Tokens",
        description="Prompt tokens served from the prompt cache (part of Prompt Tokens, billed at the\n"
        "cached_input price).",
    )
    reasoning_metric: DimensionName = Field(
        "Completion Reasoning Tokens",
        description="Reasoning tokens (part of Completion Tokens, billed as output unless a price gives\n"
        "reasoning).",
    )

    def names(self) -> dict[str, str]:
        """The names by slot, as the query prelude binds them (``{{subscription_dimension}}``...)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class Limits(Section):
    title = "Limits: llm-token-limit as configured on the gateway (headroom charts, local gateway)"

    tokens_per_minute: Positive = Field(
        10_000, description="tokens-per-minute of every subscription without an override."
    )
    tokens_per_minute_overrides: LimitTable = Field(
        default_factory=dict,
        description="Per-subscription tokens-per-minute, by the subscription's dimension value, e.g.\n"
        'tokens_per_minute_overrides = { "contoso-prod" = 50000, "müller-ağ-東京" = 20000 }',
    )
    token_quota: Whole = Field(0, description="token-quota per token_quota_period (0: no quota).")
    token_quota_period: Annotated[str, BeforeValidator(_text), AfterValidator(_one_of(QUOTA_PERIODS))] = (
        Field("Monthly", description="token-quota-period: Hourly, Daily, Weekly, Monthly or Yearly.")
    )

    def for_subscription(self, subscription: str) -> int:
        """Tokens-per-minute limit of one subscription (its override, else the default)."""
        return int(self.tokens_per_minute_overrides.get(subscription, self.tokens_per_minute))


class Query(Section):
    title = "Querying"

    timeout_seconds: Positive = Field(
        60,
        description="A query running longer than this is stopped (both backends), with a message saying so.",
    )
    cache_ttl_seconds: Whole = Field(
        300, description="How long the dashboard reuses a query result before asking the backend again."
    )
    ingestion_delay_seconds: Whole = Field(
        180,
        description="Application Insights ingests with a delay: bins newer than this are marked incomplete.",
    )
    refresh_seconds: Positive = Field(
        300,
        description="Live ranges end at the next multiple of this (UTC): pages and tabs opened meanwhile "
        "share results.",
    )
    max_concurrent: Positive = Field(
        5,
        description="Queries running at once for the whole dashboard (one identity; Log Analytics runs 5 "
        "per user).",
    )


class Display(Section):
    title = "Display"

    timezone: Text = Field(
        "UTC",
        description='Time zone for displaying times (an IANA name such as "Europe/Berlin"); data stays UTC.',
    )


def _api_backend(value: str) -> str:
    if value and value != "mock" and not value.startswith(("http://", "https://")):
        raise _problem("gives a backend that is neither 'mock' nor a URL", echo=False)
    return value.rstrip("/")


def _subscription_key(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise _problem("has an empty key", echo=False)
    return value


def _api_names(apis: dict[str, str]) -> dict[str, str]:
    named = {}
    for name, backend in apis.items():
        name = name.strip("/")
        if "/" in name or not name.isprintable():
            raise _problem(f"has an API name that is not one path segment: {name!r}", echo=False)
        if name:
            named[name] = backend
    return named


def _distinct_keys(keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
    if len({k.get_secret_value() for k in keys.values()}) != len(keys):
        raise _problem("gives two subscriptions the same key", echo=False)
    return keys


SubscriptionKey = Annotated[SecretStr, BeforeValidator(_secret), AfterValidator(_subscription_key)]
KeyTable = Annotated[
    dict[str, SubscriptionKey],
    NoDecode,
    BeforeValidator(_table("id=key,id2=key2")),
    AfterValidator(_distinct_keys),
]
ApiBackend = Annotated[str, BeforeValidator(_text), AfterValidator(_api_backend)]
ApiTable = Annotated[
    dict[str, ApiBackend],
    NoDecode,
    BeforeValidator(_table("name,name2=backend", bare=True)),
    AfterValidator(_api_names),
]


class Gateway(Section):
    title = (
        'Gateway: where the "Test request" page sends calls, and the local gateway\n'
        "(python -m tokenboard gateway) that runs with the embedded default"
    )

    url: Text = Field(
        "",
        description='Base URL of the gateway to send test requests to, e.g. "https://<apim>.azure-api.net".\n'
        "Empty with the local backend: the embedded local gateway is started and used.",
    )
    key_header: Name = Field(
        "Ocp-Apim-Subscription-Key",
        description="Header that carries the APIM subscription key (APIM's default; teams often use\n"
        '"api-key").',
    )
    subscription_key: Secret = Field(
        SecretStr(""),
        description="Subscription key for test requests. A secret: never shown, logged or exported.",
    )
    subscription_name: Text = Field(
        "",
        description="The subscription that key belongs to, named on the Test request page (APIM's answers\n"
        "do not say; the local gateway knows its own keys). Empty: shown as unknown.",
    )
    subscriptions: KeyTable = Field(
        default_factory=dict,
        description='The local gateway\'s subscriptions and their keys: a table, "id=key,id2=key2" or\n'
        "a JSON object. Secret. Empty: demo subscriptions whose keys are generated once per data_dir\n"
        "(see: python -m tokenboard gateway --list-subscriptions).",
    )
    apis: ApiTable = Field(
        default_factory=dict,
        description='APIs by name, each with its backend: "mock" or the base URL of an OpenAI-compatible\n'
        'API (empty: upstream_url). As text: "name" or "name=backend" separated by commas.\n'
        "Empty: the demo APIs on the mock model.",
    )
    upstream_url: Url = Field(
        "", description="Backend of APIs named without one. Empty: the built-in mock model."
    )
    upstream_key: Secret = Field(
        SecretStr(""), description="Key the local gateway sends to that backend. Secret."
    )
    upstream_timeout_seconds: Positive = Field(
        60, description="How long the local gateway waits for its backend."
    )
    token_quota_overrides: QuotaTable = Field(
        default_factory=dict,
        description="Per-subscription token-quota of the local gateway (others use limits.token_quota).",
    )
    mock_latency_ms: Annotated[int, BeforeValidator(_whole()), AfterValidator(_at_most(600_000))] = Field(
        0, description="Extra latency of the mock model per call, in milliseconds (at most 10 minutes)."
    )
    mock_backend_tokens_per_minute: Whole = Field(
        0,
        description="The mock model deployment's own tokens-per-minute limit, shared by every subscription\n"
        "(0: none). Over it the mock answers 429 with Azure OpenAI's body and Retry-After, which\n"
        "the gateway passes through.",
    )
    max_body_bytes: Positive = Field(
        1_048_576, description="Largest request body the local gateway accepts, in bytes."
    )
    flush_ms: Positive = Field(
        1_000,
        description="Telemetry of the local gateway reaches the store within about this many milliseconds.",
    )
    max_connections: Positive = Field(
        1_000,
        description="Open connections the local gateway holds at most (lowered to fit the open-file limit,\n"
        "ulimit -n). Over it, the connection idle longest is closed to make room; when all are busy\n"
        "with requests, new requests get 503 (the health probe is always answered).",
    )
    header_timeout_seconds: Positive = Field(
        10,
        description="Seconds a client has to send a complete request head (else 408, and the connection\n"
        "closes).",
    )
    body_timeout_seconds: Positive = Field(
        30, description="Seconds a client has to send the whole request body once the head is in (else 408)."
    )
    remaining_tokens_header: Name = Field(
        "remaining-tokens",
        description="Response header names of the local gateway's llm-token-limit emulation.",
    )
    consumed_tokens_header: Name = Field("consumed-tokens")
    remaining_quota_header: Name = Field("remaining-quota-tokens")
    retry_after_header: Name = Field("Retry-After")


def _text_list(value: Any) -> tuple[str, ...]:
    """A TOML array of text; in the environment also ``a,b,c`` or a JSON array."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise _problem(
                    'must be a JSON array like ["a", "b"] or a list like a,b', echo=False
                ) from None
        else:
            value = text.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise _problem("must be a list of text", echo=False)
    return tuple(item.strip() for item in value if item.strip())


TextList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_text_list)]


class Access(Section):
    title = (
        "Access: who may use the dashboard (tokenboard/access.py). Sign-in itself is Streamlit's\n"
        "[auth] table, at the end of this file. Roles: a viewer reads Overview, Usage, Throttling,\n"
        "Reports and Budgets and downloads CSV; an operator also uses Test request (it spends real tokens)."
    )

    allow_anonymous: Flag = Field(
        False,
        description="Without [auth] the dashboard listens on 127.0.0.1 only; on any other address it\n"
        "refuses to start unless this is true (then anyone who can reach it reads it, as a viewer).",
    )
    test_request_any_url: Flag = Field(
        False,
        description="With sign-in (or allow_anonymous), may Test request call URLs other than gateway.url?\n"
        "Always with a key the visitor types: the configured key only ever goes to gateway.url.\n"
        "Local mode (no sign-in, 127.0.0.1) always allows other URLs.",
    )
    claim: Name = Field(
        "roles",
        description="The ID-token claim the *_claim_values lists match: Entra ID puts app roles in\n"
        '"roles" and group object ids in "groups".',
    )
    allowed_emails: TextList = Field(
        (),
        description="Who may read. With all three allowed_* lists empty, everyone the identity provider\n"
        'signs in may read (with Entra ID, "Assignment required" is then the gate). E-mail addresses,\n'
        'e.g. ["ana@contoso.com"] (matched against the verified "email" claim):',
    )
    allowed_email_domains: TextList = Field((), description='...e-mail domains, e.g. ["contoso.com"]:')
    allowed_claim_values: TextList = Field(
        (), description='...values of the claim, e.g. ["Tokenboard.Viewer"] or group object ids.'
    )
    operator_emails: TextList = Field(
        (),
        description="Who may also send test requests: named explicitly, never implied by an allow-list.\n"
        'E-mail addresses, e.g. ["ops-lead@contoso.com"]:',
    )
    operator_claim_values: TextList = Field(
        (), description='...values of the claim, e.g. ["Tokenboard.Operator"].'
    )
    contact: Text = Field(
        "",
        description="Whom to ask for access, in the one sentence a signed-in outsider reads, e.g.\n"
        '"the platform team (#llm-gateway)". Empty: "the team that runs this dashboard".',
    )


# --- money: prices per model, budgets per subscription -----------------------------------------

PRICE_KEYS = ("input", "cached_input", "output", "reasoning", "valid_from")
BUDGET_KEYS = ("cost", "tokens")


class Price(BaseModel):
    """A model's price per 1M tokens, from ``valid_from`` (a UTC day; None: from the start).

    A model without its own ``cached_input`` bills cached prompt tokens as input, and one without
    ``reasoning`` bills reasoning tokens as output (they are part of the completion).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None
    valid_from: date | None = None


class Budget(BaseModel):
    """A subscription's budget per calendar month (UTC): money in ``currency``, Total Tokens, or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cost: float | None = None
    tokens: int | None = None


def _rate(model: str, key: str, value: Any) -> float:
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip().replace("_", ""))
    if number is None or not math.isfinite(number) or number < 0:
        raise _problem(f"has a {key} price for {model!r} that is not a number of 0 or more", echo=False)
    return number


def _day(model: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value.strip())
    raise _problem(f"has a valid_from for {model!r} that is not a date like 2025-06-01", echo=False)


def _one_price(model: str, raw: Any) -> Price:
    if isinstance(raw, Price):
        return raw
    if not isinstance(raw, Mapping):
        raise _problem(
            f"needs a table for {model!r} with input, output (and cached_input, reasoning) per 1M tokens",
            echo=False,
        )
    unknown = sorted(set(raw) - set(PRICE_KEYS))
    if unknown:
        raise _problem(
            f"has an unknown key {unknown[0]!r} in the price of {model!r} (known: {', '.join(PRICE_KEYS)})",
            echo=False,
        )
    for key in ("input", "output"):
        if raw.get(key) is None:
            raise _problem(f"has no {key} price for {model!r}", echo=False)
    values = {
        key: (_day(model, value) if key == "valid_from" else _rate(model, key, value))
        for key, value in raw.items()
        if value is not None
    }
    return Price(**values)


def parse_prices(value: Any) -> dict[str, tuple[Price, ...]]:
    """Model -> its prices, oldest first: one table, or a list of tables with ``valid_from``."""
    table = _table('{"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}')(value)
    prices = {}
    for model, raw in table.items():
        if not model:
            raise _problem("has a price for an empty model name", echo=False)
        entries = list(raw) if isinstance(raw, list | tuple) else [raw]
        if not entries:
            raise _problem(f"has an empty list of prices for {model!r}", echo=False)
        periods = sorted((_one_price(model, e) for e in entries), key=lambda p: p.valid_from or date.min)
        starts = [p.valid_from for p in periods]
        if len(set(starts)) != len(starts):
            raise _problem(f"gives {model!r} two prices from the same day", echo=False)
        prices[model] = tuple(periods)
    return prices


def _budget_table(value: Any) -> dict[str, Budget]:
    """Subscription -> budget: a number (money) or a table with ``cost`` and/or ``tokens``."""
    table = _table("sub-a=500,sub-b=1200")(value)
    budgets = {}
    for subscription, raw in table.items():
        if isinstance(raw, Budget):
            budgets[subscription] = raw
            continue
        if not isinstance(raw, Mapping):
            raw = {"cost": raw}
        unknown = sorted(set(raw) - set(BUDGET_KEYS))
        if unknown:
            raise _problem(
                f"has an unknown key {unknown[0]!r} in the budget of {subscription!r} (known: cost, tokens)",
                echo=False,
            )
        cost = raw.get("cost")
        tokens = raw.get("tokens")
        if cost is None and tokens is None:
            raise _problem(f"gives {subscription!r} no budget: cost (money) or tokens per month", echo=False)
        budget = Budget(
            cost=None if cost is None else _rate(subscription, "cost", cost),
            tokens=None if tokens is None else _whole("token budget")(tokens),
        )
        if budget.cost == 0 or budget.tokens == 0:
            raise _problem(f"gives {subscription!r} a budget of 0", echo=False)
        budgets[subscription] = budget
    return budgets


PriceTable = Annotated[dict[str, tuple[Price, ...]], NoDecode, BeforeValidator(parse_prices)]
BudgetTable = Annotated[dict[str, Budget], NoDecode, BeforeValidator(_budget_table)]
ModelTable = Annotated[dict[str, Name], NoDecode, BeforeValidator(_table("name=model,name2=model2"))]

# The demo's budgets (its subscriptions' names): a [budgets] table of yours replaces them.
DEMO_BUDGETS = {
    "contoso-prod": Budget(cost=60.0),
    "woodgrove-bank-prod": Budget(cost=120.0),
    "adventureworks-web": Budget(cost=150.0),
    "fabrikam-prod": Budget(cost=40.0),
    "coho-winery": Budget(cost=5.0),
    "wideworld-importers": Budget(cost=5.0),
    "litware-research": Budget(tokens=12_000_000),
    "northwind-trial": Budget(tokens=5_000_000),
}


# --- the model ------------------------------------------------------------------------------

# The flat keys of earlier versions and where they live now. New keys are only ever nested.
ALIASES: dict[str, str] = {
    "data_dir": "store.data_dir",
    "seed_on_start": "store.seed_on_start",
    "app_insights_resource_id": "azure.resource_id",
    "workspace_id": "azure.workspace_id",
    "azure_endpoint": "azure.endpoint",
    "azure_audience": "azure.audience",
    **{name: f"telemetry.{name}" for name in Telemetry.model_fields},
    **{name: f"limits.{name}" for name in Limits.model_fields},
    "query_timeout_seconds": "query.timeout_seconds",
    "cache_ttl_seconds": "query.cache_ttl_seconds",
    "ingestion_delay_seconds": "query.ingestion_delay_seconds",
    "display_timezone": "display.timezone",
    **{f"gateway_{name}": f"gateway.{name}" for name in Gateway.model_fields},
}


class Settings(BaseSettings):
    """Everything tokenboard can be told; built directly, it reads nothing but its arguments.

    ``load_settings`` (tokenboard/settings.py) reads the files, Streamlit's secrets and the
    environment into one of these; every entry point uses it.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False, frozen=True, extra="ignore"
    )

    backend: Annotated[str, BeforeValidator(_text), AfterValidator(_not_empty)] = Field(
        "local",
        description='"local": the embedded store (DuckDB over Parquet files in store.data_dir), filled\n'
        "with demo traffic, by `python -m tokenboard import`, or by the local gateway.\n"
        '"azure": an Application Insights resource or a Log Analytics workspace ([azure] below).',
    )
    currency: Name = Field(
        "USD",
        description="Currency of every price and money budget below (an ISO code such as USD or EUR).",
    )
    default_prices: Flag = Field(
        True,
        description="Use tokenboard's shipped price list (tokenboard/prices.toml: USD list prices,\n"
        "its source and date written in it) for models [prices] does not name. It applies\n"
        'only while currency = "USD"; false: only your [prices].',
    )
    store: Store = Store()
    azure: Azure = Azure()
    telemetry: Telemetry = Telemetry()
    limits: Limits = Limits()
    query: Query = Query()
    display: Display = Display()
    gateway: Gateway = Gateway()
    access: Access = Access()
    prices: PriceTable = Field(
        default_factory=dict,
        description="Prices per 1M tokens in `currency`, per model (the name the telemetry's model\n"
        "dimension carries, after model_aliases). Yours win over the shipped list, model by model:\n"
        '  [prices."gpt-4o-mini"]\n'
        "  input = 0.15           # prompt tokens not served from the cache\n"
        "  cached_input = 0.075   # cached prompt tokens (default: input)\n"
        "  output = 0.60          # completion tokens, reasoning included\n"
        "  # reasoning = 0.60     # reasoning tokens, if billed apart (default: output)\n"
        "A price change mid-month: a list of tables, each from its valid_from day (UTC):\n"
        '  [[prices."o3"]]\n'
        "  input = 10.0\n"
        "  output = 40.0\n"
        '  [[prices."o3"]]\n'
        "  valid_from = 2025-06-10\n"
        "  input = 2.0\n"
        "  output = 8.0\n"
        "As an environment variable, JSON:\n"
        '  TOKENBOARD_PRICES=\'{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}\'\n'
        "Tokens of a model without a price are counted as unpriced, never as 0.",
    )
    model_aliases: ModelTable = Field(
        default_factory=lambda: {"prod-4o-mini": "gpt-4o-mini"},
        description="Deployment names in the telemetry -> the model whose price they use. The default\n"
        "is the demo's deployment; a table of yours replaces it.\n"
        '  TOKENBOARD_MODEL_ALIASES=\'{"prod-4o-mini": "gpt-4o-mini"}\'',
    )
    api_models: ModelTable = Field(
        default_factory=dict,
        description="APIs whose metrics carry no model dimension -> the model behind them, e.g.\n"
        '"completions-v1" = "gpt-35-turbo-instruct".\n'
        '  TOKENBOARD_API_MODELS=\'{"chat": "gpt-4o"}\'',
    )
    budgets: BudgetTable = Field(
        default_factory=lambda: dict(DEMO_BUDGETS),
        description="Monthly budgets per subscription (calendar months in UTC) for the Budgets page:\n"
        'money in `currency` ("contoso-prod" = 2500 or { cost = 2500 }), Total Tokens\n'
        "({ tokens = 40_000_000 }), or both. The defaults budget the demo's subscriptions;\n"
        "a table of yours replaces them.\n"
        '  TOKENBOARD_BUDGETS=\'{"contoso-prod": {"cost": 2500}}\'',
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**_nest(values)[0])
            return
        except _ValidationError as exc:
            error = _config_error(exc, {})
        raise error

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment and the files are read by read_settings only

    def replace(self, **changes: Any) -> Settings:
        """A copy with some keys changed (flat keys, or sections as tables), validated again."""
        return Settings(**_merge(self.model_dump(), _nest(changes)[0]))


def _nest(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Flat aliases moved into their sections, known names lower-cased; and who wrote which path.

    Returns the nested values and, for every path set through an alias, the alias.
    """
    nested: dict[str, Any] = {}
    written: dict[str, str] = {}
    sections = Settings.model_fields
    for key, value in raw.items():
        name = str(key).strip().lower()
        if name in ALIASES:
            section, field = ALIASES[name].split(".")
            target = nested.setdefault(section, {})
            if isinstance(target, dict):
                target[field] = value
                written[ALIASES[name]] = name
        elif name in sections:
            if isinstance(value, Mapping) and isinstance(nested.get(name), dict):
                nested[name] = _merge(nested[name], _lower_fields(name, value))
            else:
                nested[name] = _lower_fields(name, value) if isinstance(value, Mapping) else value
    return nested, written


def _lower_fields(section: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """Field names inside a section, case-insensitively (table entries keep their case)."""
    section_class = _section_class(section)
    fields = section_class.model_fields if section_class else {}
    return {(k.lower() if isinstance(k, str) and k.lower() in fields else k): v for k, v in value.items()}


def _section_class(name: str) -> type[Section] | None:
    annotation = Settings.model_fields[name].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, tables merged key by key (sections), other values replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if (
            isinstance(value, Mapping)
            and isinstance(merged.get(key), Mapping)
            and key in Settings.model_fields
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# --- reading the sources ----------------------------------------------------------------------


class _Environment(EnvSettingsSource):
    """pydantic-settings' reading of ``TOKENBOARD_*`` (``__`` nesting, JSON), from a given mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}


def read_files(paths: tuple[Path, ...] = SECRETS_FILES) -> list[dict[str, Any]]:
    """The secrets files that exist, parsed, lowest precedence first."""
    layers = []
    for path in paths:
        path = path.expanduser()
        if path.is_file():
            try:
                layers.append(tomllib.loads(path.read_text("utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SecretsFileError(path, str(exc)) from None
    return layers


def read_settings(
    secrets: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    files: tuple[Path, ...] = (),
) -> Settings:
    """Settings from secrets files, a secrets mapping (``st.secrets``), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    written: dict[str, str] = {}
    for layer in [*read_files(files), dict(secrets or {}), *_environment(environ, written)]:
        nested, names = _nest(layer)
        values = _merge(values, nested)
        written |= names
    try:
        return Settings(**values)
    except ConfigError as exc:
        key = _written_key(exc.key, written)
        if key == exc.key:
            raise
        problem = str(exc).removeprefix(f"Configuration key '{exc.key}' ")
    raise ConfigError(key, problem)


def _environment(environ: Mapping[str, str], written: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Flat ``TOKENBOARD_<KEY>`` variables first, then the nested ones (which win)."""
    flat = {}
    for name, value in environ.items():
        key = name.upper().removeprefix(ENV_PREFIX).lower() if name.upper().startswith(ENV_PREFIX) else ""
        if key in ALIASES:
            flat[key] = value
    yield flat
    try:
        nested = _Environment(environ)()
    except SettingsError as exc:  # a JSON value that is not JSON; the message names the field
        field = str(exc).split('"')[1] if '"' in str(exc) else "settings"
        error = ConfigError(field, "must be JSON (an object) when set by an environment variable")
    else:
        for path, name in _paths(nested):
            written.setdefault(path, name)
        yield nested
        return
    raise error


def _paths(nested: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in nested.items():
        path = f"{prefix}{key}"
        yield path, path
        if isinstance(value, Mapping) and not prefix:
            yield from _paths(value, f"{path}.")


def _written_key(path: str, written: Mapping[str, str]) -> str:
    return written.get(path, path)


# --- errors ---------------------------------------------------------------------------------


def _config_error(exc: _ValidationError, written: Mapping[str, str]) -> ConfigError:
    """The first problem as one sentence naming the key; a secret's value is never echoed."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    key, entry, field = _locate(loc)
    secret = _is_secret(field)
    kind = error["type"]
    if kind in ("config", "config_value"):
        problem = error["msg"]
    elif kind == "extra_forbidden":
        problem, key, entry = "is not a setting (see .streamlit/secrets.toml.example)", ".".join(loc), None
        return ConfigError(written.get(key, key), problem)
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = "must be a table"
    else:
        problem = "has a value of the wrong kind"
    value = error.get("input")
    if entry is not None:
        problem = f"{problem} for {entry!r}"
        if kind == "config_value" and not secret and isinstance(value, str | int | float):
            problem += f": {value!r}"
    elif kind == "config_value" and not secret and isinstance(value, str | int | float | list):
        problem += f", not {value!r}"
    return ConfigError(written.get(key, key), problem)


def _locate(loc: list[str]) -> tuple[str, str | None, FieldInfo | None]:
    """(key path, table entry or None, field) for an error location like gateway.subscriptions.x."""
    if not loc or loc[0] not in Settings.model_fields:
        return ".".join(loc) or "settings", None, None
    field = Settings.model_fields[loc[0]]
    section = _section_class(loc[0])
    if section is None or len(loc) == 1:
        return loc[0], None, field
    if loc[1] not in section.model_fields:
        return ".".join(loc[:2]), None, None
    inner = section.model_fields[loc[1]]
    return f"{loc[0]}.{loc[1]}", (loc[2] if len(loc) > 2 else None), inner


def _is_secret(field: FieldInfo | None) -> bool:
    """A field whose type holds a SecretStr anywhere (a secret, or a table of them)."""
    if field is None:
        return True  # unknown: say nothing about the value

    def holds(annotation: Any) -> bool:
        if annotation is SecretStr:
            return True
        return any(holds(arg) for arg in get_args(annotation))

    return holds(field.annotation)


# --- the example file -------------------------------------------------------------------------

EXAMPLE_HEADER = """\
# tokenboard configuration. Copy to .streamlit/secrets.toml (never commit that file) and
# change what differs; every key below is shown with its default, and a key you leave out
# keeps that default. With no file at all, tokenboard runs on the embedded local demo.
# This file is generated from tokenboard/config.py: python -m tokenboard.config > it.
#
# Every key can also be set by an environment variable TOKENBOARD_<SECTION>__<KEY>, which
# wins over this file; a whole table as JSON. The flat keys of earlier versions still work,
# in the file and as TOKENBOARD_<KEY> (e.g. gateway_url, TOKENBOARD_TOKENS_PER_MINUTE):
#   TOKENBOARD_BACKEND=azure
#   TOKENBOARD_STORE__DATA_DIR=/var/lib/tokenboard
#   TOKENBOARD_STORE__SEED_ON_START=false          (true/false, 1/0, yes/no, on/off)
#   TOKENBOARD_LIMITS__TOKENS_PER_MINUTE=50000     (whole numbers may use _ : 50_000)
#   TOKENBOARD_LIMITS__TOKENS_PER_MINUTE_OVERRIDES='{"sub-a": 50000}'   (or 'sub-a=50000,sub-b=20000')
# The dashboard reads this file through Streamlit; `python -m tokenboard` reads the same
# .streamlit/secrets.toml (and ~/.streamlit/secrets.toml) from the directory it runs in.
# A bad value stops start-up with one message naming the key.
"""

EXAMPLE_FOOTER = """\
# Sign-in (Streamlit reads this table; all of it is secret, and uncommenting it switches
# sign-in on). Entra ID: register a web app whose redirect URI is this dashboard's address
# + /oauth2callback (README: Deploying for a team). In a container the environment variables
# TOKENBOARD_AUTH_<KEY> (REDIRECT_URI, COOKIE_SECRET, CLIENT_ID, CLIENT_SECRET,
# SERVER_METADATA_URL) give the same table to `python -m tokenboard serve` (scripts/serve).
#
# [auth]
# redirect_uri = "https://tokenboard.contoso.com/oauth2callback"
# cookie_secret = "<python -c 'import secrets; print(secrets.token_urlsafe(32))'>"
# client_id = "<application (client) id>"
# client_secret = "<client secret>"
# server_metadata_url = "https://login.microsoftonline.com/<tenant id>/v2.0/.well-known/openid-configuration"
"""


def example_toml() -> str:
    """``.streamlit/secrets.toml.example``: every key with its default and what it means."""
    defaults = Settings()
    lines = [EXAMPLE_HEADER]
    for name, field in Settings.model_fields.items():
        section = _section_class(name)
        value = getattr(defaults, name)
        if section is None and isinstance(value, Mapping):  # a top-level table ([prices], [budgets])
            entries = [f"{json.dumps(k, ensure_ascii=False)} = {_toml(v)}" for k, v in value.items()]
            lines += [*_comment(field.description), f"[{name}]", *entries, ""]
            continue
        if section is None:
            lines += [*_comment(field.description), f"{name} = {_toml(value)}", ""]
            continue
        lines += [*_comment(section.title), f"[{name}]", ""]
        values = getattr(defaults, name)
        for key, inner in section.model_fields.items():
            lines += [*_comment(inner.description), f"{key} = {_toml(getattr(values, key))}", ""]
    return "\n".join(lines).rstrip("\n") + "\n\n" + EXAMPLE_FOOTER


def _comment(text: str | None) -> list[str]:
    return [f"# {line}".rstrip() for line in (text or "").splitlines()]


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() and key.isascii() else json.dumps(key, ensure_ascii=False)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return _toml({k: v for k, v in value.model_dump().items() if v is not None})
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, SecretStr):
        return '""'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
            if value
            else "{}"
        )
    return json.dumps(str(value), ensure_ascii=False)


if __name__ == "__main__":
    print(example_toml(), end="")
