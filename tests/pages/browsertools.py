"""Helpers for the browser tests: how the dashboard is started, what loads (the process and
Chromium helpers are in ``tests/streamlit_server.py``).

The dashboard is started the way people start it (``python -m tokenboard serve``, which
``./scripts/run`` runs, or ``scripts/serve``, the container's command), once per test module.
"""

from __future__ import annotations

import sys

from streamlit_server import (  # noqa: F401 (the browser tests import these from here)
    CHROMIUM,
    CHROMIUM_ARGS,
    clean_environment,
    dashboard,
    free_port,
    settle,
    stop,
    wait_for,
)

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
