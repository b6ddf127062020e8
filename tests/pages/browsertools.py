"""Helpers for the browser tests: a dashboard process on a free port, waiting for a page, what loads.

The dashboard is started the way people start it (``python -m tokenboard serve``, which
``./scripts/run`` runs, or ``scripts/serve``, the container's command), once per test module.
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
from pagetools import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVE = [sys.executable, "-m", "tokenboard", "serve", "--server.fileWatcherType", "none"]

# Every attribute through which an element links to, or loads, something; and event handlers.
LINKS_AND_LOADS = """(within) => {
  const linky = new Set(['href', 'xlink:href', 'src', 'srcset', 'action', 'formaction', 'poster',
                         'background', 'data', 'ping', 'cite', 'longdesc']);
  const found = [];
  for (const el of document.querySelectorAll(within || '*')) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase(), value = a.value;
      if ((linky.has(name) && /evil|javascript:/i.test(value)) ||
          (name.startsWith('on') && /alert/i.test(value)) ||
          (name === 'style' && /url\\(.*evil/i.test(value))) {
        found.push(`${el.tagName} ${name}=${value.slice(0, 80)}`);
      }
    }
    if (el.tagName === 'SCRIPT' && /alert\\(/.test(el.textContent)) {
      found.push('SCRIPT ' + el.textContent.slice(0, 80));
    }
  }
  return found;
}"""


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


def settle(page, selector: str = ".js-plotly-plot") -> None:
    """Wait for the page's content, then for the script run to finish."""
    page.wait_for_selector(selector, timeout=90_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000, polling=250
    )
    page.wait_for_timeout(500)
