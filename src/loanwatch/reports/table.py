"""A result table, and the one way a query becomes one.

Every report, the dashboard's tables, the contact plan, the checks and the runs are a `Table`:
column names and rows, nothing else; a `Noted` table adds what its figures rest on (the
provisions'), which every front end shows under it (`notes_of`). It lives apart from the report package's helpers so that
what only needs a table of rows (output, notify, quality, operations) needs nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


@dataclass
class Noted(Table):
    """A report's table with what its figures rest on, one sentence each, for the line under it."""

    notes: list[str] = field(default_factory=list)


def notes_of(table: Table) -> list[str]:
    """What a table's figures rest on, for the line under it: a Noted table's notes; none for another."""
    return list(table.notes) if isinstance(table, Noted) else []


def run_query(con: duckdb.DuckDBPyConnection, sql: str, params) -> Table:
    """Run a query with bound parameters; its result as a Table (every report goes through here)."""
    if isinstance(params, dict):
        # DuckDB refuses named parameters the statement does not use; queries vary by path.
        params = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
    cur = con.execute(sql, params)
    return Table([d[0] for d in cur.description], cur.fetchall())
