"""Finding input files, telling their entity and format, and reading them into ``_lines``.

Every format ends in the same temp view ``_lines(line_no, raw)``: one raw JSON object text per
record, with the line (NDJSON), row (CSV: header = line 1) or element position (JSON array) it
came from. The engine reads the files; Python never loops over rows.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loanwatch.errors import UsageProblem, environmental
from loanwatch.ingest.contract import ENTITY_NAMES_LONGEST_FIRST

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")


class UnreadableFile(Exception):
    """The whole file cannot be read; the message says why, for a person."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    entity: str | None
    fmt: str | None  # csv | ndjson | array | None when unknown


def entity_of(path: Path) -> str | None:
    """Contract: the entity's name, then end of name, `_`, `-` or `.`; the longest name wins."""
    name = path.name.lower()
    for entity in ENTITY_NAMES_LONGEST_FIRST:
        if name.startswith(entity) and (len(name) == len(entity) or name[len(entity)] in "_-."):
            return entity
    return None


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def format_of(path: Path) -> str | None:
    suffix = _base_suffix(path)
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "ndjson"
    if suffix == ".json":
        return "array" if _first_char(path) == "[" else "ndjson"
    return None


def _first_char(path: Path) -> str:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4096)
    except (OSError, EOFError):
        return ""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return chr(text[0]) if text else ""


def special_kind(path: Path) -> str | None:
    """What a path is when it is neither a regular file nor a folder (reading a FIFO or a device
    such as /dev/zero would wait, or read, forever); None for files and folders."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def discover(paths: list[Path], every_file: bool = False) -> list[Path]:
    """Files named directly, and input files found recursively in folders, in a stable order.
    ``every_file``: every file of a folder, whatever its suffix (but hidden ones).

    A named path that is not a file or folder is a usage error; such an entry inside a folder is
    returned, so that it is reported (``special_kind``) rather than read or silently passed over.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(
                f for f in p.rglob("*")
                if not f.name.startswith(".") and (every_file or _base_suffix(f) in SUFFIXES) and not f.is_dir()
            )
        elif kind := special_kind(p):
            raise UsageProblem(f"{p}: {kind}, not a file; name files or folders to read "
                               "(copy the data into a file first)")
        else:
            found.append(p)
    return found


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Every format reads the file into the temp table ``_text`` in file order (the insertion order is
# preserved, so a row's rowid is its position), and ``_lines`` is a view over it. Numbering by
# rowid keeps the read parallel: row_number() OVER () numbered the lines on one thread.

# Control characters cannot occur unescaped in valid JSON, so they make a delimiter and a quote
# that never split a valid line: each line arrives whole, in order, blank lines included.
_NDJSON = """
CREATE OR REPLACE TEMP TABLE _text AS
SELECT raw
FROM read_csv(?, columns = {{'raw': 'VARCHAR'}}, header = false, delim = E'\\x01',
              quote = E'\\x02', escape = E'\\x03', auto_detect = false, strict_mode = false{long_lines})
"""

_ARRAY = """
CREATE OR REPLACE TEMP TABLE _text AS
SELECT json::VARCHAR AS raw
FROM read_json_objects(?, format = 'array')
"""

# The line (NDJSON) or element (JSON array) a record came from; blank lines are not records.
_LINES_BY_POSITION = """
CREATE OR REPLACE TEMP VIEW _lines AS
SELECT rowid + 1 AS line_no, raw FROM _text
WHERE raw IS NOT NULL AND NOT regexp_full_match(raw, ' *')
"""

_CSV = """
CREATE OR REPLACE TEMP TABLE _csv_rows AS
SELECT to_json(t)::VARCHAR AS raw
FROM read_csv(?, header = true, all_varchar = true, delim = ?, store_rejects = true,
              rejects_scan = '_csv_reject_scans', rejects_table = '_csv_reject_errors'{long_lines}) t
"""

# The reader skips the rows it rejects, so the n-th row it returns (n = rowid + 1) sits on line
# n + 1 (header) plus one for every rejected line before it: rejected line r_j (j-th) has
# r_j - j - 1 good rows before it.
_CSV_LINES = """
CREATE OR REPLACE TEMP TABLE _text AS
WITH rejected AS (
    SELECT line, line - row_number() OVER (ORDER BY line) - 1 AS good_before
    FROM (SELECT DISTINCT line FROM _csv_reject_errors)
), numbered AS (
    SELECT rowid + 1 AS row_no, raw FROM _csv_rows
)
SELECT row_no + 1 + (SELECT count(*) FROM rejected WHERE good_before < row_no) AS line_no, raw
FROM numbered;
DROP TABLE _csv_rows;
CREATE OR REPLACE TEMP VIEW _lines AS SELECT line_no, raw FROM _text
"""


@contextlib.contextmanager
def engine_path(path: Path) -> Iterator[str]:
    """A name under which the engine reads exactly this file.

    The engine reads a path as a pattern (``loans_[ab].jsonl`` would read loans_a.jsonl and
    loans_b.jsonl) and treats some prefixes as locations. Every file is read through a link with a
    plain name in a private folder, so every character a file system allows in a name is literal.
    """
    folder = Path(tempfile.mkdtemp(prefix="loanwatch-read-"))
    link = folder / ("input.gz" if path.name.lower().endswith(".gz") else "input")
    try:
        os.symlink(path.resolve(), link)
        yield str(link)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_LINE_TOO_LONG = re.compile(r"Maximum line size of \d+ bytes exceeded")


def _read_long_lines(con: duckdb.DuckDBPyConnection, template: str, path: str, *params: str) -> None:
    """Run a reading statement; where a line is longer than the reader's default limit (2 MB),
    again with a limit of the whole file's size, so that one long record is read (and loaded or
    quarantined) alone. The limit is raised only for such a file: a large one slows reading. (A
    limit between the first long line and a longer one is not safe: the reader was seen to drop
    the longer line without a word.)"""
    try:
        con.execute(template.format(long_lines=""), [path, *params])
    except duckdb.InvalidInputException as exc:
        if not _LINE_TOO_LONG.search(str(exc)):
            raise
        limit = _content_size(Path(path)) + 1024
        con.execute(template.format(long_lines=f", max_line_size = {limit}, buffer_size = {limit + 1024}"), [path, *params])


def _content_size(path: Path) -> int:
    """The file's size in bytes, uncompressed."""
    if not path.name.lower().endswith(".gz"):
        return path.stat().st_size
    total = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
    return total


def read_lines(con: duckdb.DuckDBPyConnection, f: InputFile, delimiter: str = ",") -> list[tuple[int, str, str]]:
    """Fill ``_lines`` from the file. Returns CSV rows the reader itself rejected: (line, reason, raw).
    ``delimiter``: of a CSV file (a source mapping's; the contract's is a comma).

    Raises UnreadableFile when nothing of the file can be read.
    """
    # Lines are numbered by position in _text (rowid), which needs the file's order kept.
    con.execute("SET preserve_insertion_order = true")
    try:
        with engine_path(f.path) as path:
            if f.fmt in ("ndjson", "array"):
                if f.fmt == "ndjson":
                    _read_long_lines(con, _NDJSON, path)
                    held = _hold_back_unended(con, f, "SELECT rowid + 1, raw FROM _text WHERE rowid = (SELECT max(rowid) FROM _text)",
                                              "DELETE FROM _text WHERE rowid = (SELECT max(rowid) FROM _text)")
                else:
                    con.execute(_ARRAY, [path])
                    held = []
                con.execute(_LINES_BY_POSITION)
                return held
            elif f.fmt == "csv":
                if _is_empty(f.path):
                    con.execute("CREATE OR REPLACE TEMP TABLE _text (raw VARCHAR)")
                    con.execute(_LINES_BY_POSITION)
                    return []
                if repeated := _repeated_column(f.path, delimiter):
                    raise UnreadableFile(f"the header names column \"{repeated}\" twice: its values are ambiguous")
                con.execute("DROP TABLE IF EXISTS _csv_reject_errors; DROP TABLE IF EXISTS _csv_reject_scans")
                _read_long_lines(con, _CSV, path, delimiter)
                con.execute(_CSV_LINES)
                rows = con.execute(
                    """SELECT line, string_agg(DISTINCT error_type, ', '), any_value(csv_line)
                       FROM _csv_reject_errors GROUP BY line ORDER BY line"""
                ).fetchall()
                rejected = [(int(line), _malformed(kind), raw) for line, kind, raw in rows]
                # the last record, unless the reader rejected it already (a quote left open)
                last = "(SELECT max(line_no) FROM _text) AND line_no > (SELECT coalesce(max(line), 0) FROM _csv_reject_errors)"
                held = _hold_back_unended(con, f, f"SELECT line_no, raw FROM _text WHERE line_no = {last}",
                                          f"DELETE FROM _text WHERE line_no = {last}")
                return rejected + held
            else:
                raise UnreadableFile("unknown file type: expected .json, .jsonl, .ndjson or .csv (optionally .gz)")
    except duckdb.Error as exc:
        if environmental(exc):
            raise  # a full disk is not the file's fault: it must not be quarantined for it
        raise UnreadableFile(explain(exc, f)) from None
    return []


UNENDED = ("the last line has no line end: the file was still being written (writers: write, then rename "
           "into the inbox), or its writer does not end lines; not loaded: a complete copy of the file loads it")


def _ends_with_line_break(path: Path) -> bool:
    """Does the file end with a line break (or hold nothing)? A gzip file counts as ended: a
    stream cut short is a corrupt stream, quarantined whole."""
    if path.name.lower().endswith(".gz"):
        return True
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) in (b"\n", b"\r")


def _hold_back_unended(con: duckdb.DuckDBPyConnection, f: InputFile, last_sql: str, delete_sql: str) -> list[tuple[int, str, str]]:
    """A CSV or NDJSON file whose last line has no line end is still being written, or was cut:
    that line is never loaded (a cut amount would load as another number), but kept in the
    quarantine with its reason; the rest of the file loads. The finished file has another
    content hash, so the next run reads it again: the rows loaded now are duplicates then."""
    if _ends_with_line_break(f.path):
        return []
    row = con.execute(last_sql).fetchone()
    if row is None or row[1] is None or not row[1].strip():
        return []
    con.execute(delete_sql)
    return [(int(row[0]), UNENDED, row[1])]


_NOT_UTF8_HINT = ("if it is in another encoding, load it through a source mapping that names it "
                  "(encoding = \"latin-1\", docs/mappings.md)")


def _malformed(kinds: str) -> str:
    reason = f"CSV row is malformed ({kinds.replace('_', ' ').lower()})"
    if "invalid encoding" in kinds.replace("_", " ").lower():
        reason += f": the row is not UTF-8; {_NOT_UTF8_HINT}"
    return reason


def csv_header(path: Path, delimiter: str = ",") -> list[str]:
    """The column names of a CSV file's header row (as the engine will name them: trimmed)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            header = next(csv.reader([fh.readline()], delimiter=delimiter), [])
    except (OSError, EOFError, csv.Error):
        return []
    return [h.strip() for h in header]


def _repeated_column(path: Path, delimiter: str = ",") -> str | None:
    """A column the CSV header names twice (the reader would rename the second and use the first)."""
    seen: set[str] = set()
    for name in csv_header(path, delimiter):
        if name in seen and name:
            return name
        seen.add(name)
    return None


def _is_empty(path: Path) -> bool:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return not fh.read(4096).lstrip(b"\xef\xbb\xbf").strip()
    except (OSError, EOFError):
        return False


def explain(exc: Exception, f: InputFile) -> str:
    """A reason a person understands, from an engine error about a whole file."""
    # Engine messages name the file by its full path; the reason is stored beside the file name.
    text = re.sub(r' in file "[^"]*"', "", str(exc))
    line = re.search(r"[Ll]ine:? (\d+)", text)
    where = f" (line {line.group(1)})" if line else ""
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        return f"the file is not UTF-8 encoded{where}; {_NOT_UTF8_HINT}"
    if "gzip" in text.lower() or "zlib" in text.lower() or "compress" in text.lower():
        return "the gzip stream is truncated or corrupt"
    if f.fmt == "array":
        return "the JSON array is malformed or cut off: " + text.splitlines()[0][:200]
    if f.fmt == "csv":
        return "the CSV file cannot be read: " + text.splitlines()[0][:200]
    return "the file cannot be read: " + text.splitlines()[0][:200]
