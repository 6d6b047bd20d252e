"""Source mappings: other systems' files loaded through a small TOML file, with no code.

A mapping (docs/mappings.md) says, for each kind of source file (``[[files]]``, chosen by a glob
on the file's name), which contract entity its rows are, how the file is encoded and written,
and which source column (or constant, or small conversion) gives each contract field. Loading a
mapped file is the contract's own load: the file is read into ``_lines`` as today (one JSON
object per record, keyed by the source's column names), ``mapped_sql`` turns every record into a
contract record in one set-based query, and the contract's validation, deduplication and
quarantine follow unchanged, with the source file's line numbers and raw text.

Everything a mapping names (columns, formats, codes, constants) reaches the engine as a query
parameter; only contract field names, which are constants of this package, are written into SQL.
"""

from __future__ import annotations

import codecs
import datetime as dt
import fnmatch
import functools
import gzip
import hashlib
import json
import math
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import available_timezones

from loanwatch.errors import UsageProblem, environmental, first_line
from loanwatch.ingest.contract import ENTITIES, Entity, Field, shown_sql
from loanwatch.ingest.read import UnreadableFile

FILE_KEYS = ("match", "entity", "format", "encoding", "delimiter", "decimal", "thousands", "timestamp_format",
             "date_format", "timezone", "id_from", "nulls", "where", "skip_if_empty", "fields", "constants", "values")
FIELD_KEYS = ("column", "sum", "join", "separator", "convert", "format")
CONVERSIONS = ("duration", "abs")
NUMERIC_KINDS = ("amount", "decimal", "integer")


@dataclass(frozen=True)
class Source:
    """How one contract field is made from a source record."""

    column: str | None = None  # the source column
    sum: tuple[str, ...] = ()  # or the sum of these columns
    join: tuple[str, ...] = ()  # or these columns' texts joined by separator (the empty ones left out)
    separator: str = " "
    convert: str | None = None  # duration (H:MM:SS or M:SS to seconds) | abs (drop a leading minus)
    format: str | None = None  # strptime format of this field, instead of date_format/timestamp_format

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column is not None else self.sum or self.join

    def describe(self) -> str:
        if self.column is not None:
            return self.column
        return " + ".join(self.sum) if self.sum else ", ".join(self.join)


@dataclass(frozen=True)
class FileMapping:
    """One ``[[files]]`` table."""

    where: str  # files[i], for messages
    match: str
    entity: Entity
    format: str | None = None  # csv | json | ndjson; None: told by the file's suffix, as in the contract
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: str = ""
    timestamp_format: str | None = None
    date_format: str | None = None
    timezone: str | None = None
    id_from: tuple[str, ...] = ()
    nulls: tuple[str, ...] = ("",)
    keep: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the `where` key
    skip_if_empty: tuple[str, ...] = ()
    fields: dict[str, Source] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    digest: str = ""
    context: str = ""  # [[files]] #N, match "…": which table, for messages

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatchcase(path.name, self.match)

    @property
    def columns(self) -> list[str]:
        """Every source column this table reads, in a stable order."""
        out: list[str] = []
        for name in ([c for s in self.fields.values() for c in s.columns] + list(self.id_from) + list(self.keep)
                     + list(self.skip_if_empty)):
            if name not in out:
                out.append(name)
        return out

    def column_of(self, name: str) -> str:
        """What a reason names as the source of contract field ``name``."""
        if name in self.fields:
            return "column " + self.fields[name].describe()
        if name in self.constants:
            return "constant"
        if name == self.entity.key and self.id_from:
            return "id_from " + ", ".join(self.id_from)
        return ""

    def format_of(self, path: Path) -> str | None:
        """How to read the file: the mapping's format, or the contract's rule on its suffix."""
        from loanwatch.ingest.read import format_of

        if self.format == "json":
            return "array"
        return self.format or format_of(path)


@dataclass(frozen=True)
class Mapping:
    path: Path
    files: tuple[FileMapping, ...]

    def for_file(self, path: Path) -> list[FileMapping]:
        return [m for m in self.files if m.matches(path)]


def _problem(mapping: Path, key: str, what: str) -> UsageProblem:
    return UsageProblem(f"{mapping}: {key}: {what}")


def _kind(value: object) -> str:
    """What a TOML value is, in TOML's words, for 'expected …, not …'."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({json.dumps(value, ensure_ascii=False)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dt.time):
        return "a time"
    return type(value).__name__  # pragma: no cover - TOML has no other types


@functools.cache
def _time_zones() -> frozenset[str]:
    """IANA zone names both Python (zoneinfo) and the engine know. zoneinfo lists every file of
    the system's zone folder, which can hold ``localtime`` (a link to this machine's zone, not a
    name): the engine refuses it, so a mapping naming it is refused when it is read."""
    import duckdb

    con = duckdb.connect()
    try:
        engine = {name for (name,) in con.execute("SELECT name FROM pg_timezone_names()").fetchall()}
    finally:
        con.close()
    return frozenset(available_timezones() & engine)


@functools.cache
def _format_error(fmt: str) -> str | None:
    """Why the engine's strptime refuses a format (an unknown directive such as %Q, a trailing %),
    or None: the format is tried on a sample in memory, as the load would use it."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SELECT try_strptime('x', ?)", [fmt]).fetchall()
    except duckdb.Error as exc:
        text = first_line(exc)  # "Invalid Input Error: Failed to parse format specifier %Q: Unrecognized format …"
        why = text.split(f"{fmt}: ", 1)[-1] if f"{fmt}: " in text else text
        return why[:1].lower() + why[1:]
    finally:
        con.close()
    return None


class _Table:
    """The checks of one ``[[files]]`` table: every wrong value is one usage line naming the file,
    the key (``files[0].where``), what the key takes, and the table (``[[files]] #1, match "…"``)."""

    def __init__(self, path: Path, i: int, t: object) -> None:
        self.path = path
        self.at = f"files[{i}]"
        match = t.get("match") if isinstance(t, dict) else None
        self.context = f"[[files]] #{i + 1}" + (f", match {json.dumps(match, ensure_ascii=False)}"
                                                if isinstance(match, str) else "")

    def problem(self, key: str, what: str) -> UsageProblem:
        return UsageProblem(f"{self.path}: {key}: {what} ({self.context})")

    def wrong(self, key: str, takes: str, value: object) -> UsageProblem:
        hint = ""
        if isinstance(value, int | float) and not isinstance(value, bool) and "string" in takes:
            hint = f' (quote it, "{value}", if that text is meant)'
        return self.problem(key, f"expected {takes}, not {_kind(value)}{hint}")

    def text(self, key: str, value: object, takes: str = "a string") -> str:
        if not isinstance(value, str):
            raise self.wrong(key, takes, value)
        return value

    def texts(self, key: str, value: object, takes: str, empty: bool = True) -> tuple[str, ...]:
        """A string, or a list of strings (``empty``: the list may be empty)."""
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            bad = next((v for v in value if not isinstance(v, str)), value) if isinstance(value, list) else value
            raise self.wrong(key, takes, bad)
        if not value and not empty:
            raise self.problem(key, f"an empty list; expected {takes}")
        return tuple(value)

    def table(self, key: str, value: object, takes: str) -> dict:
        if not isinstance(value, dict):
            raise self.wrong(key, takes, value)
        return value

    def constant(self, key: str, value: object, takes: str) -> str:
        """A contract value: a string, a number, a boolean (true/false), or a date or date-time."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and not math.isfinite(value):
            raise self.problem(key, f"expected {takes}, not {value} (a number the contract cannot hold)")
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dt.date):  # also a date-time: ISO 8601, with its offset when it has one
            return value.isoformat()
        raise self.wrong(key, takes, value)

    def strptime(self, key: str, value: object) -> str:
        fmt = self.text(key, value, 'a strptime format such as "%m/%d/%Y" (a string)')
        if "%" not in fmt:
            raise self.problem(key, f'a strptime format such as "%m/%d/%Y" (it has no %): {fmt!r}')
        if why := _format_error(fmt):
            raise self.problem(key, f"{fmt!r} is not a strptime format the engine reads ({why}); use its "
                                    "directives, such as %Y %m %d %H %M %S %y %b")
        return fmt


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; any mistake is a UsageProblem naming its key."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such mapping file") from None
    except IsADirectoryError:
        raise UsageProblem(f"{path}: a folder, not a mapping file (a TOML file, docs/mappings.md)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: not a valid TOML file: {exc}") from None
    unknown = [k for k in data if k != "files"]
    if unknown:
        raise _problem(path, unknown[0], "unknown key (a mapping has only [[files]] tables)")
    tables = data.get("files")
    if isinstance(tables, dict):
        raise _problem(path, "files", "expected [[files]] tables (an array of tables: write [[files]], with two "
                                      "brackets), not a single [files] table")
    if tables is not None and not isinstance(tables, list):
        raise _problem(path, "files", f"expected [[files]] tables (one per kind of source file), not {_kind(tables)}")
    if not tables:
        raise _problem(path, "files", "no [[files]] table: add one per kind of source file")
    return Mapping(Path(path), tuple(_file_mapping(path, i, t) for i, t in enumerate(tables)))


def _file_mapping(path: Path, i: int, t: object) -> FileMapping:
    c = _Table(path, i, t)
    at = c.at
    if not isinstance(t, dict):
        raise c.wrong(at, "a [[files]] table (match, entity, fields, …)", t)
    for key in t:
        if key not in FILE_KEYS:
            raise c.problem(f"{at}.{key}", "unknown key; the keys are " + ", ".join(FILE_KEYS))
    for key in ("match", "entity"):
        if key not in t:
            raise c.problem(f"{at}.{key}", "missing")
    match = c.text(f"{at}.match", t["match"], 'a glob on the file\'s name (a string such as "Llamadas_*.csv")')
    if not match:
        raise c.problem(f"{at}.match", 'empty: give a glob on the file\'s name, such as "Llamadas_*.csv"')
    entity = ENTITIES.get(c.text(f"{at}.entity", t["entity"], "an entity name (a string): " + ", ".join(ENTITIES)))
    if entity is None:
        raise c.problem(f"{at}.entity", f"unknown entity {t['entity']!r}; use one of {', '.join(ENTITIES)}")
    names = {f.name: f for f in entity.fields}

    def known_field(key: str, name: str) -> Field:
        if name not in names:
            raise c.problem(key, f"{entity.name} has no field {name!r}; its fields are {', '.join(names)}")
        return names[name]

    file_format = t.get("format")
    if file_format is not None and (not isinstance(file_format, str) or file_format not in ("csv", "json", "ndjson")):
        raise c.problem(f"{at}.format", 'must be "csv", "json" (an array) or "ndjson"'
                        + ("" if isinstance(file_format, str) else f", not {_kind(file_format)}"))
    encoding = c.text(f"{at}.encoding", t.get("encoding", "utf-8"), "a Python codec name (a string such as \"latin-1\")")
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise c.problem(f"{at}.encoding", f"unknown encoding {encoding!r} (a Python codec name such as latin-1 or cp1251)") from None
    if not getattr(codec, "_is_text_encoding", True) or codec.name == "undefined":
        raise c.problem(f"{at}.encoding", f"{encoding!r} is a Python codec but not a text encoding (it does not turn "
                                          "bytes into text); use one such as utf-8, latin-1, cp1251 or utf-16")
    delimiter = c.text(f"{at}.delimiter", t.get("delimiter", ","), 'one character (a string such as "," or ";")')
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise c.problem(f"{at}.delimiter", "must be one character (not a quote or a line end), e.g. \",\" or \";\"")
    decimal = t.get("decimal", ".")
    if decimal not in (".", ",") or not isinstance(decimal, str):
        raise c.problem(f"{at}.decimal", 'must be "." or ","' + ("" if isinstance(decimal, str) else f", not {_kind(decimal)}"))
    thousands = c.text(f"{at}.thousands", t.get("thousands", ""), 'one character (a string such as "." or " ")')
    if thousands == decimal or len(thousands) > 1 or thousands.isdigit():
        raise c.problem(f"{at}.thousands", "must be one character other than the decimal separator and the digits, or empty")
    timezone = t.get("timezone")
    if timezone is not None and c.text(f"{at}.timezone", timezone, "an IANA time zone name (a string such as "
                                       '"America/Mexico_City")') not in _time_zones():
        raise c.problem(f"{at}.timezone", f"{timezone!r} is not an IANA time zone (e.g. America/Mexico_City, "
                                          "Europe/Moscow, UTC)")
    formats = {key: c.strptime(f"{at}.{key}", t[key]) for key in ("timestamp_format", "date_format") if key in t}

    fields: dict[str, Source] = {}
    raw_fields = c.table(f"{at}.fields", t.get("fields", {}), "a table: contract field = source column")
    for name, spec in raw_fields.items():
        key = f"{at}.fields.{name}"
        known_field(key, name)
        if isinstance(spec, str):
            fields[name] = Source(column=spec)
            continue
        if not isinstance(spec, dict):
            raise c.wrong(key, "a column name (a string), or a table with column, sum or join", spec)
        for k in spec:
            if k not in FIELD_KEYS:
                raise c.problem(f"{key}.{k}", "unknown key; the keys are " + ", ".join(FIELD_KEYS))
        if sum(k in spec for k in ("column", "sum", "join")) != 1:
            raise c.problem(key, "give exactly one of column, sum and join")
        convert = spec.get("convert")
        if convert is not None and (not isinstance(convert, str) or convert not in CONVERSIONS):
            raise c.problem(f"{key}.convert", f"unknown conversion {convert!r}; use one of {', '.join(CONVERSIONS)}")
        fmt = c.strptime(f"{key}.format", spec["format"]) if "format" in spec else None
        columns = "a list of column names (strings), at least one"
        fields[name] = Source(
            column=c.text(f"{key}.column", spec["column"], "a column name (a string)") if "column" in spec else None,
            sum=c.texts(f"{key}.sum", spec["sum"], columns, empty=False) if "sum" in spec else (),
            join=c.texts(f"{key}.join", spec["join"], columns, empty=False) if "join" in spec else (),
            separator=c.text(f"{key}.separator", spec.get("separator", " "), 'a string such as " " or "/"'),
            convert=convert, format=fmt)

    constants: dict[str, str] = {}
    takes = "a contract value (a string, a number, true or false, or a date)"
    for name, value in c.table(f"{at}.constants", t.get("constants", {}), "a table: contract field = constant").items():
        key = f"{at}.constants.{name}"
        known_field(key, name)
        if name in fields:
            raise c.problem(key, "given both as a field and as a constant")
        constants[name] = c.constant(key, value, takes)

    values: dict[str, dict[str, str]] = {}
    for name, table in c.table(f"{at}.values", t.get("values", {}),
                               "[files.values.FIELD] tables: a field's source code = contract value").items():
        key = f"{at}.values.{name}"
        known_field(key, name)
        table = c.table(key, table, "a table: source code = contract value")
        values[name] = {str(k): c.constant(f"{key}.{k}", v, takes) for k, v in table.items()}

    columns = "a column name or a list of column names (strings)"
    id_from = c.texts(f"{at}.id_from", t["id_from"], columns + ", at least one", empty=False) if "id_from" in t else ()
    if id_from and (entity.key in fields or entity.key in constants):
        raise c.problem(f"{at}.id_from", f"{entity.key} is also given in fields or constants: give one")
    keep = {}
    where = c.table(f"{at}.where", t.get("where", {}),
                    'a table: column = the value to keep, or a list of them (where = { status = ["paid", "late"] })')
    for column, allowed in where.items():
        keep[str(column)] = c.texts(f"{at}.where.{column}", allowed,
                                    "the value to keep (a string) or a list of them, at least one", empty=False)
    for f in entity.fields:
        given = f.name in fields or f.name in constants or (f.name == entity.key and id_from)
        if f.required and not given:
            raise c.problem(f"{at}.fields", f"{entity.name} needs {f.name}: map it to a column "
                            f"(fields.{f.name}), give a constant" + (", or use id_from" if f.name == entity.key else ""))
    nulls = c.texts(f"{at}.nulls", t["nulls"], 'a list of texts that mean no value (strings, e.g. ["", "NA"])') \
        if "nulls" in t else ("",)
    skip_if_empty = c.texts(f"{at}.skip_if_empty", t["skip_if_empty"], columns) if "skip_if_empty" in t else ()
    digest = hashlib.sha256(json.dumps(t, sort_keys=True, default=str).encode()).hexdigest()
    return FileMapping(at, match, entity, file_format, encoding, delimiter, decimal, thousands,
                       formats.get("timestamp_format"), formats.get("date_format"),
                       timezone, id_from, nulls, keep, skip_if_empty, fields, constants, values, digest, c.context)


def check_columns(mapping: Mapping, fm: FileMapping, path: Path, columns: list[str]) -> None:
    """A column the mapping reads that the file does not have is a usage error naming the key."""
    have = set(columns)
    context = f" ({fm.context})" if fm.context else ""
    for name, source in fm.fields.items():
        for column in source.columns:
            if column not in have:
                raise _problem(mapping.path, f"{fm.where}.fields.{name}",
                               f"column {column!r} is not in {path.name} (its columns: {', '.join(columns)}){context}")
    for key, names in ((f"{fm.where}.id_from", fm.id_from), (f"{fm.where}.where", tuple(fm.keep)),
                       (f"{fm.where}.skip_if_empty", fm.skip_if_empty)):
        for column in names:
            if column not in have:
                raise _problem(mapping.path, key,
                               f"column {column!r} is not in {path.name} (its columns: {', '.join(columns)}){context}")


@contextmanager
def as_utf8(path: Path, encoding: str) -> Iterator[Path]:
    """The file, or a UTF-8 copy of it when it is in another encoding (decoded in 1 MB blocks by
    Python's codec; the engine reads only UTF-8). Line breaks are kept, so line numbers are too."""
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="loanwatch-utf8-"))
    suffix = "".join(s for s in path.suffixes if s.lower() != ".gz")
    target = folder / ("input" + suffix)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        try:
            with opener(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
                reader = codecs.getreader(encoding)(src, errors="strict")
                shutil.copyfileobj(reader, dst, 1 << 20)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"the file is not valid {encoding} (byte {exc.start} of a block: {exc.reason}); "
                                 "check the mapping's encoding") from None
        except (OSError, EOFError) as exc:
            if environmental(exc):  # a full temp folder is not the file's fault
                raise
            raise UnreadableFile(f"cannot read the file: {exc}") from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the mapping query ------------------------------------------------------------------------

_HAS_OFFSET = r"[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*([+-][0-9]{2}(:?[0-9]{2})?|[Zz])$"
_ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def _pointer(column: str) -> str:
    """A JSON pointer to a top-level key (RFC 6901: ~ and / escaped)."""
    return "/" + column.replace("~", "~0").replace("/", "~1")


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def __call__(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def mapped_sql(fm: FileMapping) -> tuple[str, dict[str, object]]:
    """One query over ``_lines(line_no, raw)`` giving, for every kept source record, the contract
    record ``doc`` (JSON text) and the first conversion that failed (``map_field``,
    ``map_error``), with ``keep`` false for records the mapping's ``where`` leaves out."""
    p = _Params()
    columns = fm.columns
    slot = {c: f"s{i}" for i, c in enumerate(columns)}
    nulls = p(list(fm.nulls))
    texts = ",\n        ".join(
        f"CASE WHEN list_contains({nulls}, trim(c[{i + 1}])) THEN NULL ELSE trim(c[{i + 1}]) END AS {slot[c]}"
        for i, c in enumerate(columns))
    keep = " AND ".join([f"coalesce(list_contains({p(list(v))}, {slot[c]}), false)" for c, v in fm.keep.items()]
                        + [f"{slot[c]} IS NOT NULL" for c in fm.skip_if_empty]) or "true"

    docs: list[str] = []
    errors: list[tuple[str, str, str]] = []  # (field, condition, reason)
    for f in fm.entity.fields:
        expr = None
        if f.name in fm.constants:
            expr = p(fm.constants[f.name])
        elif f.name == fm.entity.key and fm.id_from:
            parts = ", ".join(slot[c] for c in fm.id_from)
            expr = f"left(sha256(to_json([{parts}])::VARCHAR), 24)"
        elif f.name in fm.fields:
            expr = _field_expr(fm, f, fm.fields[f.name], slot, p, errors)
        if expr is not None:
            docs.append(f"'{f.name}', {expr}")
    doc = f"json_object({', '.join(docs)})::VARCHAR" if docs else "'{}'"
    conditions = [("NULL", "NOT coalesce(json_valid(raw), false)", "'not valid JSON'"),
                  ("NULL", "json_type(raw) <> 'OBJECT'", "'record is not a JSON object'")]
    conditions += [(f"'{n}'", c, r) for n, c, r in errors]
    map_field = "CASE " + " ".join(f"WHEN {c} THEN {n}" for n, c, _ in conditions) + " END"
    map_error = "CASE " + " ".join(f"WHEN {c} THEN {r}" for _, c, r in conditions) + " END"
    pointers = p([_pointer(c) for c in columns]) if columns else "[]::VARCHAR[]"
    sql = f"""
WITH src AS (
    SELECT line_no, raw, CASE WHEN json_valid(raw) THEN json_extract_string(raw, {pointers}) END AS c FROM _lines
), texts AS (
    SELECT line_no, raw{"," if columns else ""}
        {texts}
    FROM src
)
SELECT line_no, raw, {keep} AS keep,
    CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN {doc} END AS doc,
    {map_field} AS map_field,
    {map_error} AS map_error
FROM texts
"""
    return sql, p.values


def _field_expr(fm: FileMapping, f: Field, source: Source, slot: dict[str, str], p: _Params,
                errors: list[tuple[str, str, str]]) -> str:
    """The contract text of field f, and (into ``errors``) the conversions that can fail."""
    numeric = f.kind in NUMERIC_KINDS

    def number(x: str) -> str:
        if fm.thousands:
            x = f"replace({x}, {p(fm.thousands)}, '')"
        if fm.decimal != ".":
            x = f"replace({x}, {p(fm.decimal)}, '.')"
        return x

    if source.sum:
        parts = [number(slot[c]) for c in source.sum]
        bad = " OR ".join(f"({x} IS NOT NULL AND TRY_CAST({x} AS DECIMAL(38,18)) IS NULL)" for x in parts)
        shown = " || ' + ' || ".join(f"coalesce({slot[c]}, '')" for c in source.sum)
        errors.append((f.name, bad, f"format('{f.name} \"{{}}\" is not a sum of numbers', {shown})"))
        total = " + ".join(f"coalesce(TRY_CAST({x} AS DECIMAL(38,18)), 0)" for x in parts)
        present = " OR ".join(f"{x} IS NOT NULL" for x in parts)
        x = f"CASE WHEN {present} THEN CAST({total} AS VARCHAR) END"
    elif source.join:
        x = f"nullif(concat_ws({p(source.separator)}, {', '.join(slot[c] for c in source.join)}), '')"
    else:
        x = slot[source.column]
        if f.name in fm.values:
            cases = " ".join(f"WHEN {p(k)} THEN {p(v)}" for k, v in fm.values[f.name].items())
            x = f"CASE {x} {cases} ELSE {x} END"
        if numeric:
            x = number(x)
    if source.convert == "abs":
        x = f"regexp_replace({x}, '^-\\s*', '')"
    elif source.convert == "duration":
        ok = f"regexp_full_match({x}, '[0-9]+(:[0-9]{{1,2}}){{0,2}}')"
        errors.append((f.name, f"{x} IS NOT NULL AND NOT {ok}",
                       f"format('{f.name} \"{{}}\" is not a duration (H:MM:SS, M:SS or seconds)', {shown_sql(x)})"))
        seconds = (f"list_reduce(list_transform(string_split({x}, ':'), lambda v: TRY_CAST(v AS BIGINT)), "
                   f"lambda a, b: a * 60 + b)")
        x = f"CASE WHEN {ok} THEN CAST({seconds} AS VARCHAR) END"
    if f.kind in ("date", "timestamp"):
        fmt = source.format or (fm.date_format if f.kind == "date" else fm.timestamp_format)
        key = "format" if source.format else ("date_format" if f.kind == "date" else "timestamp_format")
        if fmt is not None:
            parsed = f"try_strptime({x}, {p(fmt)})"
            errors.append((f.name, f"{x} IS NOT NULL AND {parsed} IS NULL",
                           f"format('{f.name} \"{{}}\" does not match {key} \"{{}}\"', {shown_sql(x)}, {p(fmt)})"))
            if f.kind == "date":
                return f"strftime(CAST({parsed} AS DATE), '%Y-%m-%d')"
            if fm.timezone:
                return f"strftime(timezone('UTC', timezone({p(fm.timezone)}, {parsed})), {_ISO})"
            return f"strftime({parsed}, {_ISO})"
        if f.kind == "timestamp" and fm.timezone:
            local = f"TRY_CAST({x} AS TIMESTAMP)"
            return (f"CASE WHEN regexp_matches({x}, '{_HAS_OFFSET}') OR {local} IS NULL THEN {x} "
                    f"ELSE strftime(timezone('UTC', timezone({p(fm.timezone)}, {local})), {_ISO}) END")
    return x
