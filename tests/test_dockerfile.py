"""The container image: what its Dockerfile promises (no engine here to build it, see the README).

Its start command, scripts/serve, is run by tests/test_serve.py and by the sign-in browser test,
which also runs the image's HEALTHCHECK command against the live dashboard.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def healthcheck_command() -> list[str]:
    """The exec-form command of HEALTHCHECK (also run against a live dashboard by the browser test)."""
    (arguments,) = [a for i, a in instructions() if i == "HEALTHCHECK"]
    return json.loads(arguments.split("CMD", 1)[1])


def test_slim_python_and_a_non_root_user_for_the_start_command() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [i for i, _ in steps].index("USER") < [i for i, _ in steps].index("CMD")
    (cmd,) = [json.loads(a) for i, a in steps if i == "CMD"]
    assert cmd == ["scripts/serve"] and os.access(ROOT / cmd[0], os.X_OK)


def test_the_health_check_asks_streamlit_s_health_endpoint() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"] and "/_stcore/health" in command[2]


def test_no_secret_is_baked_in() -> None:
    for instruction, arguments in instructions():
        if instruction in ("ENV", "ARG", "LABEL"):
            for name in re.findall(r"(\w+)=", arguments):
                assert not re.search(r"KEY|SECRET|PASSWORD|(^|_)TOKEN(_|$)", name, re.IGNORECASE), name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".streamlit/secrets.toml" in ignored and "data/" in ignored and ".git/" in ignored
