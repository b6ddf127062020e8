"""The settings every entry point loads: the dashboard, the command line and the gateway.

Files (or Streamlit's secrets), then ``TOKENBOARD_*`` environment variables, validated by the
model in ``tokenboard/config.py`` and then checked against the chosen backend (a backend name
must be registered, the Azure backend needs a resource or workspace id).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenboard.backends import check_settings
from tokenboard.config import Settings, read_settings


def load_settings(
    secrets: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    files: tuple[Path, ...] = (),
) -> Settings:
    """Settings from ``files`` (e.g. ``config.SECRETS_FILES``), ``secrets`` (e.g. ``st.secrets``),
    then ``environ`` (default: the process environment); a ``ConfigError`` names a bad key."""
    settings = read_settings(secrets, environ, files)
    check_settings(settings)
    return settings
