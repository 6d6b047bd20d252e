"""loanwatch as an unattended daily service (issue, class 9 "internal errors"): what used to end
in "internal error: … This is a bug in loanwatch" is one line saying what to do.

- A source mapping (docs/mappings.md) with a value of the wrong type for any key, an empty list
  where columns are needed, a codec that is not a text encoding, a time zone that is not an IANA
  name, or a strptime format the engine refuses: a usage error when the mapping is read (exit 2),
  naming the file, the key, what the key takes and the table ([[files]] #N, match "…"), before
  anything is loaded.
- `loanwatch batches` while a writer holds the warehouse: it waits as a second writer does
  ([warehouse] lock_timeout), then says the warehouse is busy (exit 1).
- `loanwatch generate` under a memory limit: it ran out of memory, and what to do (exit 1).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import types
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.errors import UsageProblem
from loanwatch.ingest.load import ingest_paths
from loanwatch.ingest.mapping import load_mapping
from loanwatch.warehouse import connect, open_writer, writer_lock
from tests.conftest import MAPPINGS, cli, run_cli

pytestmark = pytest.mark.unit

# A valid calls mapping; each case below adds or replaces one key of it.
HEAD = '''
[[files]]
match = "Llamadas_*.csv"
entity = "calls"
id_from = ["Fecha", "IDCliente"]
'''
FIELDS = '''
[files.fields]
client_id = "IDCliente"
called_at = "Fecha"
talk_seconds = { column = "Hablado", convert = "duration" }
'''
CONTEXT = '([[files]] #1, match "Llamadas_*.csv")'


LOOKUP = '[files.lookups.agent_id]\nfile = "agents.csv"\nkey = "id"\nvalue = "name"\ncolumn = "Agente"\n'


def calls_mapping(key_lines: str = "", fields: str = FIELDS, after: str = "") -> str:
    """HEAD with key_lines added to the [[files]] table, then its fields, then ``after``."""
    return HEAD + key_lines + "\n" + fields + after


def field(line: str) -> str:
    """FIELDS with one more field line (agent_id: a string field, for its shapes)."""
    return FIELDS + line + "\n"


# (case id, mapping text, the key the message must name, a phrase of what it takes)
WRONG_SHAPES = [
    # the [[files]] array itself
    ("files-number-items", "files = [1]\n", "files[0]", "expected a [[files]] table"),
    ("files-string-items", 'files = ["Llamadas_*.csv"]\n', "files[0]", "expected a [[files]] table"),
    ("files-list-items", "files = [[1]]\n", "files[0]", "expected a [[files]] table"),
    ("files-single-table", '[files]\nmatch = "x"\nentity = "calls"\n', "files", "with two brackets"),
    ("files-string", 'files = "Llamadas_*.csv"\n', "files", "expected [[files]] tables"),
    ("second-table-match-number", HEAD + FIELDS + '\n[[files]]\nmatch = 5\nentity = "agents"\n', "files[1].match", "a glob"),
    # keys of a table: strings
    ("match-number", HEAD.replace('match = "Llamadas_*.csv"', "match = 1") + FIELDS, "files[0].match", "a glob"),
    ("match-list", HEAD.replace('match = "Llamadas_*.csv"', 'match = ["a*"]') + FIELDS, "files[0].match", "a glob"),
    ("match-empty", HEAD.replace('match = "Llamadas_*.csv"', 'match = ""') + FIELDS, "files[0].match", "a glob"),
    ("entity-number", HEAD.replace('entity = "calls"', "entity = 7") + FIELDS, "files[0].entity", "an entity name"),
    ("entity-list", HEAD.replace('entity = "calls"', 'entity = ["calls"]') + FIELDS, "files[0].entity", "an entity name"),
    ("format-number", calls_mapping("format = 1"), "files[0].format", '"csv", "json"'),
    ("format-list", calls_mapping('format = ["csv"]'), "files[0].format", '"csv", "json"'),
    ("encoding-number", calls_mapping("encoding = 1251"), "files[0].encoding", "a Python codec name"),
    ("encoding-list", calls_mapping('encoding = ["latin-1"]'), "files[0].encoding", "a Python codec name"),
    ("delimiter-number", calls_mapping("delimiter = 1"), "files[0].delimiter", "one character"),
    ("delimiter-list", calls_mapping('delimiter = [";"]'), "files[0].delimiter", "one character"),
    ("decimal-number", calls_mapping("decimal = 1"), "files[0].decimal", '"." or ","'),
    ("decimal-table", calls_mapping("decimal = {}"), "files[0].decimal", '"." or ","'),
    ("thousands-number", calls_mapping("thousands = 1"), "files[0].thousands", "one character"),
    ("thousands-digit", calls_mapping('thousands = "1"'), "files[0].thousands", "one character"),
    ("timezone-number", calls_mapping("timezone = 6"), "files[0].timezone", "an IANA time zone"),
    ("timezone-list", calls_mapping('timezone = ["UTC"]'), "files[0].timezone", "an IANA time zone"),
    ("timestamp_format-number", calls_mapping("timestamp_format = 1"), "files[0].timestamp_format", "a strptime format"),
    ("date_format-table", calls_mapping("date_format = { a = 1 }"), "files[0].date_format", "a strptime format"),
    # lists of columns or texts
    ("id_from-number", HEAD.replace('["Fecha", "IDCliente"]', "1") + FIELDS, "files[0].id_from", "a column name"),
    ("id_from-numbers", HEAD.replace('["Fecha", "IDCliente"]', "[1, 2]") + FIELDS, "files[0].id_from", "a column name"),
    ("id_from-table", HEAD.replace('["Fecha", "IDCliente"]', "{ a = 1 }") + FIELDS, "files[0].id_from", "a column name"),
    ("id_from-empty", HEAD.replace('["Fecha", "IDCliente"]', "[]") + FIELDS, "files[0].id_from", "at least one"),
    ("nulls-number", calls_mapping("nulls = 0"), "files[0].nulls", "texts that mean no value"),
    ("nulls-table", calls_mapping('nulls = { a = "" }'), "files[0].nulls", "texts that mean no value"),
    ("nulls-nested", calls_mapping('nulls = [[""]]'), "files[0].nulls", "texts that mean no value"),
    ("skip_if_empty-number", calls_mapping("skip_if_empty = 1"), "files[0].skip_if_empty", "a column name"),
    ("skip_if_empty-table", calls_mapping("skip_if_empty = { a = 1 }"), "files[0].skip_if_empty", "a column name"),
    # where: a table of column = value(s)
    ("where-string", calls_mapping('where = "Hablado"'), "files[0].where", "a table"),
    ("where-list", calls_mapping('where = ["Hablado"]'), "files[0].where", "a table"),
    ("where-number", calls_mapping("where = 1"), "files[0].where", "a table"),
    ("where-value-number", calls_mapping("where = { Agente = 7 }"), "files[0].where.Agente", 'quote it, "7"'),
    ("where-value-table", calls_mapping("where = { Agente = { a = 1 } }"), "files[0].where.Agente", "the value to keep"),
    ("where-value-empty", calls_mapping("where = { Agente = [] }"), "files[0].where.Agente", "at least one"),
    ("where-value-nested", calls_mapping('where = { Agente = [["a"]] }'), "files[0].where.Agente", "the value to keep"),
    # fields
    ("fields-string", calls_mapping('fields = "IDCliente"', fields=""), "files[0].fields", "a table"),
    ("fields-list", calls_mapping('fields = ["IDCliente"]', fields=""), "files[0].fields", "a table"),
    ("field-number", calls_mapping(fields=field("agent_id = 3")), "files[0].fields.agent_id", "a column name"),
    ("field-list", calls_mapping(fields=field('agent_id = ["Agente"]')), "files[0].fields.agent_id", "a column name"),
    ("field-column-number", calls_mapping(fields=field("agent_id = { column = 3 }")),
     "files[0].fields.agent_id.column", "a column name"),
    ("field-column-list", calls_mapping(fields=field('agent_id = { column = ["Agente"] }')),
     "files[0].fields.agent_id.column", "a column name"),
    ("field-sum-empty", calls_mapping(fields=FIELDS.replace('{ column = "Hablado", convert = "duration" }', "{ sum = [] }")),
     "files[0].fields.talk_seconds.sum", "at least one"),
    ("field-sum-number", calls_mapping(fields=FIELDS.replace('{ column = "Hablado", convert = "duration" }', "{ sum = 1 }")),
     "files[0].fields.talk_seconds.sum", "a list of column names"),
    ("field-sum-numbers", calls_mapping(fields=FIELDS.replace('{ column = "Hablado", convert = "duration" }', "{ sum = [1, 2] }")),
     "files[0].fields.talk_seconds.sum", "a list of column names"),
    ("field-sum-table", calls_mapping(fields=FIELDS.replace('{ column = "Hablado", convert = "duration" }', "{ sum = { a = 1 } }")),
     "files[0].fields.talk_seconds.sum", "a list of column names"),
    ("field-join-empty", calls_mapping(fields=field("agent_id = { join = [] }")), "files[0].fields.agent_id.join", "at least one"),
    ("field-first-empty", calls_mapping(fields=field("agent_id = { first = [] }")), "files[0].fields.agent_id.first",
     "at least one"),
    ("field-first-numbers", calls_mapping(fields=field("agent_id = { first = [1] }")), "files[0].fields.agent_id.first",
     "a list of column names"),
    ("field-first-and-column", calls_mapping(fields=field('agent_id = { first = ["a"], column = "b" }')),
     "files[0].fields.agent_id", "give exactly one of column, first, sum and join"),
    ("field-join-numbers", calls_mapping(fields=field("agent_id = { join = [1] }")), "files[0].fields.agent_id.join",
     "a list of column names"),
    ("field-separator-number", calls_mapping(fields=field('agent_id = { join = ["a"], separator = 1 }')),
     "files[0].fields.agent_id.separator", "a string"),
    ("field-separator-list", calls_mapping(fields=field('agent_id = { join = ["a"], separator = ["/"] }')),
     "files[0].fields.agent_id.separator", "a string"),
    ("field-convert-number", calls_mapping(fields=FIELDS.replace('convert = "duration"', "convert = 1")),
     "files[0].fields.talk_seconds.convert", "use one of duration, abs"),
    ("field-convert-list", calls_mapping(fields=FIELDS.replace('convert = "duration"', 'convert = ["abs"]')),
     "files[0].fields.talk_seconds.convert", "use one of duration, abs"),
    ("field-format-number", calls_mapping(fields=FIELDS.replace('called_at = "Fecha"', 'called_at = { column = "Fecha", format = 1 }')),
     "files[0].fields.called_at.format", "a strptime format"),
    ("field-format-list", calls_mapping(fields=FIELDS.replace('called_at = "Fecha"', 'called_at = { column = "Fecha", format = ["%Y"] }')),
     "files[0].fields.called_at.format", "a strptime format"),
    # arithmetic: minus with sum; multiply or divide by a number (not quoted, not 0), on a number field
    ("field-multiply-string", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = "60" }')),
     "files[0].fields.total_seconds.multiply", "a number (not quoted)"),
    ("field-multiply-list", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = [60] }')),
     "files[0].fields.total_seconds.multiply", "a number (not quoted)"),
    ("field-multiply-boolean", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = true }')),
     "files[0].fields.total_seconds.multiply", "a number (not quoted)"),
    ("field-multiply-inf", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = inf }')),
     "files[0].fields.total_seconds.multiply", "a number (not quoted)"),
    ("field-multiply-zero", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = 0 }')),
     "files[0].fields.total_seconds.multiply", "give the field a constant"),
    ("field-multiply-digits", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = 1e40 }')),
     "files[0].fields.total_seconds.multiply", "too many digits"),
    ("field-divide-zero", calls_mapping(fields=field('total_seconds = { column = "Min", divide = 0 }')),
     "files[0].fields.total_seconds.divide", "division by zero"),
    ("field-divide-zero-float", calls_mapping(fields=field('total_seconds = { column = "Min", divide = 0.0 }')),
     "files[0].fields.total_seconds.divide", "division by zero"),
    ("field-divide-string", calls_mapping(fields=field('total_seconds = { column = "Min", divide = "100" }')),
     "files[0].fields.total_seconds.divide", "a number (not quoted)"),
    ("field-multiply-and-divide", calls_mapping(fields=field('total_seconds = { column = "Min", multiply = 60, divide = 2 }')),
     "files[0].fields.total_seconds", "give one of multiply and divide"),
    ("field-multiply-join", calls_mapping(fields=field('total_seconds = { join = ["Min"], multiply = 60 }')),
     "files[0].fields.total_seconds.multiply", "not with join"),
    ("field-multiply-text", calls_mapping(fields=field('agent_id = { column = "Agente", multiply = 2 }')),
     "files[0].fields.agent_id.multiply", "not a number field"),
    ("field-multiply-duration", calls_mapping(fields=FIELDS.replace('convert = "duration"', 'convert = "duration", multiply = 60')),
     "files[0].fields.talk_seconds.convert", "does not go with minus, multiply or divide"),
    ("field-minus-column", calls_mapping(fields=field('promised_amount = { column = "a", minus = ["b"] }')),
     "files[0].fields.promised_amount.minus", "goes with sum"),
    ("field-minus-empty", calls_mapping(fields=field('promised_amount = { sum = ["a"], minus = [] }')),
     "files[0].fields.promised_amount.minus", "at least one"),
    ("field-minus-numbers", calls_mapping(fields=field('promised_amount = { sum = ["a"], minus = [1] }')),
     "files[0].fields.promised_amount.minus", "a list of column names"),
    ("field-minus-table", calls_mapping(fields=field('promised_amount = { sum = ["a"], minus = { b = 1 } }')),
     "files[0].fields.promised_amount.minus", "a list of column names"),
    ("field-minus-text", calls_mapping(fields=field('agent_id = { sum = ["a"], minus = ["b"] }')),
     "files[0].fields.agent_id.minus", "not a number field"),
    # where_not: as where; where_empty and where_not_empty: columns, at least one
    ("where_not-string", calls_mapping('where_not = "Agente"'), "files[0].where_not", "a table"),
    ("where_not-list", calls_mapping('where_not = ["Agente"]'), "files[0].where_not", "a table"),
    ("where_not-value-number", calls_mapping("where_not = { Agente = 7 }"), "files[0].where_not.Agente", 'quote it, "7"'),
    ("where_not-value-empty", calls_mapping("where_not = { Agente = [] }"), "files[0].where_not.Agente", "at least one"),
    ("where_not-value-table", calls_mapping("where_not = { Agente = { a = 1 } }"), "files[0].where_not.Agente",
     "the value to leave out"),
    ("where_empty-number", calls_mapping("where_empty = 1"), "files[0].where_empty", "a column name"),
    ("where_empty-numbers", calls_mapping("where_empty = [1]"), "files[0].where_empty", "a column name"),
    ("where_empty-empty", calls_mapping("where_empty = []"), "files[0].where_empty", "at least one"),
    ("where_empty-table", calls_mapping("where_empty = { Agente = 1 }"), "files[0].where_empty", "a column name"),
    ("where_not_empty-number", calls_mapping("where_not_empty = 1"), "files[0].where_not_empty", "a column name"),
    ("where_not_empty-empty", calls_mapping("where_not_empty = []"), "files[0].where_not_empty", "at least one"),
    # lookups: [files.lookups.FIELD] tables of file, key, value and column
    ("lookups-string", calls_mapping('lookups = "agents.csv"'), "files[0].lookups", "[files.lookups.FIELD] tables"),
    ("lookups-list", calls_mapping('lookups = ["agents.csv"]'), "files[0].lookups", "[files.lookups.FIELD] tables"),
    ("lookup-string", calls_mapping('lookups = { agent_id = "agents.csv" }'), "files[0].lookups.agent_id", "a table"),
    ("lookup-unknown-field", calls_mapping(after=LOOKUP.replace("agent_id]", "agent]")), "files[0].lookups.agent",
     "calls has no field 'agent'"),
    ("lookup-unknown-key", calls_mapping(after=LOOKUP + 'colour = "red"\n'), "files[0].lookups.agent_id.colour",
     "unknown key; the keys are file, key, value, column, where, pick, missing"),
    ("lookup-missing-value", calls_mapping(after=LOOKUP.replace('value = "name"\n', "")), "files[0].lookups.agent_id.value",
     "missing"),
    ("lookup-file-number", calls_mapping(after=LOOKUP.replace('file = "agents.csv"', "file = 1")),
     "files[0].lookups.agent_id.file", "a file name"),
    ("lookup-file-folder", calls_mapping(after=LOOKUP.replace('file = "agents.csv"', 'file = "../codes/agents.csv"')),
     "files[0].lookups.agent_id.file", "without a folder"),
    ("lookup-file-empty", calls_mapping(after=LOOKUP.replace('file = "agents.csv"', 'file = ""')),
     "files[0].lookups.agent_id.file", "without a folder"),
    ("lookup-key-number", calls_mapping(after=LOOKUP.replace('key = "id"', "key = 1")),
     "files[0].lookups.agent_id.key", "a column name"),
    ("lookup-value-list", calls_mapping(after=LOOKUP.replace('value = "name"', 'value = ["name"]')),
     "files[0].lookups.agent_id.value", "a column name"),
    ("lookup-column-empty", calls_mapping(after=LOOKUP.replace('column = "Agente"', 'column = ""')),
     "files[0].lookups.agent_id.column", "empty"),
    ("lookup-also-a-field", calls_mapping(after=LOOKUP.replace("agent_id]", "client_id]")), "files[0].lookups.client_id",
     "also given in fields"),
    ("lookup-where-string", calls_mapping(after=LOOKUP + 'where = "active"\n'), "files[0].lookups.agent_id.where",
     "a table: the code table's column"),
    ("lookup-where-number", calls_mapping(after=LOOKUP + "where = { status = 200 }\n"),
     "files[0].lookups.agent_id.where.status", 'quote it, "200"'),
    ("lookup-where-empty", calls_mapping(after=LOOKUP + "where = { status = [] }\n"),
     "files[0].lookups.agent_id.where.status", "at least one"),
    ("lookup-pick-unknown", calls_mapping(after=LOOKUP + 'pick = "last"\n'), "files[0].lookups.agent_id.pick",
     'must be "max" or "min"'),
    ("lookup-pick-number", calls_mapping(after=LOOKUP + "pick = 1\n"), "files[0].lookups.agent_id.pick",
     'must be "max" or "min"'),
    ("lookup-missing-unknown", calls_mapping(after=LOOKUP + 'missing = "skip"\n'), "files[0].lookups.agent_id.missing",
     'must be "quarantine"'),
    ("lookup-missing-bool", calls_mapping(after=LOOKUP + "missing = true\n"), "files[0].lookups.agent_id.missing",
     'or "empty"'),
    # a field's default: a contract value
    ("default-list", calls_mapping(fields=field('agent_id = { column = "Agente", default = ["a"] }')),
     "files[0].fields.agent_id.default", "a contract value"),
    ("default-table", calls_mapping(fields=field('agent_id = { column = "Agente", default = { a = 1 } }')),
     "files[0].fields.agent_id.default", "a contract value"),
    # constants: a table of contract field = value
    ("constants-string", calls_mapping('constants = "MXN"'), "files[0].constants", "a table"),
    ("constants-list", calls_mapping('constants = ["MXN"]'), "files[0].constants", "a table"),
    ("constants-number", calls_mapping("constants = 1"), "files[0].constants", "a table"),
    ("constant-list", calls_mapping(after='[files.constants]\nagent_id = ["a1"]\n'), "files[0].constants.agent_id",
     "a contract value"),
    ("constant-table", calls_mapping(after='[files.constants]\nagent_id = { a = 1 }\n'), "files[0].constants.agent_id",
     "a contract value"),
    ("constant-time", calls_mapping(after="[files.constants]\nagent_id = 10:30:00\n"), "files[0].constants.agent_id",
     "a contract value"),
    ("constant-nan", calls_mapping(after="[files.constants]\nagent_id = nan\n"), "files[0].constants.agent_id",
     "a contract value"),
    # values: [files.values.FIELD] tables of source code = contract value
    ("values-string", calls_mapping('values = "outcome"'), "files[0].values", "tables"),
    ("values-list", calls_mapping('values = ["outcome"]'), "files[0].values", "tables"),
    ("values-field-string", calls_mapping('values = { outcome = "paid" }'), "files[0].values.outcome", "a table"),
    ("values-field-list", calls_mapping('values = { outcome = ["paid"] }'), "files[0].values.outcome", "a table"),
    ("values-code-list", calls_mapping(after='[files.values.outcome]\nP = ["paid"]\n'), "files[0].values.outcome.P",
     "a contract value"),
    ("values-code-table", calls_mapping(after='[files.values.outcome]\nP = { a = 1 }\n'), "files[0].values.outcome.P",
     "a contract value"),
]


def _source(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Llamadas_1.csv").write_text("Fecha,IDCliente,Hablado,Agente\n2023-06-27T13:22:00,46056,0:00:06,a1\n")
    return folder


@pytest.mark.parametrize("text, key, takes", [pytest.param(t, k, w, id=i) for i, t, k, w in WRONG_SHAPES])
def test_a_wrong_shape_is_one_usage_line_naming_the_key_and_nothing_loads(tmp_path, text, key, takes):
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    result = cli("ingest", "--mapping", path, _source(tmp_path / "in"), home=home)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith(f"error: {path}: {key}: "), line
    assert takes in line, line
    if key.startswith("files["):  # which table: its number and its match
        assert "([[files]] #" in line, line
    assert not (home / "warehouse.duckdb").exists()  # read before anything was opened, let alone loaded


def test_the_table_is_named_by_number_and_match(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(calls_mapping("where = 1"))
    with pytest.raises(UsageProblem) as caught:
        load_mapping(path)
    assert str(caught.value) == (f"{path}: files[0].where: expected a table: column = the value to keep, or a list of "
                                 f'them (where = {{ status = ["paid", "late"] }}), not a number (1) {CONTEXT}')


@pytest.mark.parametrize("encoding", ["rot13", "zlib_codec", "hex", "base64", "bz2_codec", "undefined"])
def test_a_codec_that_is_not_a_text_encoding_is_a_usage_error(tmp_path, encoding):
    path = tmp_path / "map.toml"
    path.write_text(calls_mapping(f'encoding = "{encoding}"'))
    result = cli("ingest", "--mapping", path, _source(tmp_path / "in"), home=tmp_path / "home")
    assert result.exit_code == 2
    assert f"files[0].encoding: {encoding!r} is a Python codec but not a text encoding" in result.stderr
    assert "utf-8, latin-1, cp1251 or utf-16" in result.stderr


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Local", "America/Mexico City", "mars/olympus", ""])
def test_a_time_zone_that_is_not_an_iana_name_is_refused_before_loading(tmp_path, zone):
    # localtime is a file of the system's zone folder (zoneinfo lists it), not a zone: the engine
    # refuses it, and every row of the file used to be quarantined
    path = tmp_path / "map.toml"
    path.write_text(calls_mapping(f'timezone = "{zone}"'))
    home = tmp_path / "home"
    result = cli("ingest", "--mapping", path, _source(tmp_path / "in"), home=home)
    assert result.exit_code == 2, result.output
    assert f"files[0].timezone: {zone!r} is not an IANA time zone" in result.stderr
    assert not (home / "warehouse.duckdb").exists()


@pytest.mark.parametrize("key, fmt, why", [
    ("timestamp_format", "%Q", "unrecognized format for strftime/strptime: %Q"),
    ("timestamp_format", "%Y-%m-%dT%H:%M:%S%", "trailing format character"),
    ("date_format", "%e/%m/%Y", "%e"),
    ("date_format", "%s", "%s"),
    ("fields.called_at.format", "%d.%m.%Y %Ez", "%E"),
])
def test_a_format_the_engine_refuses_is_a_usage_error_before_loading(tmp_path, key, fmt, why):
    if key.startswith("fields."):
        text = calls_mapping(fields=FIELDS.replace('called_at = "Fecha"', f'called_at = {{ column = "Fecha", format = "{fmt}" }}'))
    else:
        text = calls_mapping(f'{key} = "{fmt}"')
    path = tmp_path / "map.toml"
    path.write_text(text)
    home = tmp_path / "home"
    result = cli("ingest", "--mapping", path, _source(tmp_path / "in"), home=home)
    assert result.exit_code == 2, result.output
    assert f"files[0].{key}: {fmt!r} is not a strptime format the engine reads (" in result.stderr
    assert why in result.stderr
    assert not (home / "warehouse.duckdb").exists()


def test_every_shipped_mapping_still_loads():
    for path in sorted(MAPPINGS.glob("*.toml")):
        mapping = load_mapping(path)
        assert mapping.files and all(f.context.startswith("[[files]] #") for f in mapping.files), path


def test_constants_take_strings_numbers_booleans_and_dates_as_documented(tmp_path):
    """docs/mappings.md: a constant is a string, number or boolean; a TOML date is its ISO text."""
    path = tmp_path / "map.toml"
    path.write_text('''
[[files]]
match = "clientes.csv"
entity = "clients"
[files.fields]
client_id = "id"
name = "nombre"
[files.constants]
do_not_contact = true
updated_at = 2024-03-01
region = "Norte"
[files.values.name]
X = 1
''')
    mapping = load_mapping(path)
    assert mapping.files[0].constants == {"do_not_contact": "true", "updated_at": "2024-03-01", "region": "Norte"}
    assert mapping.files[0].values == {"name": {"X": "1"}}
    source = tmp_path / "clientes.csv"
    source.write_text("id,nombre\nC1,Ana\n")
    settings = load_settings(tmp_path / "home", environ={})
    with open_writer(settings) as con:
        (result,) = ingest_paths(con, [source], mapping=mapping)
        assert (result.accepted, result.rejected) == (1, 0)
        assert con.execute("SELECT do_not_contact, updated_at, region FROM staging.clients").fetchall() == [
            (True, dt.datetime(2024, 3, 1), "Norte")]


def test_a_missing_column_names_the_table_too(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(calls_mapping())
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Llamadas_1.csv").write_text("Fecha,Cliente,Hablado\n2023-06-27T13:22:00,1,0:00:06\n")
    result = cli("ingest", "--mapping", path, folder, home=tmp_path / "home")
    assert result.exit_code == 2
    assert (f"files[0].fields.client_id: column 'IDCliente' is not in Llamadas_1.csv (its columns: Fecha, Cliente, "
            f"Hablado) {CONTEXT}") in result.stderr


# --- loanwatch batches while the warehouse is written ------------------------------------------

def _home_with_a_batch(tmp_path: Path):
    home = tmp_path / "home"
    source = tmp_path / "payments.jsonl"
    source.write_text(json.dumps({"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-01-01T10:00:00Z", "amount": 10}) + "\n")
    assert cli("ingest", source, home=home).exit_code == 0
    return home, load_settings(home, environ={})


SHORT_WAIT = {"LOANWATCH_WAREHOUSE__LOCK_TIMEOUT": "1"}


@pytest.mark.parametrize("holder", ["open_writer", "writer_lock"])
def test_batches_while_a_writer_holds_the_warehouse_says_busy_try_again(tmp_path, holder):
    home, settings = _home_with_a_batch(tmp_path)
    hold = open_writer(settings) if holder == "open_writer" else writer_lock(settings)
    with hold:
        proc = run_cli("--home", home, "batches", env=SHORT_WAIT, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line
    assert f"{home}: the warehouse is being written by pid " in line and "waited 1 s" in line
    assert "Try again when it has finished" in line
    # and once it is free, the listing
    done = run_cli("--home", home, "batches", "--format", "json", env=SHORT_WAIT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [b["file_name"] for b in json.loads(done.stdout)] == ["payments.jsonl"]


def test_batches_waits_for_a_writer_that_finishes_within_the_lock_timeout(tmp_path):
    home, settings = _home_with_a_batch(tmp_path)
    held, release = threading.Event(), threading.Event()

    def writer():
        with open_writer(settings):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait(30)
    timer = threading.Timer(3, release.set)  # the writer finishes 3 s after batches starts
    timer.start()
    try:
        proc = run_cli("--home", home, "batches", "--format", "json", env={"LOANWATCH_WAREHOUSE__LOCK_TIMEOUT": "60"},
                       timeout=120)
    finally:
        release.set()
        timer.cancel()
        thread.join()
    assert proc.returncode == 0, proc.stderr
    assert [b["file_name"] for b in json.loads(proc.stdout)] == ["payments.jsonl"]


def test_batches_while_another_program_has_the_file_open_says_busy(tmp_path):
    # not loanwatch's lock: a duckdb shell, say, with the warehouse file open for writing
    home, settings = _home_with_a_batch(tmp_path)
    con = connect(settings.warehouse_path)
    try:
        proc = run_cli("--home", home, "batches", env=SHORT_WAIT, timeout=60)
    finally:
        con.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line
    assert f"{home}: the warehouse is busy (another process has warehouse.duckdb open); waited 1 s" in line
    assert "Try again when it has finished" in line


@pytest.mark.parametrize("errno_name", ["EROFS", "EACCES", "ENOSPC"])
def test_batches_reads_a_home_whose_lock_file_cannot_be_written(tmp_path, monkeypatch, errno_name):
    # a read-only copy of a home, another user's, a full disk: the listing is still shown
    import errno
    import os

    import loanwatch.warehouse as warehouse

    home, _ = _home_with_a_batch(tmp_path)

    def unwritable(settings, timeout=None):
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code), str(home / ".writer.lock"))

    monkeypatch.setattr(warehouse, "writer_lock", unwritable)
    result = cli("batches", "--format", "json", home=home)
    assert result.exit_code == 0, result.stderr
    assert [b["file_name"] for b in json.loads(result.stdout)] == ["payments.jsonl"]


# --- loanwatch generate out of memory ----------------------------------------------------------

def _address_space(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def test_generate_under_a_memory_limit_says_it_ran_out_and_what_to_do(tmp_path):
    out = tmp_path / "raw"
    # 800 MB of address space: enough to start, far too little for 5 million clients. One BLAS
    # thread: OpenBLAS sizes its buffers by the cores, and on a machine with many it could fail
    # in C at numpy's import, before Python can say anything.
    proc = run_cli("generate", "--clients", "5000000", "--out", out, env={"OPENBLAS_NUM_THREADS": "1"},
                   preexec_fn=_address_space(800 * 2**20), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith("error: generate: ran out of memory making a portfolio of 5,000,000 clients; ")
    assert "generate fewer (a smaller --clients" in line and "more memory" in line


@pytest.mark.parametrize("where, error, incomplete", [
    ("import", ImportError("libarrow.so.2600: failed to map segment from shared object"), False),
    ("generate", MemoryError(), False),
    ("write", "duckdb", True),
    ("write", RuntimeError("can't start new thread"), True),
])
def test_every_shape_of_running_out_of_memory_is_told_the_same(tmp_path, monkeypatch, where, error, incomplete):
    import duckdb

    import loanwatch.generate.portfolio as portfolio
    import loanwatch.generate.write as write

    if error == "duckdb":
        error = duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 64.0 MiB")

    def fail(*args, **kwargs):
        raise error

    if where == "import":  # numpy's or Arrow's library cannot be mapped into memory
        broken = types.ModuleType(portfolio.__name__)
        broken.__getattr__ = fail
        monkeypatch.setitem(sys.modules, portfolio.__name__, broken)
    elif where == "generate":
        monkeypatch.setattr(portfolio, "generate", fail)
    else:
        monkeypatch.setattr(write, "write_portfolio", fail)
    out = tmp_path / "raw"
    result = cli("generate", "--clients", "300", "--out", out)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: generate: ran out of memory making a portfolio of 300 clients; generate fewer")
    assert (f"the files it was writing in {out} are incomplete: remove them" in line) == incomplete


def test_other_errors_are_not_taken_for_memory():
    from loanwatch.generate.memory import out_of_memory

    assert not out_of_memory(RuntimeError("boom"))
    assert not out_of_memory(ImportError("No module named 'faker'"))
    assert out_of_memory(OSError(12, "Cannot allocate memory"))
    try:
        try:
            raise OSError("failed to map segment from shared object")
        except OSError as inner:
            raise ImportError("Importing the numpy C-extensions failed.") from inner
    except ImportError as exc:
        assert out_of_memory(exc)
