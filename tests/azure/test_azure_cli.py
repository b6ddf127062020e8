"""Azure failures in ``python -m tokenboard``: one line on stderr and exit status 1, whatever
azure-identity and azure-core log (DefaultAzureCredential alone logs ten lines when it fails).
The real SDK and credential in a subprocess, against the emulator over loopback."""

from __future__ import annotations

import pytest
from cli_helpers import one_line_error
from la_emulator import LogAnalyticsEmulator


@pytest.fixture
def azure_env(emulator: LogAnalyticsEmulator, identity_env: None) -> dict[str, str]:
    """The subprocess inherits identity_env's environment; these point the CLI at the emulator."""
    return {
        "TOKENBOARD_BACKEND": "azure",
        "TOKENBOARD_APP_INSIGHTS_RESOURCE_ID": emulator.resource_id,
        "TOKENBOARD_AZURE_ENDPOINT": emulator.endpoint,
    }


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("identity_denied", "Could not sign in to Azure"),
        ("forbidden", "Monitoring Reader"),
        ("bad_query", "could not be parsed"),
    ],
)
def test_an_azure_failure_is_one_line_and_exit_1(
    run, emulator: LogAnalyticsEmulator, azure_env: dict[str, str], mode: str, fragment: str
) -> None:
    emulator.set_mode(mode)
    result = run("query", "usage_pivot", env=azure_env)
    assert result.returncode == 1
    line = one_line_error(result)
    assert fragment in line
    assert "DefaultAzureCredential" not in line and emulator.identity_header not in line
    assert all(token not in result.stderr.decode() for token in emulator.tokens.values())


def test_an_unreachable_identity_endpoint_is_one_line_and_exit_1(
    run, azure_env: dict[str, str], closed_port: int
) -> None:
    env = azure_env | {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{closed_port}/msi/token"}
    result = run("report", "usage_pivot", env=env)
    assert result.returncode == 1
    assert "Could not sign in to Azure" in one_line_error(result)


def test_debug_shows_what_the_sdk_logged(run, emulator: LogAnalyticsEmulator, azure_env) -> None:
    emulator.set_mode("identity_denied")
    result = run("--debug", "query", "usage_pivot", env=azure_env)
    assert result.returncode == 1
    assert "DefaultAzureCredential failed to retrieve a token" in result.stderr.decode()
