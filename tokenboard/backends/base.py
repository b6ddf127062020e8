"""The one interface both backends implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from tokenboard import kql
from tokenboard.config import Settings


class BackendError(RuntimeError):
    """A query failed; ``str()`` is a message a person can act on, with no secrets in it."""

    def __init__(self, message: str, *, hint: str = "", kind: str = "error") -> None:
        self.hint = hint
        self.kind = kind  # auth | forbidden | bad_query | throttled | timeout | network | not_found | error
        super().__init__(message if not hint else f"{message} {hint}")


@dataclass(frozen=True)
class QueryResult:
    """A query's frame plus what the user should know about it."""

    frame: pd.DataFrame
    query: kql.BoundQuery
    warnings: tuple[str, ...] = field(default_factory=tuple)


class Backend(ABC):
    """Runs a named query file with parameters and returns typed columns."""

    #: "local" or "azure"; what the Overview page shows as the source.
    kind: str = ""
    prelude: str = "app_insights"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def description(self) -> str:
        """Where the data comes from, for people."""
        return self.kind

    def bind(
        self, query_name: str, params: Mapping[str, Any] | None = None, now: datetime | None = None
    ) -> kql.BoundQuery:
        """The exact KQL this backend would run (for the "show KQL" expanders)."""
        query = kql.get_query(query_name)
        return kql.bind(query, params or {}, self.settings.dimension_names(), self.prelude, now)

    def run(self, query_name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a query file; the frame of its result (warnings go to ``run_query``)."""
        return self.run_query(self.bind(query_name, params)).frame

    @abstractmethod
    def run_query(self, bound: kql.BoundQuery) -> QueryResult:
        """Run bound KQL text and return its first table."""
