"""``python -m tokenboard serve``: start the dashboard, or refuse to when that would be unsafe.

``./scripts/run`` (a laptop) and ``scripts/serve`` (the container) both start the dashboard
through here. Before Streamlit starts it:

- finds the address Streamlit will bind to (``--server.address``, ``STREAMLIT_SERVER_ADDRESS``,
  then ``.streamlit/config.toml``, which says 127.0.0.1) and refuses, with one sentence naming
  the setting, to serve anything but loopback without sign-in unless ``allow_anonymous = true``;
- writes the ``[auth]`` table from ``TOKENBOARD_AUTH_*`` environment variables (a container's
  secrets arrive as environment variables; Streamlit reads ``[auth]`` only from a secrets file)
  into a private file and hands it to Streamlit after the usual secrets files;
- checks the configuration, so a bad key stops the start with one line, not a broken page.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenboard import access
from tokenboard.config import SECRETS_FILES, ConfigError, read_files
from tokenboard.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
CONFIG_FILES = (Path("~/.streamlit/config.toml"), Path(".streamlit/config.toml"))
AUTH_ENV = "TOKENBOARD_AUTH_"
AUTH_ENV_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


class ServeError(Exception):
    """Why the dashboard will not start: one sentence for stderr."""


def streamlit_argv(args: Sequence[str], environ: Mapping[str, str], cwd: Path) -> list[str]:
    """The ``streamlit run`` command line for these arguments, after every check passed."""
    args = list(args)
    secrets_files = _option_values(args, "--secrets.files") or [
        str(p) for p in (cwd / p.expanduser() for p in SECRETS_FILES) if p.is_file()
    ]
    generated = auth_from_environment(environ)
    try:
        layers = read_files(tuple(Path(p) for p in secrets_files))
        settings = load_settings({}, environ, tuple(Path(p) for p in secrets_files))
        auth = generated or next((layer["auth"] for layer in reversed(layers) if "auth" in layer), None)
        sign_in = access.sign_in({} if auth is None else {"auth": auth})
    except ConfigError as exc:
        raise ServeError(str(exc)) from None
    address = bind_address(args, environ, cwd)
    problem = access.exposure_problem(address, sign_in is not None, settings)
    if problem:
        raise ServeError(problem)
    if generated is not None:
        args = _without_option(args, "--secrets.files")
        for path in [*secrets_files, str(write_auth_file(generated))]:
            args += ["--secrets.files", path]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *args]


def auth_from_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The ``[auth]`` table from ``TOKENBOARD_AUTH_<KEY>`` variables (None when none is set)."""
    values = {key: environ.get(AUTH_ENV + key.upper(), "") for key in AUTH_ENV_KEYS}
    if not any(values.values()):
        return None
    missing = [AUTH_ENV + key.upper() for key, value in values.items() if not value.strip()]
    if missing:
        raise ServeError(f"Sign-in from the environment also needs {', '.join(missing)}.")
    return {key: value.strip() for key, value in values.items()}


def write_auth_file(auth: Mapping[str, str]) -> Path:
    """A secrets file holding only ``[auth]``, readable by this user alone."""
    folder = Path(tempfile.mkdtemp(prefix="tokenboard-auth-"))  # mode 700
    path = folder / "secrets.toml"
    lines = ["[auth]"] + [f"{key} = {_toml_string(value)}" for key, value in auth.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def bind_address(args: Sequence[str], environ: Mapping[str, str], cwd: Path) -> str | None:
    """Where Streamlit will listen: the flag, then its environment variable, then config.toml."""
    given = _option_values(args, "--server.address")
    if given:
        return given[-1]
    if environ.get("STREAMLIT_SERVER_ADDRESS"):
        return environ["STREAMLIT_SERVER_ADDRESS"]
    address = None
    for path in CONFIG_FILES:
        path = cwd / path.expanduser()
        if path.is_file():
            try:
                server = tomllib.loads(path.read_text("utf-8")).get("server", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                raise ServeError(f"{path} is not valid TOML.") from None
            address = server.get("address", address)
    return address


def main(args: Sequence[str]) -> int:
    """Check, then become Streamlit (exec: signals reach it directly, as a container needs)."""
    try:
        argv = streamlit_argv(args, os.environ, Path.cwd())
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.execv(argv[0], argv)
    return 0  # unreachable


def _option_values(args: Sequence[str], name: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(name + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _without_option(args: Sequence[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are ones TOML accepts too)."""
    return json.dumps(value, ensure_ascii=False)
