"""Rendering a result table as a rich table (people), CSV or JSON (programs)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from enum import StrEnum
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from loanwatch.reports import Table


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: Any) -> str:
    """Text from the data as it may reach a terminal: control characters (C0, DEL, C1) are
    written as escapes (``\\x1b``, ``\\n``), so that a name holding ``ESC]0;TITLE BEL`` or
    ``ESC[2J`` prints those characters instead of retitling the window or clearing the screen."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if code < 32 or 127 <= code < 160:
            out.append(_CONTROL.get(ch) or f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def shown(text: Any) -> str:
    """Text from the data for a rich console: control characters escaped, and rich markup such as
    ``[b]…[/b]`` shown literally."""
    return escape(literal(text))


def shown_value(kind: str, value: Any) -> str:
    """A value for people, by its column kind (reports.registry.KINDS): counts with thousands
    separators, money with 2 decimals, shares as percentages; '-' when there is none."""
    if value is None:
        return "-"
    if kind == "count":
        return f"{value:,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "share":
        return f"{value:.2%}"
    return str(_plain(value))


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
        rt = RichTable(title=shown(title) if title else None, show_lines=False)
        for c in table.columns:
            rt.add_column(c, justify="right" if _numeric(table, c) else "left", no_wrap=True)
        for row in table.rows:
            # Text from the data is shown literally: escape rich markup such as [b]…[/b].
            rt.add_row(*["" if v is None else shown(_plain(v)) for v in row])
        console.print(rt)


def _numeric(table: Table, column: str) -> bool:
    i = table.columns.index(column)
    return any(isinstance(r[i], (int, float, Decimal)) and not isinstance(r[i], bool) for r in table.rows)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


class Log:
    """What the operational commands (ingest, build, run, notify send, schedule, docs) tell as they
    work: lines for a person (default), or with ``--log-format json`` one JSON object per event on
    standard output for a log collector (``ts``, ``level``, ``event``, and the event's fields; no
    colours, no progress display). Errors go to standard error either way."""

    def __init__(self, out: Console, err: Console):
        self.out, self.err, self.json = out, err, False

    def _emit(self, level: str, event: str, fields: dict) -> None:
        record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "level": level, "event": event}
        record.update({k: _json_value(v) for k, v in fields.items()})
        stream = sys.stderr if level == "error" else sys.stdout
        stream.write(_dumps(record) + "\n")
        stream.flush()

    def info(self, text: str, event: str, **fields: Any) -> None:
        """``text`` is rich markup (data in it already through shown()); ``fields`` are the event's data."""
        if self.json:
            self._emit("info", event, fields)
        else:
            self.out.print(text)

    def warning(self, text: str, event: str, **fields: Any) -> None:
        if self.json:
            self._emit("warning", event, fields)
        else:
            self.err.print(f"[yellow]warning:[/yellow] {text}")

    def error(self, text: str, event: str = "error", **fields: Any) -> None:
        if self.json:
            self._emit("error", event, {"message": literal(text), **fields})
        else:
            self.err.print(f"[red]error:[/red] {shown(text)}")

    def progress(self, text: str):
        """A spinner with ``text`` while a long step runs: only on a terminal, in text mode."""
        import contextlib

        if self.json or not self.out.is_terminal:
            return contextlib.nullcontext()
        return self.out.status(text)
