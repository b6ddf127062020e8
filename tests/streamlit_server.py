"""A dashboard process on a free loopback port, and Chromium as the tests and benches launch it.

Shared by the browser tests (``tests/pages/browsertools.py`` adds what only they need)
and bench/browser.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The pages that query, by the name tests use.
PAGES = {
    "overview": ROOT / "app.py",
    "usage": ROOT / "pages" / "1_Usage.py",
    "throttling": ROOT / "pages" / "2_Throttling.py",
    "reports": ROOT / "pages" / "3_Reports.py",
    "budgets": ROOT / "pages" / "5_Budgets.py",
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any TOKENBOARD_* / STREAMLIT_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENBOARD_", "STREAMLIT_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | settings


@contextlib.contextmanager
def dashboard(command: Sequence[str], env: Mapping[str, str], url: str, log: Path) -> Iterator[str]:
    """Run the dashboard until the block ends; yields its URL once /_stcore/health answers."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: stop() ends the dashboard and its children
        )  # fmt: skip
        try:
            wait_for(f"{url}/_stcore/health", process, log)
            yield url
        finally:
            stop(process)


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}: {log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer: {log.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> None:
    """End the process group we started (the dashboard and anything it spawned)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def serve(script: Path, env: Mapping[str, str], log: Path) -> contextlib.AbstractContextManager[str]:
    """``streamlit run script`` on a free loopback port with only ``env``'s TOKENBOARD_* settings."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]  # fmt: skip
    return dashboard(command, clean_environment(**env), f"http://127.0.0.1:{port}", log)


def settle(page, selector: str = ".js-plotly-plot", timeout_ms: int = 90_000) -> None:
    """Wait for the page's content, then for the script run (and its sections) to finish."""
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]')",
        timeout=timeout_ms,
        polling=250,
    )
    page.wait_for_timeout(500)
