"""The backend calls of limit hits: all that limit_hit_causes needs of ``dependencies``.

limit_hit_causes joins each 429 / 403 of a range to the backend calls of its operation (one
``dependencies`` row per call APIM forwarded: a call tells who refused). Its KQL counts the
calls of every operation in the range, about a million a month, to keep the few thousand
that had a limit hit; hashing them all was most of the query's time (bench/README.md). For
that query the local backend shadows ``dependencies`` with :func:`view_sql`: the range's
calls of operations with a limit hit, and one more call without an operation_Id (the KQL
also asks whether the range holds any backend call at all, ``backend_logged``; a call
without an operation_Id is counted there and joined to nothing). The KQL that runs is
unchanged; tests/test_rollups.py compares it with the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tokenboard.backends.rollups import HIT_CODES, between, naive_utc, sql_string

QUERIES = frozenset({"limit_hit_causes"})


def view_sql(name: str, values: Mapping[str, Any], dependencies: str, requests: str) -> str | None:
    """``dependencies`` for one bound query, narrowed to the calls of limit hits (None: whole).

    ``dependencies`` and ``requests`` are the store's relations (not shadowed).
    """
    start, end = values.get("start_time"), values.get("end_time")
    if name not in QUERIES or not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    start, end = naive_utc(start), naive_utc(end)
    in_range = between(start, end)
    codes = ", ".join(map(sql_string, HIT_CODES))
    hits = f'SELECT "operation_Id" FROM {requests} WHERE {in_range} AND "resultCode" IN ({codes})'
    return (
        f'SELECT d.* FROM {dependencies} AS d WHERE d."operation_Id" IN ({hits}) AND '
        f"{between(start, end, 'd.')}\n"
        "UNION ALL\n"
        f'(SELECT * REPLACE (NULL::VARCHAR AS "operation_Id") FROM {dependencies} WHERE {in_range} LIMIT 1)'
    )
