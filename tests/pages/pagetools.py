"""Helpers for page tests: reading downloads off an AppTest, and the pandas reference numbers."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime

import pandas as pd
from streamlit.testing.v1 import AppTest
from streamlit_server import PAGES, ROOT  # noqa: F401 (page tests import them from here)

from tokenboard.config import Settings


def download(at: AppTest, downloads: dict[str, tuple[str, bytes]], file_name: str) -> bytes:
    """The content of the download button on this page that saves ``file_name``."""
    seen = []
    for button in at.get("download_button"):
        file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
        name, content = downloads.get(file_id, ("", b""))
        if name == file_name:
            return content
        seen.append(name)
    raise AssertionError(f"no download button saving {file_name}; the page has {seen}")


def csv_frame(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), encoding="utf-8", keep_default_na=False, dtype=str)


def metrics_with_dims(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Raw customMetrics rows with the configured dimensions as columns (missing -> "")."""
    dims = frame["customDimensions"].map(lambda text: json.loads(text) if text else {})
    return frame.assign(
        subscription=dims.map(lambda d: str(d.get(settings.telemetry.subscription_dimension, ""))),
        api=dims.map(lambda d: str(d.get(settings.telemetry.api_dimension, ""))),
        model=dims.map(lambda d: str(d.get(settings.telemetry.model_dimension, ""))),
    )


def requests_with_dims(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    dims = frame["customDimensions"].map(lambda text: json.loads(text) if text else {})
    return frame.assign(
        subscription=dims.map(lambda d: str(d.get(settings.telemetry.request_subscription_key, ""))),
        api=dims.map(lambda d: str(d.get(settings.telemetry.request_api_key, ""))),
    )


def between(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return frame[(frame["timestamp"] >= pd.Timestamp(start)) & (frame["timestamp"] < pd.Timestamp(end))]


def whole(value: float) -> str:
    """How the pages print a token count."""
    return f"{round(value):,}"


def shown(markdown: str) -> str:
    """What a Markdown string escaped by ``safe.md`` reads as on screen."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")
