"""The command line: --list-subscriptions for scripts, flags over configuration, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_helpers import free_port

from tokenboard.config import SECRETS_FILES
from tokenboard.gateway import cli
from tokenboard.gateway.server import bind
from tokenboard.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml of a developer's


def test_list_subscriptions_prints_id_tab_key_generated_once_per_data_dir(data_dir: Path, capsys) -> None:
    assert cli.main(["--data-dir", str(data_dir), "--list-subscriptions"]) == 0
    first = capsys.readouterr().out
    lines = [line.split("\t") for line in first.splitlines()]
    assert [sub for sub, _ in lines] == ["team-alpha", "team-beta", "team-gamma"]
    assert all(len(key) == 32 for _, key in lines)
    assert cli.main(["--data-dir", str(data_dir), "--list-subscriptions"]) == 0
    assert capsys.readouterr().out == first  # stable for this data dir
    keys_file = data_dir / ".gateway-keys.json"
    assert keys_file.stat().st_mode & 0o077 == 0  # owner only
    assert json.loads(keys_file.read_text()) == dict(lines)
    other = data_dir.parent / "other"
    cli.main(["--data-dir", str(other), "--list-subscriptions"])
    assert capsys.readouterr().out != first  # another data dir, other keys


def test_configured_subscriptions_are_listed(data_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TOKENBOARD_GATEWAY_SUBSCRIPTIONS", '{"contoso": "k1", "fabrikam ü": "k2"}')
    assert cli.main(["--data-dir", str(data_dir), "--list-subscriptions"]) == 0
    assert capsys.readouterr().out == "contoso\tk1\nfabrikam ü\tk2\n"


def test_flags_override_the_configuration_for_every_subscription(monkeypatch) -> None:
    monkeypatch.setenv("TOKENBOARD_TOKENS_PER_MINUTE_OVERRIDES", "team-alpha=99")
    args = cli.build_parser().parse_args(
        ["--tokens-per-minute", "50", "--key-header", "api-key", "--token-quota", "1000",
         "--token-quota-period", "Daily"]
    )  # fmt: skip
    settings = cli.apply_flags(load_settings(files=SECRETS_FILES), args)
    assert settings.limits.for_subscription("team-alpha") == 50 == settings.limits.for_subscription("anyone")
    assert (settings.gateway.key_header, settings.limits.token_quota, settings.limits.token_quota_period) == (
        "api-key", 1000, "Daily"
    )  # fmt: skip
    assert settings.gateway.mock_backend_tokens_per_minute == 0
    args = cli.build_parser().parse_args(["--mock-backend-tokens-per-minute", "2_000"])
    assert (
        cli.apply_flags(load_settings(files=SECRETS_FILES), args).gateway.mock_backend_tokens_per_minute
        == 2000
    )


def test_bad_configuration_is_one_line_naming_the_key(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TOKENBOARD_GATEWAY_SUBSCRIPTIONS", "no-equals-sign")
    assert cli.main(["--list-subscriptions"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tokenboard: error: Configuration key 'gateway_subscriptions'")
    assert err.count("\n") == 1


def test_port_in_use_is_a_clear_error(data_dir: Path, capsys) -> None:
    sock = bind("127.0.0.1", 0)
    sock.listen()
    try:
        port = sock.getsockname()[1]
        assert cli.main(["--port", str(port), "--data-dir", str(data_dir)]) == 1
    finally:
        sock.close()
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_flag_value_is_one_line_and_exit_2(capsys) -> None:
    assert cli.main(["--tokens-per-minute", "0", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "argument --tokens-per-minute: must be at least 1" in err and err.count("\n") == 1
