"""What the gateway serves: APIs with their backends, subscriptions with their keys and limits.

Everything comes from the ``[gateway]`` and ``[limits]`` settings, already parsed and checked.
With nothing configured the gateway serves demo APIs on the mock model and demo subscriptions
whose keys are generated once per data directory (``<data_dir>/.gateway-keys.json``, readable by
its owner only), so every clone has its own keys and scripts find them with
``python -m tokenboard gateway --list-subscriptions``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tokenboard.config import ConfigError, Settings
from tokenboard.gateway.connections import ConnectionLimits
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
        return self.settings.gateway.key_header

    @property
    def connection_limits(self) -> ConnectionLimits:
        gateway = self.settings.gateway
        return ConnectionLimits(gateway.max_connections, gateway.header_timeout_seconds)

    def subscription_for_key(self, key: str) -> Subscription | None:
        """The subscription a key belongs to (constant-time comparison against each key)."""
        found = None
        for subscription in self.subscriptions:
            if secrets.compare_digest(subscription.key.encode(), key.encode()):
                found = subscription
        return found


def load_gateway_config(settings: Settings) -> GatewayConfig:
    """APIs and subscriptions from the gateway settings; demo ones fill in what is not configured."""
    gateway, limits = settings.gateway, settings.limits
    default_backend = gateway.upstream_url or MOCK
    configured = gateway.apis or dict.fromkeys(DEMO_APIS, "")
    apis = {name: Api(name, backend or default_backend) for name, backend in configured.items()}
    keys = {sub: key.get_secret_value() for sub, key in gateway.subscriptions.items()}
    subscriptions = tuple(
        Subscription(
            sub_id,
            key,
            Limits(
                tokens_per_minute=limits.for_subscription(sub_id),
                token_quota=gateway.token_quota_overrides.get(sub_id, limits.token_quota),
                quota_period=limits.token_quota_period,
            ),
        )
        for sub_id, key in (keys or demo_keys(settings.store.data_dir)).items()
    )
    return GatewayConfig(settings, apis, subscriptions)


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
