"""The Azure path failing, seen on a page: one worded error, never a traceback.

The real SDK and the real DefaultAzureCredential run against loopback servers: a managed
identity endpoint that hands out a token, and a Log Analytics endpoint that refuses
(closed port) or answers 403.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pagetools import PAGES
from streamlit.testing.v1 import AppTest

RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/microsoft.insights/components/appi-demo"
)
NO_ACCESS = "The provided credentials have insufficient access to perform the requested operation"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # the managed identity endpoint
        body = {
            "access_token": "token-for-tests",
            "expires_on": str(int(time.time()) + 3600),
            "resource": "https://api.loganalytics.io",
            "token_type": "Bearer",
        }
        self._send(200, body)

    def do_POST(self):  # the Log Analytics query API, refusing access
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(
            403,
            {
                "error": {
                    "code": "InsufficientAccessError",
                    "message": NO_ACCESS,
                }
            },
        )

    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def azure_env(app_env, monkeypatch, loopback):
    pytest.importorskip("tokenboard.backends.azure")
    monkeypatch.setenv("TOKENBOARD_BACKEND", "azure")
    monkeypatch.setenv("TOKENBOARD_APP_INSIGHTS_RESOURCE_ID", RESOURCE_ID)
    monkeypatch.setenv("TOKENBOARD_QUERY_TIMEOUT_SECONDS", "10")
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{loopback}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "test-header")
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_USERNAME",
        "MSI_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    return loopback


def run_overview() -> AppTest:
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_unreachable_log_analytics_endpoint_is_one_clear_error(azure_env, monkeypatch):
    monkeypatch.setenv("TOKENBOARD_AZURE_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    at = run_overview()
    assert len(at.error) == 1
    text = at.error[0].value
    assert "could not be loaded" in text, text
    assert "token-for-tests" not in text and "Traceback" not in text
    assert not at.metric


def test_missing_role_says_which_role_to_ask_for(azure_env, monkeypatch):
    monkeypatch.setenv("TOKENBOARD_AZURE_ENDPOINT", azure_env)
    at = run_overview()
    assert len(at.error) == 1
    text = at.error[0].value
    assert "Reader" in text, text  # Monitoring Reader / Log Analytics Reader
    assert "token-for-tests" not in text
