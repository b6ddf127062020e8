"""Starting the dashboard: loopback by default, another address only with sign-in (or consent).

`scripts/serve` is the container's start command (Dockerfile): these tests run that script.
The browser tests start the dashboard through it too (tests/pages/test_sign_in_browser.py).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tokenboard import serve

ROOT = Path(__file__).resolve().parent.parent
AUTH_ENV = {
    "TOKENBOARD_AUTH_REDIRECT_URI": "http://localhost:8501/oauth2callback",
    "TOKENBOARD_AUTH_COOKIE_SECRET": "cookie-secret-7777",
    "TOKENBOARD_AUTH_CLIENT_ID": "tokenboard",
    "TOKENBOARD_AUTH_CLIENT_SECRET": 'client "secret" 7777',
    "TOKENBOARD_AUTH_SERVER_METADATA_URL": "http://127.0.0.1:9400/.well-known/openid-configuration",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with the repository's .streamlit/config.toml and no secrets file."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
    return tmp_path


def test_by_default_it_listens_on_loopback_without_sign_in(project: Path) -> None:
    argv = serve.streamlit_argv(["--server.port", "8600"], {}, project)
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(serve.APP)]
    assert argv[5:] == ["--server.port", "8600"]
    assert serve.bind_address([], {}, project) == "127.0.0.1"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--server.address", "0.0.0.0"], {}),
        (["--server.address=192.168.1.5"], {}),
        ([], {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}),
    ],
)
def test_another_address_without_sign_in_refuses_to_start(project: Path, args, env) -> None:
    with pytest.raises(serve.ServeError, match=r"allow_anonymous = true") as caught:
        serve.streamlit_argv(args, env, project)
    assert "[auth]" in str(caught.value)
    allowed = serve.streamlit_argv(args, {**env, "TOKENBOARD_ACCESS__ALLOW_ANONYMOUS": "true"}, project)
    assert allowed[5:] == args


def test_no_config_file_means_every_interface_and_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(serve.ServeError, match="every network interface"):
        serve.streamlit_argv([], {}, tmp_path)


def test_sign_in_from_the_environment_becomes_a_private_secrets_file(project: Path) -> None:
    (project / ".streamlit" / "secrets.toml").write_text('backend = "local"\n')
    argv = serve.streamlit_argv(["--server.address", "0.0.0.0"], AUTH_ENV, project)
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--secrets.files"]
    assert files[0] == str(project / ".streamlit" / "secrets.toml")  # the usual file first...
    generated = Path(files[-1])  # ...the environment last, so it wins
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert stat.S_IMODE(generated.parent.stat().st_mode) == 0o700
    auth = tomllib.loads(generated.read_text())["auth"]
    assert auth["client_secret"] == 'client "secret" 7777' and auth["cookie_secret"] == "cookie-secret-7777"
    assert "7777" not in " ".join(argv)


def test_half_a_sign_in_from_the_environment_names_what_is_missing(project: Path) -> None:
    env = {k: v for k, v in AUTH_ENV.items() if not k.endswith("CLIENT_SECRET")}
    with pytest.raises(serve.ServeError, match="TOKENBOARD_AUTH_CLIENT_SECRET"):
        serve.streamlit_argv([], env, project)


def test_a_broken_auth_table_stops_the_start_naming_the_key_not_the_value(project: Path) -> None:
    (project / ".streamlit" / "secrets.toml").write_text(
        '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = 98765432109876\n'
    )
    with pytest.raises(serve.ServeError) as caught:
        serve.streamlit_argv([], {}, project)
    assert "'auth.cookie_secret'" in str(caught.value) and "98765432109876" not in str(caught.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENBOARD_", "STREAMLIT_"))}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run(
        [str(ROOT / "scripts" / "serve")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_container_command_refuses_to_start_without_sign_in() -> None:
    port = free_port()
    done = run_script({"PORT": str(port), "TOKENBOARD_GATEWAY_SUBSCRIPTION_KEY": "k-98765432109876"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "allow_anonymous = true" in done.stderr
    assert "98765432109876" not in done.stderr + done.stdout
    with socket.socket() as s:  # nothing was ever bound
        s.bind(("0.0.0.0", port))


def test_the_container_command_says_which_setting_is_bad_without_its_value() -> None:
    done = run_script({"TOKENBOARD_TOKENS_PER_MINUTE": "lots"})
    assert done.returncode == 2 and "'tokens_per_minute' must be a whole number" in done.stderr
