"""``python -m tokenboard gateway``: serve the local gateway, or list its subscriptions and keys.

The flags override the configuration for every subscription. Settings come from the secrets
files (``.streamlit/secrets.toml`` in the working directory, ``~/.streamlit/secrets.toml``) and
``TOKENBOARD_*`` environment variables, exactly as the dashboard and the CLI read them. Bad
input is one line on stderr and exit status 2; a port that cannot be had is exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from tokenboard.cli import EXIT_FAILED, EXIT_USAGE, CliError, OneLineParser, fail
from tokenboard.config import QUOTA_PERIODS, SECRETS_FILES, ConfigError, Settings
from tokenboard.gateway.app import create_app
from tokenboard.gateway.config import MOCK, load_gateway_config
from tokenboard.gateway.server import bind, uvicorn_server
from tokenboard.settings import load_settings
from tokenboard.store import Store


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m tokenboard gateway",
        description="A local AI gateway with APIM's llm-token-limit and llm-emit-token-metric policies.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8080, help="port to listen on (default: %(default)s)")
    parser.add_argument("--tokens-per-minute", type=_positive, help="rate limit for every subscription")
    parser.add_argument(
        "--token-quota", type=_not_negative, help="token quota for every subscription (0: none)"
    )
    parser.add_argument("--token-quota-period", choices=QUOTA_PERIODS, help="period of --token-quota")
    parser.add_argument("--key-header", help="subscription key header (default: Ocp-Apim-Subscription-Key)")
    parser.add_argument("--mock-latency-ms", type=_not_negative, help="latency of the mock model")
    parser.add_argument(
        "--mock-backend-tokens-per-minute",
        type=_not_negative,
        help="the mock model deployment's own limit, shared by every subscription (0: none)",
    )
    parser.add_argument("--data-dir", type=Path, help="where telemetry is written (default: configured)")
    parser.add_argument("--max-connections", type=_positive, help="open connections at most (default: 1000)")
    parser.add_argument(
        "--header-timeout", type=_positive, help="seconds to send a request head (default: 10)"
    )
    parser.add_argument("--body-timeout", type=_positive, help="seconds to send a request body (default: 30)")
    parser.add_argument(
        "--list-subscriptions", action="store_true", help="print 'subscription-id<TAB>key' lines and exit"
    )
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = apply_flags(load_settings(files=SECRETS_FILES), args)
        config = load_gateway_config(settings)
    except CliError as exc:
        return fail(str(exc), exc.code)
    except (ConfigError, OSError) as exc:
        return fail(str(exc), EXIT_USAGE)
    if args.list_subscriptions:
        for subscription in config.subscriptions:
            print(f"{subscription.id}\t{subscription.key}")
        return 0
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        code = EXIT_USAGE if isinstance(exc, socket.gaierror) else EXIT_FAILED  # a host that is no address
        return fail(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", code)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    port = sock.getsockname()[1]
    backends = ", ".join(f"/{a.id}/chat/completions ({'mock model' if a.backend == MOCK else a.backend})"
                         for a in config.apis.values())  # fmt: skip
    print(
        f"tokenboard gateway on http://{args.host}:{port}\n"
        f"  APIs: {backends}\n"
        f"  key header: {config.key_header}; subscriptions: {', '.join(s.id for s in config.subscriptions)}"
        f" (keys: python -m tokenboard gateway --list-subscriptions)\n"
        f"  telemetry: {settings.store.data_dir}",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn_server(create_app(config, Store(settings.store.data_dir)), config.connection_limits)
    server.run(sockets=[sock])
    return 0


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    limits: dict[str, object] = {}
    gateway: dict[str, object] = {}
    if args.tokens_per_minute is not None:
        limits |= {"tokens_per_minute": args.tokens_per_minute, "tokens_per_minute_overrides": {}}
    if args.token_quota is not None:
        limits["token_quota"] = args.token_quota
        gateway["token_quota_overrides"] = {}
    if args.token_quota_period is not None:
        limits["token_quota_period"] = args.token_quota_period
    if args.key_header is not None:
        gateway["key_header"] = args.key_header
    if args.mock_latency_ms is not None:
        gateway["mock_latency_ms"] = args.mock_latency_ms
    for flag, key in (("max_connections", "max_connections"), ("header_timeout", "header_timeout_seconds"),
                      ("body_timeout", "body_timeout_seconds"),
                      ("mock_backend_tokens_per_minute", "mock_backend_tokens_per_minute")):  # fmt: skip
        if getattr(args, flag) is not None:
            gateway[key] = getattr(args, flag)
    store = {"data_dir": args.data_dir} if args.data_dir is not None else {}
    return settings.replace(limits=limits, gateway=gateway, store=store)


def _port(text: str) -> int:
    number = _not_negative(text)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {number}")
    return number


def _positive(text: str) -> int:
    number = _not_negative(text)
    if number == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _not_negative(text: str) -> int:
    try:
        number = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number
