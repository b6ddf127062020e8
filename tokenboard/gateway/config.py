"""What the gateway serves: APIs with their backends, subscriptions with their keys and limits.

Everything comes from :class:`tokenboard.config.Settings`. With nothing configured the gateway
serves demo APIs on the mock model and demo subscriptions whose keys are generated once per data
directory (``<data_dir>/.gateway-keys.json``, readable by its owner only), so every clone has its
own keys and scripts find them with ``python -m tokenboard gateway --list-subscriptions``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tokenboard.config import ConfigError, Settings, parse_pairs
from tokenboard.gateway.limiter import Limits

MOCK = "mock"
DEMO_APIS = ("ai", "chat")
DEMO_SUBSCRIPTIONS = ("team-alpha", "team-beta", "team-gamma")
KEYS_FILE = ".gateway-keys.json"


@dataclass(frozen=True)
class Api:
    id: str
    backend: str  # MOCK or the base URL of an OpenAI-compatible API (".../v1")


@dataclass(frozen=True)
class Subscription:
    id: str
    key: str = field(repr=False)
    limits: Limits


@dataclass(frozen=True)
class GatewayConfig:
    settings: Settings
    apis: dict[str, Api]
    subscriptions: tuple[Subscription, ...]

    @property
    def key_header(self) -> str:
        return self.settings.gateway_key_header

    def subscription_for_key(self, key: str) -> Subscription | None:
        """The subscription a key belongs to (constant-time comparison against each key)."""
        found = None
        for subscription in self.subscriptions:
            if secrets.compare_digest(subscription.key.encode(), key.encode()):
                found = subscription
        return found


def load_gateway_config(settings: Settings) -> GatewayConfig:
    """Parse the gateway_* settings; demo APIs and subscriptions fill in what is not configured."""
    apis = _apis(settings)
    keys = parse_pairs("gateway_subscriptions", settings.gateway_subscriptions)
    keys = keys or demo_keys(settings.data_dir)
    quota_key = "gateway_token_quota_overrides"
    quotas = {
        sub: _whole(quota_key, sub, n)
        for sub, n in parse_pairs(quota_key, settings.gateway_token_quota_overrides).items()
    }
    subscriptions = []
    for sub_id, key in keys.items():
        if not key:
            raise ConfigError("gateway_subscriptions", f"has an empty key for subscription {sub_id!r}")
        limits = Limits(
            tokens_per_minute=settings.limit_for(sub_id),
            token_quota=quotas.get(sub_id, settings.token_quota),
            quota_period=settings.token_quota_period,
        )
        subscriptions.append(Subscription(sub_id, key, limits))
    if len({s.key for s in subscriptions}) != len(subscriptions):
        raise ConfigError("gateway_subscriptions", "gives two subscriptions the same key")
    if not settings.gateway_key_header.strip():
        raise ConfigError("gateway_key_header", "must not be empty")
    return GatewayConfig(settings, apis, tuple(subscriptions))


def _apis(settings: Settings) -> dict[str, Api]:
    default_backend = settings.gateway_upstream_url or MOCK
    if not settings.gateway_apis.strip():
        return {name: Api(name, default_backend) for name in DEMO_APIS}
    apis = {}
    for part in settings.gateway_apis.split(","):
        name, _, backend = part.strip().partition("=")
        name, backend = name.strip().strip("/"), backend.strip() or default_backend
        if not name:
            continue
        if "/" in name or not name.isprintable():
            raise ConfigError("gateway_apis", f"has an API name that is not one path segment: {name!r}")
        if backend != MOCK and not backend.startswith(("http://", "https://")):
            raise ConfigError(
                "gateway_apis", f"gives API {name!r} a backend that is neither 'mock' nor a URL"
            )
        apis[name] = Api(name, backend.rstrip("/"))
    return apis


def _whole(key: str, name: str, text: str) -> int:
    try:
        number = int(text.replace("_", ""))
    except ValueError:
        raise ConfigError(key, f"has a non-numeric value for {name!r}") from None
    if number < 0:
        raise ConfigError(key, f"has a negative value for {name!r}")
    return number


def demo_keys(data_dir: Path) -> dict[str, str]:
    """Keys of the demo subscriptions, created on first use and then read back."""
    path = Path(data_dir) / KEYS_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_keys(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {sub: secrets.token_hex(16) for sub in DEMO_SUBSCRIPTIONS}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    try:
        os.link(tmp, path)  # fails if another process created the file first: then theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_keys(path)


def _read_keys(path: Path) -> dict[str, str]:
    try:
        keys = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError:
        raise ConfigError(
            "gateway_subscriptions", f"found an unreadable {path}; delete it to get new keys"
        ) from None
    return {str(k): str(v) for k, v in keys.items()}
