"""Source mappings: other systems' files loaded through a small TOML file, with no code.

A mapping (docs/mappings.md) says, for each kind of source file (``[[files]]``, chosen by a glob
on the file's name), which contract entity its rows are, how the file is encoded and written,
and which source column (or constant, small conversion, exact arithmetic over columns, or code
table in another file of the export) gives each contract field, and which rows it keeps. Loading a
mapped file is the contract's own load: the file is read into ``_lines`` as today (one JSON
object per record, keyed by the source's column names), ``mapped_sql`` turns every record into a
contract record in one set-based query, and the contract's validation, deduplication and
quarantine follow unchanged, with the source file's line numbers and raw text.

Everything a mapping names (columns, formats, codes, constants) reaches the engine as a query
parameter; only contract field names, which are constants of this package, are written into SQL.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import decimal
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
             "date_format", "timezone", "id_from", "nulls", "where", "where_not", "where_empty", "where_not_empty",
             "skip_if_empty", "fields", "lookups", "constants", "values")
FIELD_KEYS = ("column", "first", "sum", "minus", "multiply", "divide", "join", "separator", "convert", "format",
              "default")
LOOKUP_KEYS = ("file", "key", "value", "column", "where", "pick", "missing")
PICKS = ("max", "min")  # a code table's key on several rows: the greatest or least value (as text)
MISSING = ("quarantine", "empty")  # a source value the code table lacks: quarantined, or no value
CONVERSIONS = ("duration", "abs")
NUMERIC_KINDS = ("amount", "decimal", "integer")
# A field's arithmetic is exact: every operand is read as DECIMAL(38,18) (20 digits before the
# point, 18 after), and a scale (multiply, divide) is worked in whole numbers of 10^-18 and
# rounded half away from zero at the 18th decimal; the contract then rounds to its own places.
SCALE = 18


@dataclass(frozen=True)
class Lookup:
    """A code table in another file of the same export (``[files.lookups.FIELD]``): the field is
    the ``value`` column of the row whose ``key`` column equals the source column's text."""

    file: str  # a file name, found beside the source file
    key: str
    value: str
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # only the code table's rows whose column has one of these texts
    pick: str | None = None  # max | min: a key on several rows takes the greatest (least) value, compared as text
    missing: str = "quarantine"  # quarantine | empty: a source value with no row gives no value


@dataclass(frozen=True)
class Scale:
    """A field's number times ``times`` / ``per`` (whole numbers): ``multiply = 0.01`` is 1/100,
    ``divide = 12`` is 1/12. ``text`` is how the mapping wrote it, for reasons."""

    times: int
    per: int
    text: str


@dataclass(frozen=True)
class Source:
    """How one contract field is made from a source record."""

    column: str | None = None  # the source column
    first: tuple[str, ...] = ()  # or the first of these columns that has a value
    sum: tuple[str, ...] = ()  # or the sum of these columns
    minus: tuple[str, ...] = ()  # less these columns (with sum)
    join: tuple[str, ...] = ()  # or these columns' texts joined by separator (the empty ones left out)
    separator: str = " "
    convert: str | None = None  # duration (H:MM:SS or M:SS to seconds) | abs (drop a leading minus)
    format: str | None = None  # strptime format of this field, instead of date_format/timestamp_format
    scale: Scale | None = None  # multiply or divide the number by a constant
    lookup: Lookup | None = None  # translate the column's text through a code table (lookups)
    default: str | None = None  # the contract text when the source gives no value (a constant)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column is not None else self.first or (self.sum + self.minus) or self.join

    def describe(self) -> str:
        """The source as a reason names it: ``column Monto``, ``columns a + b - c``, ``column rate / 100``."""
        if self.column is not None:
            text = self.column
        elif self.first:
            text = ", else ".join(self.first)
        elif self.sum:
            text = " + ".join(self.sum) + "".join(f" - {c}" for c in self.minus)
        else:
            text = ", ".join(self.join)
        if self.scale is not None:
            text += f" {self.scale.text}"
        return ("columns " if len(self.columns) > 1 else "column ") + text


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
    drop: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the `where_not` key
    where_empty: tuple[str, ...] = ()
    where_not_empty: tuple[str, ...] = ()
    skip_if_empty: tuple[str, ...] = ()  # the older name of where_not_empty
    fields: dict[str, Source] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    digest: str = ""
    context: str = ""  # [[files]] #N, match "…": which table, for messages
    lookup_tables: dict[str, str] = field(default_factory=dict)  # field -> its code table's temp table (read_lookups)

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatchcase(path.name, self.match)

    @property
    def columns(self) -> list[str]:
        """Every source column this table reads, in a stable order."""
        out: list[str] = []
        for name in ([c for s in self.fields.values() for c in s.columns] + list(self.id_from) + list(self.keep)
                     + list(self.drop) + list(self.where_empty) + list(self.where_not_empty) + list(self.skip_if_empty)):
            if name not in out:
                out.append(name)
        return out

    def column_of(self, name: str) -> str:
        """What a reason names as the source of contract field ``name``."""
        if name in self.fields:
            return self.fields[name].describe()
        if name in self.constants:
            return "constant"
        if name == self.entity.key and self.id_from:
            return "id_from " + ", ".join(self.id_from)
        return ""

    @property
    def lookups(self) -> dict[str, Lookup]:
        """field -> its code table."""
        return {name: s.lookup for name, s in self.fields.items() if s.lookup is not None}

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

    def lookup_files(self) -> set[str]:
        """The names of the code tables the tables read (read with the files they translate)."""
        return {lk.file for fm in self.files for lk in fm.lookups.values()}

    def overlap(self, path: Path) -> str | None:
        """Why a file matched by tables of different entities through different globs looks like an
        accident (``m_loan*.csv`` also catches ``m_loan_transaction.csv``), or None. Tables that
        give the same ``match`` read one file as several entities on purpose; several tables of one
        entity only load the same records twice (duplicates)."""
        tables = [(i + 1, t) for i, t in enumerate(self.files) if t.matches(path)]
        if not any(a.entity != b.entity and a.match != b.match for _, a in tables for _, b in tables):
            return None
        shown = [f"#{n} ({t.entity.name}, match {json.dumps(t.match, ensure_ascii=False)})" for n, t in tables]
        entities = list(dict.fromkeys(t.entity.name for _, t in tables))
        return (f"matched by [[files]] {', '.join(shown[:-1])} and {shown[-1]} of {self.path.name}: it is read as "
                f"{' and as '.join(entities)}; make match exact (a plain file name, without * ? or [, matches only "
                "that file), or give the tables that read one file as several entities the same match")


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

    def scale(self, key: str, value: object, divide: bool) -> Scale:
        """A constant to multiply or divide a number by: a TOML number, exact as written."""
        takes = "a number (not quoted), such as 100 or 0.01"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong(key, takes, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.problem(key, f"expected {takes}, not {value}")
        exact = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        if exact == 0:
            raise self.problem(key, "division by zero: divide by a number other than 0" if divide else
                               "multiply = 0 makes every value 0: give the field a constant instead")
        sign, digits, exponent = exact.as_tuple()
        whole = int("".join(map(str, digits)))
        top, bottom = (whole * 10 ** exponent, 1) if exponent >= 0 else (whole, 10 ** -exponent)
        g = math.gcd(top, bottom)
        top, bottom = top // g, bottom // g
        times, per = (bottom, top) if divide else (top, bottom)
        if times * per >= 10 ** 36:
            raise self.problem(key, f"{value} has too many digits (at most 36 in all, before and after the point)")
        return Scale(-times if sign else times, per, f"{'/' if divide else '*'} {value}")

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
        kind = known_field(key, name).kind
        if isinstance(spec, str):
            fields[name] = Source(column=spec)
            continue
        if not isinstance(spec, dict):
            raise c.wrong(key, "a column name (a string), or a table with column, first, sum or join", spec)
        for k in spec:
            if k not in FIELD_KEYS:
                raise c.problem(f"{key}.{k}", "unknown key; the keys are " + ", ".join(FIELD_KEYS))
        if sum(k in spec for k in ("column", "first", "sum", "join")) != 1:
            raise c.problem(key, "give exactly one of column, first, sum and join")
        convert = spec.get("convert")
        if convert is not None and (not isinstance(convert, str) or convert not in CONVERSIONS):
            raise c.problem(f"{key}.convert", f"unknown conversion {convert!r}; use one of {', '.join(CONVERSIONS)}")
        arithmetic = [k for k in ("minus", "multiply", "divide") if k in spec]
        if arithmetic and kind not in NUMERIC_KINDS:
            raise c.problem(f"{key}.{arithmetic[0]}", f"arithmetic makes a number: {name} is not a number field "
                                                      "(an amount, a decimal or an integer)")
        if "minus" in spec and "sum" not in spec:
            raise c.problem(f"{key}.minus", 'goes with sum: { sum = ["a"], minus = ["b"] } is a - b')
        if "multiply" in spec and "divide" in spec:
            raise c.problem(key, "give one of multiply and divide")
        if ("multiply" in spec or "divide" in spec) and "join" in spec:
            raise c.problem(f"{key}.{arithmetic[-1]}", "scales a number: give it with column, first or sum, not "
                                                       "with join")
        if arithmetic and convert == "duration":
            raise c.problem(f"{key}.convert", "duration reads a column's H:MM:SS text: it does not go with "
                                              "minus, multiply or divide")
        fmt = c.strptime(f"{key}.format", spec["format"]) if "format" in spec else None
        columns = "a list of column names (strings), at least one"
        scale = next((c.scale(f"{key}.{k}", spec[k], k == "divide") for k in ("multiply", "divide") if k in spec), None)
        default = c.constant(f"{key}.default", spec["default"], "a contract value (a string, a number, true or "
                             "false, or a date)") if "default" in spec else None
        fields[name] = Source(
            column=c.text(f"{key}.column", spec["column"], "a column name (a string)") if "column" in spec else None,
            first=c.texts(f"{key}.first", spec["first"], columns, empty=False) if "first" in spec else (),
            sum=c.texts(f"{key}.sum", spec["sum"], columns, empty=False) if "sum" in spec else (),
            minus=c.texts(f"{key}.minus", spec["minus"], columns, empty=False) if "minus" in spec else (),
            join=c.texts(f"{key}.join", spec["join"], columns, empty=False) if "join" in spec else (),
            separator=c.text(f"{key}.separator", spec.get("separator", " "), 'a string such as " " or "/"'),
            convert=convert, format=fmt, scale=scale, default=default)

    example = '{ file = "m_code_value.csv", key = "id", value = "code_value", column = "gender_cv_id" }'
    for name, spec in c.table(f"{at}.lookups", t.get("lookups", {}),
                              "[files.lookups.FIELD] tables: file, key, value and column").items():
        key = f"{at}.lookups.{name}"
        known_field(key, name)
        spec = c.table(key, spec, f"a table: {example}")
        for k in spec:
            if k not in LOOKUP_KEYS:
                raise c.problem(f"{key}.{k}", "unknown key; the keys are " + ", ".join(LOOKUP_KEYS))
        for k in LOOKUP_KEYS[:4]:
            if k not in spec:
                raise c.problem(f"{key}.{k}", f"missing; a lookup is {example}")
        file = c.text(f"{key}.file", spec["file"], 'a file name (a string such as "m_code_value.csv")')
        if not file.strip() or "/" in file or "\\" in file or file in (".", ".."):
            raise c.problem(f"{key}.file", f"{file!r}: give a file name without a folder (the code table is looked "
                                           "for beside the file it translates)")
        named = {k: c.text(f"{key}.{k}", spec[k], "a column name (a string)") for k in ("key", "value", "column")}
        for k, v in named.items():
            if not v:
                raise c.problem(f"{key}.{k}", "empty: give a column name")
        if name in fields:
            raise c.problem(key, f"{name} is also given in fields: give one")
        rows = []
        for column, allowed in c.table(f"{key}.where", spec.get("where", {}), "a table: the code table's column = "
                                       'the value to keep, or a list of them (where = { status_enum = "200" })').items():
            rows.append((str(column), c.texts(f"{key}.where.{column}", allowed, "the value to keep (a string) or a "
                                              "list of them, at least one", empty=False)))
        pick = spec.get("pick")
        if pick is not None and pick not in PICKS:
            raise c.problem(f"{key}.pick", f'must be "max" or "min" (the greatest or least value of a key on several '
                                           f'rows, compared as text), not {_kind(pick)}')
        missing = spec.get("missing", "quarantine")
        if missing not in MISSING:
            raise c.problem(f"{key}.missing", 'must be "quarantine" (a value the code table lacks is quarantined) or '
                                              f'"empty" (it gives no value), not {_kind(missing)}')
        fields[name] = Source(column=named["column"], lookup=Lookup(file, named["key"], named["value"], tuple(rows),
                                                                    pick, missing))

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
    drop = {}
    where_not = c.table(f"{at}.where_not", t.get("where_not", {}),
                        'a table: column = the value to leave out, or a list of them (where_not = { status = ["void"] })')
    for column, refused in where_not.items():
        drop[str(column)] = c.texts(f"{at}.where_not.{column}", refused,
                                    "the value to leave out (a string) or a list of them, at least one", empty=False)
    columns_needed = columns + ", at least one"
    where_empty = c.texts(f"{at}.where_empty", t["where_empty"], columns_needed, empty=False) \
        if "where_empty" in t else ()
    where_not_empty = c.texts(f"{at}.where_not_empty", t["where_not_empty"], columns_needed, empty=False) \
        if "where_not_empty" in t else ()
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
                       timezone, id_from, nulls, keep, drop, where_empty, where_not_empty, skip_if_empty, fields, constants, values,
                       digest, c.context)


def check_columns(mapping: Mapping, fm: FileMapping, path: Path, columns: list[str]) -> None:
    """A column the mapping reads that the file does not have is a usage error naming the key."""
    have = set(columns)
    context = f" ({fm.context})" if fm.context else ""
    for name, source in fm.fields.items():
        for column in source.columns:
            if column not in have:
                raise _problem(mapping.path, f"{fm.where}.{'lookups' if source.lookup else 'fields'}.{name}",
                               f"column {column!r} is not in {path.name} (its columns: {', '.join(columns)}){context}")
    for key, names in ((f"{fm.where}.id_from", fm.id_from), (f"{fm.where}.where", tuple(fm.keep)),
                       (f"{fm.where}.where_not", tuple(fm.drop)), (f"{fm.where}.where_empty", fm.where_empty),
                       (f"{fm.where}.where_not_empty", fm.where_not_empty),
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


def read_lookups(con, mapping: Mapping, fm: FileMapping, path: Path, read: dict[str, str] | None = None) -> FileMapping:
    """The code tables of ``fm`` for the source file ``path``, checked and read before anything
    loads: each is the file of that name beside ``path`` (a CSV file with a header row, in the
    table's encoding and delimiter), read by the engine's CSV reader into a temp table ``(k, v)``
    with one row per key, once per connection (``read``: temp table -> content hash, shared by the
    files of one ingest). A missing file or column, or a key given two values, is a UsageProblem
    naming the key. Returns ``fm`` with its temp tables, and its digest extended by the code
    tables' contents: a changed code table (a new code) loads its files again, as a changed
    mapping does."""
    import duckdb

    from loanwatch.ingest.read import csv_header, engine_path, scan

    if not fm.lookups:
        return fm
    read = {} if read is None else read
    tables, digests = {}, []
    for name, lookup in fm.lookups.items():
        key = f"{fm.where}.lookups.{name}"

        def problem(what: str, k: str = key) -> UsageProblem:
            return _problem(mapping.path, k, f"{what} ({fm.context})")

        table_path = path.parent / lookup.file
        if not table_path.is_file():
            raise problem(f"{lookup.file} is not beside {path.name} (in {path.parent}): a code table is read from "
                          "the folder of the file it translates")
        table = "_lookup_" + hashlib.sha256(json.dumps(
            [str(table_path.resolve()), lookup.key, lookup.value, fm.encoding, fm.delimiter, lookup.where,
             lookup.pick]).encode()).hexdigest()[:16]
        if table not in read:
            try:
                with as_utf8(table_path, fm.encoding) as readable:
                    header = csv_header(readable, fm.delimiter)
                    named = [("key", lookup.key), ("value", lookup.value)]
                    for k, column in named + [(f"where.{c}", c) for c, _ in lookup.where]:
                        if column not in header:
                            raise problem(f"column {column!r} is not in {lookup.file} (its columns: {', '.join(header)})",
                                          f"{key}.{k}")
                    # the where: only the rows whose column has one of the texts (trimmed; no value is none of them)
                    params: dict[str, object] = {}
                    kept = []
                    for i, (column, allowed) in enumerate(lookup.where):
                        params[f"c{i}"], params[f"w{i}"] = _pointer(column), list(allowed)
                        kept.append(f"coalesce(list_contains($w{i}, trim(json_extract_string(j, $c{i}))), false)")
                    with engine_path(readable) as engine_name:
                        con.execute(f"""
                            CREATE OR REPLACE TEMP TABLE {table}_rows AS
                            SELECT trim(json_extract_string(j, $k)) AS k, trim(json_extract_string(j, $v)) AS v
                            FROM (SELECT to_json(t) AS j FROM read_csv($path, header = true, all_varchar = true,
                                                                      delim = $delim) t)
                            WHERE {" AND ".join(kept) or "true"}""",
                                    {"k": _pointer(lookup.key), "v": _pointer(lookup.value), "path": engine_name,
                                     "delim": fm.delimiter, **params})
            except UnreadableFile as exc:
                raise problem(f"{lookup.file} cannot be read: {exc}") from None
            except duckdb.Error as exc:
                if environmental(exc):
                    raise
                raise problem(f"{lookup.file} cannot be read as CSV: {first_line(exc)[:200]}") from None
            try:
                twice = None if lookup.pick else con.execute(f"""
                    SELECT k, list(DISTINCT coalesce(v, '') ORDER BY coalesce(v, '')) FROM {table}_rows
                    WHERE coalesce(k, '') <> '' GROUP BY k HAVING count(DISTINCT coalesce(v, '')) > 1
                    ORDER BY k LIMIT 1""").fetchone()
                if twice:
                    raise problem(f"{lookup.file} gives {lookup.key} {twice[0]!r} two values ("
                                  + ", ".join(repr(v) for v in twice[1][:3]) + "): a code table has one row per key "
                                  "(where keeps the rows that count; pick takes one of several values)")
                # pick: the greatest (least) text of the key's rows that have one (ISO dates: the latest, earliest)
                chosen = {"max": "max(nullif(v, ''))", "min": "min(nullif(v, ''))"}.get(lookup.pick or "", "any_value(v)")
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT k, {chosen} AS v FROM {table}_rows "
                            "WHERE coalesce(k, '') <> '' GROUP BY k")
            finally:
                con.execute(f"DROP TABLE IF EXISTS {table}_rows")
            read[table] = scan(table_path).digest
        tables[name] = table
        digests.append(read[table])
    digest = hashlib.sha256(json.dumps([fm.digest, *digests]).encode()).hexdigest()
    return dataclasses.replace(fm, lookup_tables=tables, digest=digest)


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
    ``map_error``), with ``keep`` false for records the mapping's conditions leave out.

    A code table (``lookups``) is a LEFT JOIN on its temp table (``read_lookups``: one row per
    key, so the join never repeats a record); a value used several times in a field's arithmetic
    is computed once, in a CTE of its own (``_Stages``)."""
    p = _Params()
    columns = fm.columns
    slot = {c: f"s{i}" for i, c in enumerate(columns)}
    nulls = p(list(fm.nulls))
    texts = ",\n        ".join(
        f"CASE WHEN list_contains({nulls}, trim(c[{i + 1}])) THEN NULL ELSE trim(c[{i + 1}]) END AS {slot[c]}"
        for i, c in enumerate(columns))
    keep = " AND ".join([f"coalesce(list_contains({p(list(v))}, {slot[c]}), false)" for c, v in fm.keep.items()]
                        + [f"NOT coalesce(list_contains({p(list(v))}, {slot[c]}), false)" for c, v in fm.drop.items()]
                        + [f"{slot[c]} IS NULL" for c in fm.where_empty]
                        + [f"{slot[c]} IS NOT NULL" for c in dict.fromkeys(fm.where_not_empty + fm.skip_if_empty)]) \
        or "true"

    stages = _Stages()
    joins: list[str] = []
    looked: dict[str, str] = {}  # field -> its looked-up text
    for j, (name, lookup) in enumerate(fm.lookups.items()):
        table = fm.lookup_tables.get(name)
        if table is None:
            raise ValueError(f"{fm.where}.lookups.{name}: its code table was not read (read_lookups)")
        joins.append(f"LEFT JOIN {table} AS l{j} ON l{j}.k = texts.{slot[fm.fields[name].column]}")
        looked[name] = stages.add(0, f"CASE WHEN list_contains({nulls}, l{j}.v) THEN NULL ELSE l{j}.v END")
        if lookup.missing == "quarantine":  # (missing = "empty": a value with no row gives no value)
            found = stages.add(0, f"l{j}.k IS NOT NULL")
            x = slot[fm.fields[name].column]
            stages.errors.append((name, f"{x} IS NOT NULL AND NOT {found}",
                                  f"format('{name} \"{{}}\" is not found in column {{}} of {{}}', {shown_sql(x)}, "
                                  f"{p(lookup.key)}, {p(lookup.file)})"))

    docs: list[str] = []
    for f in fm.entity.fields:
        expr = None
        if f.name in fm.constants:
            expr = p(fm.constants[f.name])
        elif f.name == fm.entity.key and fm.id_from:
            parts = ", ".join(slot[c] for c in fm.id_from)
            expr = f"left(sha256(to_json([{parts}])::VARCHAR), 24)"
        elif f.name in fm.fields:
            expr = _field_expr(fm, f, fm.fields[f.name], looked.get(f.name) or slot, p, stages)
            if fm.fields[f.name].default is not None:  # the source gives no value: the default's text
                expr = f"coalesce({expr}, {p(fm.fields[f.name].default)})"
        if expr is not None:
            docs.append(f"'{f.name}', {expr}")
    doc = f"json_object({', '.join(docs)})::VARCHAR" if docs else "'{}'"
    conditions = [("NULL", "NOT coalesce(json_valid(raw), false)", "'not valid JSON'"),
                  ("NULL", "json_type(raw) <> 'OBJECT'", "'record is not a JSON object'")]
    conditions += [(f"'{n}'", c, r) for n, c, r in stages.errors]
    map_field = "CASE " + " ".join(f"WHEN {c} THEN {n}" for n, c, _ in conditions) + " END"
    map_error = "CASE " + " ".join(f"WHEN {c} THEN {r}" for _, c, r in conditions) + " END"
    pointers = p([_pointer(c) for c in columns]) if columns else "[]::VARCHAR[]"
    last = "texts"
    ctes = ""
    for n, layer in enumerate(stages.layers):
        if layer:
            ctes += (f", stage{n} AS (\n    SELECT {last}.*,\n        " + ",\n        ".join(layer)
                     + f"\n    FROM {last}" + ("".join("\n    " + j for j in joins) if n == 0 else "") + "\n)")
            last = f"stage{n}"
    sql = f"""
WITH src AS (
    SELECT line_no, raw, CASE WHEN json_valid(raw) THEN json_extract_string(raw, {pointers}) END AS c FROM _lines
), texts AS (
    SELECT line_no, raw{"," if columns else ""}
        {texts}
    FROM src
){ctes}
SELECT line_no, raw, {keep} AS keep,
    CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN {doc} END AS doc,
    {map_field} AS map_field,
    {map_error} AS map_error
FROM {last}
"""
    return sql, p.values


class _Stages:
    """Values computed once per record in CTEs after ``texts`` (stage0: the code tables' values
    and the fields' exact numbers; stage1 and stage2: the steps of a scale), and the conversions
    that can fail: (field, condition, reason)."""

    def __init__(self) -> None:
        self.layers: list[list[str]] = [[], [], []]
        self.errors: list[tuple[str, str, str]] = []

    def add(self, layer: int, expr: str) -> str:
        name = f"v{sum(map(len, self.layers))}"
        self.layers[layer].append(f"{expr} AS {name}")
        return name


_UNIT = f"CAST('1{'0' * SCALE}' AS HUGEINT)"  # 10^18: one in whole numbers of 10^-18


def _scaled(x: str, scale: Scale, p: _Params, stages: _Stages) -> tuple[str, str]:
    """Exact number x (DECIMAL(38,18), NULL: none) times ``scale``: its text, rounded half away
    from zero at the 18th decimal, and the condition under which it overflows. Worked in whole
    numbers of 10^-18 (HUGEINT), by long division so that no step is larger than the result:
    x * t / d = (n // d) * t + ((n % d) * t) // d, plus one when the rest is half of d or more."""
    n = stages.add(1, f"CAST(replace(CAST(abs({x}) AS VARCHAR), '.', '') AS HUGEINT)")
    t, d = f"CAST({p(str(abs(scale.times)))} AS HUGEINT)", f"CAST({p(str(scale.per))} AS HUGEINT)"
    q = stages.add(2, f"try(({n} // {d}) * {t} + (({n} % {d}) * {t}) // {d} "
                      f"+ CASE WHEN 2 * ((({n} % {d}) * {t}) % {d}) >= {d} THEN 1 ELSE 0 END)")
    negative = f"{x} < 0" if scale.times > 0 else f"{x} > 0"
    text = (f"CASE WHEN {q} IS NOT NULL THEN (CASE WHEN {negative} AND {q} > 0 THEN '-' ELSE '' END) "
            f"|| CAST({q} // {_UNIT} AS VARCHAR) || '.' || lpad(CAST({q} % {_UNIT} AS VARCHAR), {SCALE}, '0') END")
    return _plain(text), f"{x} IS NOT NULL AND {q} IS NULL"


def _plain(text: str) -> str:
    """A computed number's text without the zeros its 18 decimals end in (10.250000… is 10.25,
    2.000… is 2): the value is the same, and a reason or a preview quotes it as a person writes it."""
    return f"regexp_replace(regexp_replace({text}, '(\\.[0-9]*?)0+$', '\\1'), '\\.$', '')"


def _field_expr(fm: FileMapping, f: Field, source: Source, slot: dict[str, str] | str, p: _Params,
                stages: _Stages) -> str:
    """The contract text of field f, and (into ``stages.errors``) the conversions that can fail.
    ``slot``: the source columns' texts, or (a code table's field) the looked-up text."""
    numeric = f.kind in NUMERIC_KINDS
    errors = stages.errors
    exact = f"DECIMAL(38,{SCALE})"

    def number(x: str) -> str:
        if fm.thousands:
            x = f"replace({x}, {p(fm.thousands)}, '')"
        if fm.decimal != ".":
            x = f"replace({x}, {p(fm.decimal)}, '.')"
        return x

    if source.sum:
        plus, minus = [number(slot[c]) for c in source.sum], [number(slot[c]) for c in source.minus]
        bad = " OR ".join(f"({x} IS NOT NULL AND TRY_CAST({x} AS {exact}) IS NULL)" for x in plus + minus)
        shown = " || ' + ' || ".join(f"coalesce({slot[c]}, '')" for c in source.sum)
        shown += "".join(f" || ' - ' || coalesce({slot[c]}, '')" for c in source.minus)
        what = "a difference" if source.minus else "a sum"
        errors.append((f.name, bad, f"format('{f.name} \"{{}}\" is not {what} of numbers', {shown_sql(shown)})"))
        total = " + ".join(f"coalesce(TRY_CAST({x} AS {exact}), 0)" for x in plus)
        total += "".join(f" - coalesce(TRY_CAST({x} AS {exact}), 0)" for x in minus)
        present = " OR ".join(f"{x} IS NOT NULL" for x in plus + minus)
        if source.minus or source.scale:  # new forms: an overflow is said, not an error of the whole file
            value = stages.add(0, f"CASE WHEN {present} THEN try({total}) END")
            errors.append((f.name, f"({present}) AND {value} IS NULL",
                           f"format('{f.name} \"{{}}\" is out of range', {shown_sql(shown)})"))
            if source.scale:
                x, overflow = _scaled(value, source.scale, p, stages)
                errors.append((f.name, overflow, f"format('{f.name} \"{{}}\" is out of range', {shown_sql(shown)})"))
            else:
                x = _plain(f"CAST({value} AS VARCHAR)")
        else:
            x = _plain(f"CASE WHEN {present} THEN CAST({total} AS VARCHAR) END")
    elif source.join:
        x = f"nullif(concat_ws({p(source.separator)}, {', '.join(slot[c] for c in source.join)}), '')"
    else:
        if isinstance(slot, str):
            x = slot
        elif source.first:  # the first column with a value (after nulls), as if it were the column
            x = f"coalesce({', '.join(slot[c] for c in source.first)})"
        else:
            x = slot[source.column]
        if f.name in fm.values:
            cases = " ".join(f"WHEN {p(k)} THEN {p(v)}" for k, v in fm.values[f.name].items())
            x = f"CASE {x} {cases} ELSE {x} END"
        if numeric:
            x = number(x)
        if source.scale:
            value = stages.add(0, f"TRY_CAST({x} AS {exact})")
            errors.append((f.name, f"{x} IS NOT NULL AND {value} IS NULL",
                           f"format('{f.name} \"{{}}\" is not a number', {shown_sql(x)})"))
            scaled, overflow = _scaled(value, source.scale, p, stages)
            errors.append((f.name, overflow, f"format('{f.name} \"{{}}\" is out of range', {shown_sql(x)})"))
            x = scaled
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
