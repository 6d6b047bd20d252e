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
import zlib
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
            # hidden files and folders are never read (a writer's temporary names, a home's .dbt/)
            # a linked folder is not descended into: it is returned, to be reported (not_read)
            found += sorted(
                f for f in p.rglob("*")
                if not any(part.startswith(".") for part in f.relative_to(p).parts)
                and ((f.is_symlink() and f.is_dir()) or ((every_file or _base_suffix(f) in SUFFIXES) and not f.is_dir()))
            )
        elif kind := special_kind(p):
            raise UsageProblem(f"{p}: {kind}, not a file; name files or folders to read "
                               "(copy the data into a file first)")
        else:
            found.append(p)
    return found


def not_read(path: Path, roots: list[Path]) -> str | None:
    """Why a file found in a folder is not read, or None. A link that leads outside the folders
    and files given (``roots``, resolved) is not followed: it could show any file of the machine
    (its lines would land in the quarantine); a link to nothing is reported, not an error; a file
    this user may not read is passed over, said, and read once it may be."""
    try:
        target = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return f"a link to nothing ({os.readlink(path) if path.is_symlink() else 'missing'}): not read"
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or exc}): not read"
    if target.is_dir():
        where = "inside" if any(target == r or target.is_relative_to(r) for r in roots) else "outside"
        return (f"a link to the folder {target}, {where} the folders given: not followed"
                + (" (its files are read where they are)" if where == "inside" else ""))
    if path.is_symlink() and not any(target == r or target.is_relative_to(r) for r in roots):
        return f"a link to {target}, outside the folders given: not followed"
    if not os.access(target, os.R_OK):
        return "permission denied: not read (make it readable; the next run loads it)"
    return None


@dataclass
class Scan:
    """What one pass over a file tells before it is read: its content hash (of the bytes as
    stored), its longest line and its size (uncompressed), or that it inflates past a limit."""

    digest: str
    longest: int
    size: int
    inflates_past: int | None = None  # a gzip file that inflates past [ingest] max_uncompressed_bytes
    ended: bool = True  # the last byte hashed is a line end (or nothing, or gzip): no line is cut
    version: tuple[int, int, int] = (0, 0, 0)  # the file's inode, size and mtime when the scan began


class _Lines:
    """The longest line of a byte stream fed in chunks (numpy: about 1 GB/s; no loop over lines)."""

    def __init__(self) -> None:
        self.longest, self.run, self.size = 0, 0, 0

    def feed(self, chunk: bytes) -> None:
        import numpy as np

        self.size += len(chunk)
        ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
        if len(ends) == 0:
            self.run += len(chunk)
            return
        first = self.run + int(ends[0])
        inner = int(np.diff(ends).max()) - 1 if len(ends) > 1 else 0
        self.longest = max(self.longest, first, inner)
        self.run = len(chunk) - 1 - int(ends[-1])

    def done(self) -> int:
        return max(self.longest, self.run)


def scan(path: Path, max_uncompressed: int | None = None) -> Scan:
    """Hash the file and measure its longest line in one read (a gzip file's lines inflated as
    they stream; past ``max_uncompressed`` bytes it stops inflating and says so)."""
    h = hashlib.sha256()
    lines = _Lines()
    inflate = zlib.decompressobj(wbits=47) if path.name.lower().endswith(".gz") else None
    measuring, past, last = True, None, b""
    version = file_version(path)  # taken before reading: a change during the scan shows too
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            last = chunk[-1:]
            if not measuring:
                continue
            if inflate is None:
                lines.feed(chunk)
                continue
            try:
                while chunk:
                    # at most 16 MB out per step: a small chunk can inflate a thousandfold
                    lines.feed(inflate.decompress(chunk, 16 << 20))
                    chunk = inflate.unconsumed_tail
                    if inflate.eof and inflate.unused_data:  # another gzip member follows
                        chunk, inflate = inflate.unused_data, zlib.decompressobj(wbits=47)
                    if max_uncompressed is not None and lines.size > max_uncompressed:
                        measuring, past = False, max_uncompressed
                        break
            except zlib.error:
                measuring = False  # corrupt: the reader says so, for the whole file
    if measuring and inflate is not None:
        with contextlib.suppress(zlib.error):
            lines.feed(inflate.flush())  # what the last step's limit held back
    return Scan(h.hexdigest(), lines.done(), lines.size, past, inflate is not None or last in (b"", b"\n", b"\r"), version)


def file_version(path: Path) -> tuple[int, int, int]:
    """What changes when a file is rewritten or appended to: inode, size, modification time."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


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
FROM read_json_objects(?, format = 'array', maximum_object_size = {max_record})
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


# DuckDB's reader takes lines up to 2,097,152 bytes by default. A longer one made it fail a whole
# NDJSON file ("the Parallel CSV Reader currently does not support a full read") and, in a CSV
# file read with store_rejects, vanish without a word. So the longest line is measured first (in
# the same pass as the content hash, ``scan``) and a file that has a long one is read with a limit
# above it: one long record is read (and loaded or quarantined) alone. The limit is raised only
# for such a file: a large one slows reading.
_DEFAULT_LINE = 2_000_000


def _line_options(longest: int) -> str:
    if longest < _DEFAULT_LINE:
        return ""
    # a buffer of about one line failed the NDJSON read and dropped the CSV line (measured on a
    # 31 MB line); twice the line read both whole: three times leaves room
    limit = longest + 4096
    return f", max_line_size = {limit}, buffer_size = {3 * limit}"


@contextlib.contextmanager
def _gzip_faults():
    """A gzip stream cut short or corrupt is the file's fault: it is quarantined whole."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnreadableFile(f"the gzip stream is truncated or corrupt ({exc})") from None


def _set_aside_long_lines(path: Path, longest: int, max_record: int, folder: Path) -> tuple[Path, list[tuple[int, str, str]]]:
    """An NDJSON file with records over ``max_record`` bytes: a copy with each such line blanked
    (line numbers kept), and a quarantine row for each. Only for that rare file: a Python pass."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    target, rejected = folder / "input.jsonl", []
    with opener(path, "rb") as src, open(target, "wb") as dst, _gzip_faults():
        for number, line in enumerate(src, start=1):
            if len(line.rstrip(b"\r\n")) > max_record:
                reason = (f"the record is {len(line):,} bytes, more than [ingest] max_record_bytes ({max_record:,}): "
                          "not loaded (raise the setting if such records are genuine)")
                rejected.append((number, reason, line[:200].decode("utf-8", "replace") + "…"))
                dst.write(b"\n")
            else:
                dst.write(line)
    return target, rejected


def read_lines(con: duckdb.DuckDBPyConnection, f: InputFile, delimiter: str = ",", longest: int | None = None,
               max_record: int = 64 << 20, ended: bool | None = None) -> list[tuple[int, str, str]]:
    """Fill ``_lines`` from the file. Returns the rows the reader itself rejected or held back:
    (line, reason, raw). ``delimiter``: of a CSV file (a source mapping's; the contract's is a
    comma); ``longest``: the file's longest line (``scan``), measured here when not given;
    ``max_record``: a longer record is quarantined alone (NDJSON), or the file (CSV, JSON array);
    ``ended``: whether the file ended with a line end when it was hashed (``scan``; taken from the
    file when not given): the last line of a file that did not is held back.

    Raises UnreadableFile when nothing of the file can be read.
    """
    if ended is None:
        ended = _ends_with_line_break(f.path)
    if f.fmt == "array":  # one line may be the whole file: records are bounded as objects instead
        longest = 0
    elif longest is None:
        longest = scan(f.path).longest if f.path.stat().st_size >= _DEFAULT_LINE else 0
    set_aside: list[tuple[int, str, str]] = []
    with contextlib.ExitStack() as stack:
        if longest > max_record:
            if f.fmt != "ndjson":
                raise UnreadableFile(f"a record is {longest:,} bytes, more than [ingest] max_record_bytes ({max_record:,}): "
                                     "not read (raise the setting if such records are genuine)")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loanwatch-long-")))
            source, set_aside = _set_aside_long_lines(f.path, longest, max_record, folder)
            f = InputFile(source, f.entity, f.fmt)
            longest = max_record
        return set_aside + _read(con, f, delimiter, longest, max_record, ended)


def _read(con: duckdb.DuckDBPyConnection, f: InputFile, delimiter: str, longest: int, max_record: int,
          ended: bool) -> list[tuple[int, str, str]]:
    # Lines are numbered by position in _text (rowid), which needs the file's order kept.
    con.execute("SET preserve_insertion_order = true")
    options = _line_options(longest)
    try:
        with engine_path(f.path) as path:
            if f.fmt in ("ndjson", "array"):
                if f.fmt == "ndjson":
                    con.execute(_NDJSON.format(long_lines=options), [path])
                    held = _hold_back_unended(con, ended, "SELECT rowid + 1, raw FROM _text WHERE rowid = (SELECT max(rowid) FROM _text)",
                                              "DELETE FROM _text WHERE rowid = (SELECT max(rowid) FROM _text)")
                else:
                    con.execute(_ARRAY.format(max_record=int(max_record)), [path])
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
                rows = _read_csv(con, path, delimiter, options)
                if rows and not options and f.path.stat().st_size >= _DEFAULT_LINE:
                    # a record can span lines (a quoted value with line breaks): longer than the
                    # reader's limit, it breaks into rows that each miss columns. Read again with
                    # room for any record up to max_record; keep that reading if it rejects fewer.
                    roomy = _read_csv(con, path, delimiter, _line_options(max_record))
                    if len(roomy) < len(rows):
                        rows = roomy
                    else:
                        rows = _read_csv(con, path, delimiter, options)
                rejected = [(int(line), _malformed(kind), raw) for line, kind, raw in rows]
                # the last record, unless the reader rejected it already (a quote left open)
                last = "(SELECT max(line_no) FROM _text) AND line_no > (SELECT coalesce(max(line), 0) FROM _csv_reject_errors)"
                held = _hold_back_unended(con, ended, f"SELECT line_no, raw FROM _text WHERE line_no = {last}",
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


def _read_csv(con: duckdb.DuckDBPyConnection, path: str, delimiter: str, options: str) -> list[tuple]:
    """Read a CSV file into ``_text`` (line-numbered rows as JSON); the rows the reader rejected."""
    con.execute("DROP TABLE IF EXISTS _csv_reject_errors; DROP TABLE IF EXISTS _csv_reject_scans")
    con.execute(_CSV.format(long_lines=options), [path, delimiter])
    con.execute(_CSV_LINES)
    return con.execute(
        """SELECT line, string_agg(DISTINCT error_type, ', '), any_value(csv_line)
           FROM _csv_reject_errors GROUP BY line ORDER BY line"""
    ).fetchall()


def _hold_back_unended(con: duckdb.DuckDBPyConnection, ended: bool, last_sql: str, delete_sql: str) -> list[tuple[int, str, str]]:
    """A CSV or NDJSON file whose last line has no line end is still being written, or was cut:
    that line is never loaded (a cut amount would load as another number), but kept in the
    quarantine with its reason; the rest of the file loads. The finished file has another
    content hash, so the next run reads it again: the rows loaded now are duplicates then.
    ``ended`` is taken in the pass that hashed the file, so it speaks of the bytes recorded."""
    if ended:
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
