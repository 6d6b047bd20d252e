"""Rendering a result table as a rich table (people), CSV or JSON (programs)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from loanwatch.reports import Table


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Amounts have 2 and shares 6 decimals: a double's shortest repr gives that text back.
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def render(table: Table, fmt: Format, title: str | None = None, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if fmt == Format.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow(["" if v is None else _plain(v) for v in row])
    elif fmt == Format.json:
        rows = [{c: _json_value(v) for c, v in zip(table.columns, row)} for row in table.rows]
        out.write(_dumps(rows) + "\n")
    else:
        console = Console(file=out) if out is not sys.stdout else Console()
        if not console.is_terminal:
            # Piped: never squeeze columns to 80 characters.
            console.width = max(console.width, 240)
        rt = RichTable(title=escape(title) if title else None, show_lines=False)
        for c in table.columns:
            rt.add_column(c, justify="right" if _numeric(table, c) else "left", no_wrap=True)
        for row in table.rows:
            # Text from the data is shown literally: escape rich markup such as [b]…[/b].
            rt.add_row(*["" if v is None else escape(str(_plain(v))) for v in row])
        console.print(rt)


def _numeric(table: Table, column: str) -> bool:
    i = table.columns.index(column)
    return any(isinstance(r[i], (int, float, Decimal)) and not isinstance(r[i], bool) for r in table.rows)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)
