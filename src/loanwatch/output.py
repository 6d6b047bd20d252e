"""Rendering a result table as a rich table (people), CSV or JSON (programs)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
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
    separators, money with separators and 2 decimals, shares as percentages with one decimal;
    '-' when there is none. CSV and JSON keep the exact values for programs."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind in ("count", "days") and isinstance(value, (int, Decimal, float)):
        return f"{value:,}"
    if kind == "money" and isinstance(value, (int, Decimal, float)):
        return f"{value:,.2f}"
    if kind == "share" and isinstance(value, (int, Decimal, float)):
        # half up, as every figure is rounded (METRICS), not Python's half-to-even
        return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)} %"
    if kind == "number" and isinstance(value, (int, Decimal, float)):
        return f"{value:,}"
    return str(_plain(value))


@dataclass(frozen=True)
class Shown:
    """How one column is shown to people: its kind (reports.registry.KINDS) and a human title;
    help: what it holds, where the title cannot say it all (the dashboard's tooltip)."""

    name: str
    kind: str
    title: str
    help: str = ""


NUMERIC_KINDS = ("count", "money", "share", "days", "number")


def guess_column(name: str, values: list[Any]) -> Shown:
    """A column no registry declares (the contact plan, checks, runs): its kind from its values and
    its name, its title from its name."""
    sample = next((v for v in values if v is not None), None)
    kind = "text"
    if isinstance(sample, bool):
        kind = "text"
    elif isinstance(sample, int):
        kind = "count"
    elif isinstance(sample, (Decimal, float)):
        kind = "share" if name.endswith(("_share", "_rate", "rate")) else "number"
    elif isinstance(sample, dt.date):
        kind = "date"
    return Shown(name, kind, human_title(name))


# Words that are written in capitals in a title (days past due, portfolio at risk, …).
ACRONYMS = {"dpd": "DPD", "npl": "NPL", "par30": "PAR30", "par60": "PAR60", "par90": "PAR90", "utc": "UTC",
            "sms": "SMS", "csv": "CSV", "url": "URL"}


def human_title(name: str) -> str:
    """A title for a column no registry declares, from its name: words apart, the first
    capitalised, acronyms in capitals, and a flag's ``is_`` left off (``is_reversed``: Reversed,
    ``dpd``: DPD)."""
    words = name.split("_")
    if len(words) > 1 and words[0] == "is":
        words = words[1:]
    words = [ACRONYMS.get(w.lower(), w) for w in words if w]
    title = " ".join(words)
    return title[:1].upper() + title[1:]


def parse_amount(text: str) -> float | None:
    """An amount a person typed, as shown to people (``120,000.00``, ``1000``, ``1 500.5``): the
    thousands separators and spaces are left out. None when it is not a finite number."""
    cleaned = "".join(str(text).split()).replace(",", "").replace("_", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def column_titles(table: Table, columns=None, currency: str | None = None) -> list[Shown]:
    """Each column of a table as shown to people: declared (``columns``: objects with name, kind,
    title, such as the registry's), or guessed; money titles carry the currency."""
    declared = {c.name: c for c in columns or ()}
    out = []
    for i, name in enumerate(table.columns):
        c = declared.get(name) or guess_column(name, [r[i] for r in table.rows[:50]])
        title = c.title + (f" ({currency})" if c.kind == "money" and currency else "")
        out.append(Shown(name, c.kind, title, getattr(c, "help", "")))
    return out


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


def render(table: Table, fmt: Format, title: str | None = None, out: TextIO | None = None, *,
           columns=None, currency: str | None = None, note: str | list[str] | None = None,
           shown_columns: list[str] | None = None) -> None:
    """A table for people (``fmt`` table: human titles, values formatted by column kind, fitted to
    the terminal) or for programs (csv, json: the column names and exact values).

    columns: how columns are shown (the registry's Column, or anything with name, kind, title);
    currency: added to money titles; note: a line under the table (as-of date, filters, partial
    month), or lines (what a report's figures rest on follows); shown_columns: the columns a person sees, in order (csv and json keep them all)."""
    out = out or sys.stdout
    if fmt == Format.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow(["" if v is None else _plain(v) for v in row])
        return
    if fmt == Format.json:
        rows = [{c: _json_value(v) for c, v in zip(table.columns, row)} for row in table.rows]
        out.write(_dumps(rows) + "\n")
        return
    # emoji=False: ":x:" or ":warning:" in the data is shown as written, never as an emoji
    console = Console(file=out, emoji=False) if out is not sys.stdout else Console(emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped with no width given: never squeeze columns to 80 characters.
        console.width = max(console.width, 240)
    specs = column_titles(table, columns, currency)
    index = {c: i for i, c in enumerate(table.columns)}
    picked = [c for c in (shown_columns or table.columns) if c in index]
    cells = {c: [shown_value(specs[index[c]].kind, r[index[c]]) for r in table.rows] for c in picked}

    def needed(c: str) -> int:
        # a number is never cut; text may wrap down to 12 characters
        widest = max((len(v) for v in cells[c]), default=0)
        longest_word = max((len(w) for w in specs[index[c]].title.split()), default=1)
        if specs[index[c]].kind in NUMERIC_KINDS or specs[index[c]].kind in ("date", "month"):
            return max(widest, longest_word, 1)
        return max(min(widest, 12), longest_word, 1)

    left_out = []
    while len(picked) > 1 and sum(needed(c) + 3 for c in picked) + 1 > console.width:
        left_out.insert(0, picked.pop())
    captions = ([note] if isinstance(note, str) else list(note)) if note else []
    if left_out:
        captions.append(f"not shown at this width: {', '.join(specs[index[c]].title for c in left_out)} "
                        "(a wider terminal, or --format csv, shows every column)")
    # Each column gets what its values need, then the room left goes to the titles that would
    # otherwise wrap, narrowest first (rich's own collapsing can overrun the width).
    widths = {c: needed(c) for c in picked}
    wants = {c: max(widths[c], len(specs[index[c]].title), max((len(v) for v in cells[c]), default=0)) for c in picked}
    room = console.width - (sum(widths.values()) + 3 * len(picked) + 1)
    hungry = sorted(picked, key=lambda c: wants[c] - widths[c])
    for i, c in enumerate(hungry):
        give = min(wants[c] - widths[c], max(room, 0) // (len(hungry) - i))
        widths[c] += give
        room -= give
    rt = RichTable(title=shown(title) if title else None, show_lines=False,
                   caption="\n".join(shown(c) for c in captions) if captions else None, caption_justify="left")
    for c in picked:
        spec = specs[index[c]]
        numeric = spec.kind in NUMERIC_KINDS
        # Titles wrap at spaces; a value is one word no narrower than min_width, so it is never cut.
        rt.add_column(shown(spec.title), justify="right" if numeric else "left", width=widths[c], overflow="fold")
    for i in range(len(table.rows)):
        # Text from the data is shown literally: escape rich markup such as [b]…[/b].
        rt.add_row(*[shown(cells[c][i]) for c in picked])
    console.print(rt)


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
