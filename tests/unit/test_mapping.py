"""Source mappings (docs/mappings.md): the mapping file is checked with messages naming the key;
mapped rows are converted in the engine, validated and quarantined like contract rows, with the
source file's lines and the source column in the reason; loads are idempotent per mapping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.errors import UsageProblem
from loanwatch.ingest.load import ingest_paths
from loanwatch.ingest.mapping import load_mapping
from loanwatch.warehouse import open_writer
from tests.conftest import cli


@pytest.fixture()
def settings(tmp_path):
    return load_settings(tmp_path / "home", environ={})


def mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


def ingest(settings, paths, mapping_path, dry_run=False):
    with open_writer(settings) as con:
        results = ingest_paths(con, paths, mapping=load_mapping(mapping_path), dry_run=dry_run)
    return {(r.path.name, r.entity): r for r in results}


def rejects(settings):
    with open_writer(settings) as con:
        return con.execute("SELECT file_name, line_no, field, reason FROM meta.rejects ORDER BY file_name, line_no").fetchall()


def query(settings, sql, params=()):
    with open_writer(settings) as con:
        return con.execute(sql, params).fetchall()


CALLS = '''
[[files]]
match = "Llamadas_*.csv"
entity = "calls"
timestamp_format = "%m/%d/%Y %H:%M"
timezone = "America/Mexico_City"
id_from = ["Fecha", "IDCliente"]

[files.fields]
client_id = "IDCliente"
called_at = "Fecha"
talk_seconds = { column = "Hablado", convert = "duration" }
'''


@pytest.mark.parametrize("text, message", [
    ("colour = 1\n" + CALLS, "map.toml: colour: unknown key (a mapping has only [[files]] tables)"),
    ("", "map.toml: files: no [[files]] table"),
    ("[[files]\n", "map.toml: not a valid TOML file"),
    (CALLS.replace('entity = "calls"', 'entity = "call"'), "map.toml: files[0].entity: unknown entity 'call'; use one of clients"),
    (CALLS.replace('entity = "calls"\n', ""), "map.toml: files[0].entity: missing"),
    (CALLS.replace("timezone =", "colour = 1\ntimezone ="), "map.toml: files[0].colour: unknown key; the keys are match, entity"),
    (CALLS.replace('client_id = "IDCliente"', 'client = "IDCliente"'), "map.toml: files[0].fields.client: calls has no field 'client'"),
    (CALLS.replace('called_at = "Fecha"\n', ""), "map.toml: files[0].fields: calls needs called_at: map it to a column"),
    (CALLS.replace('convert = "duration"', 'convert = "minutes"'), "files[0].fields.talk_seconds.convert: unknown conversion 'minutes'"),
    (CALLS.replace('{ column = "Hablado", convert = "duration" }', '{ column = "a", sum = ["b"] }'),
     "files[0].fields.talk_seconds: give exactly one of column, first, sum and join"),
    (CALLS.replace('convert = "duration"', 'unit = "s"'), "files[0].fields.talk_seconds.unit: unknown key"),
    (CALLS.replace('timezone = "America/Mexico_City"', 'timezone = "Mars/Olympus"'), "files[0].timezone: 'Mars/Olympus' is not an IANA time zone"),
    (CALLS.replace('timezone =', 'encoding = "latin-9x"\ntimezone ='), "files[0].encoding: unknown encoding 'latin-9x'"),
    (CALLS.replace('timezone =', 'delimiter = ";;"\ntimezone ='), "files[0].delimiter: must be one character"),
    (CALLS.replace('timestamp_format = "%m/%d/%Y %H:%M"', 'timestamp_format = "mm/dd/yyyy"'), "files[0].timestamp_format: a strptime format"),
    (CALLS + '[files.constants]\nclient_id = "C1"\n', "files[0].constants.client_id: given both as a field and as a constant"),
    (CALLS + '[files.values.outcomes]\nx = "paid"\n', "files[0].values.outcomes: calls has no field 'outcomes'"),
    (CALLS.replace('id_from = ["Fecha", "IDCliente"]', 'id_from = ["Fecha"]\nformat = "xml"'), 'files[0].format: must be "csv"'),
])
def test_a_bad_mapping_is_a_usage_error_naming_its_key(tmp_path, text, message):
    with pytest.raises(UsageProblem) as caught:
        load_mapping(mapping(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_column_the_file_lacks_stops_everything_before_anything_loads(settings, tmp_path):
    good = tmp_path / "Llamadas_1.csv"
    good.write_text("Fecha,IDCliente,Hablado\n6/27/2023 13:22,46056,0:00:06\n")
    bad = tmp_path / "Llamadas_2.csv"
    bad.write_text("Fecha,Cliente,Hablado\n6/27/2023 13:22,46056,0:00:06\n")
    with pytest.raises(UsageProblem) as caught:
        ingest(settings, [good, bad], mapping(tmp_path, CALLS))
    assert "files[0].fields.client_id: column 'IDCliente' is not in Llamadas_2.csv (its columns: Fecha, Cliente, Hablado)" in str(caught.value)
    assert query(settings, "SELECT count(*) FROM meta.batches") == [(0,)]


def test_calls_are_converted_and_bad_rows_name_the_source_column(settings, tmp_path):
    source = tmp_path / "Llamadas_2024.csv"
    source.write_text(
        "Fecha,IDCliente,Hablado\n"
        "6/27/2023 13:22,46056,0:01:37\n"      # 19:22 UTC; 97 s
        "13/27/2023 10:05,1,0:00:01\n"          # month 13
        "6/27/2023 10:05,2,1m37s\n"             # not a duration
        "6/28/2023 09:00,3,45\n"                # plain seconds
        "6/27/2023 13:22,46056,0:01:37\n"       # the first again: same id, same content
    )
    loaded = ingest(settings, [source], mapping(tmp_path, CALLS))
    r = loaded[("Llamadas_2024.csv", "calls")]
    assert (r.rows_read, r.accepted, r.duplicates, r.rejected) == (5, 2, 1, 2)
    assert rejects(settings) == [
        ("Llamadas_2024.csv", 3, "called_at",
         'called_at "13/27/2023 10:05" does not match timestamp_format "%m/%d/%Y %H:%M" (column Fecha)'),
        ("Llamadas_2024.csv", 4, "talk_seconds",
         'talk_seconds "1m37s" is not a duration (H:MM:SS, M:SS or seconds) (column Hablado)'),
    ]
    rows = query(settings, "SELECT client_id, called_at, talk_seconds, line_no, record FROM staging.calls ORDER BY line_no")
    assert [r[:4] for r in rows] == [("46056", dt.datetime(2023, 6, 27, 19, 22), 97, 2),
                                     ("3", dt.datetime(2023, 6, 28, 15, 0), 45, 5)]
    # the staging row keeps the source record as read
    assert json.loads(rows[0][4]) == {"Fecha": "6/27/2023 13:22", "IDCliente": "46056", "Hablado": "0:01:37"}
    # the id is made from the values: stable, 24 hex digits
    ids = query(settings, "SELECT call_id FROM staging.calls ORDER BY line_no")
    assert all(len(i) == 24 for (i,) in ids) and ids[0] != ids[1]


LEDGER = '''
[[files]]
match = "ledger*.csv"
entity = "merchant_events"
encoding = "cp1251"
delimiter = ";"
decimal = ","
thousands = "."
nulls = ["", "-"]
where = { kind = ["sale", "fee", "payout"] }
skip_if_empty = ["amount"]

[files.fields]
event_id = "id"
merchant_id = { join = ["shop", "branch"], separator = "/" }
event_type = "kind"
amount = { column = "amount", convert = "abs" }
occurred_at = { column = "day", format = "%d.%m.%Y" }

[files.constants]
currency = "RUB"

[files.values.event_type]
sale = "order_paid"
'''


def test_a_ledger_in_cp1251_with_decimal_commas_codes_and_filters(settings, tmp_path):
    source = tmp_path / "ledger_2025.csv"
    source.write_bytes(
        "id;shop;branch;kind;amount;day;note\n"
        "E1;Магазин;1;sale;1.234,50;01.07.2025;первый\n"     # 1234.50, shop name in Cyrillic
        "E2;Магазин;-;fee;-12,345;02.07.2025;\n"             # abs; 12.35 half-up; branch "-" is no value
        "E3;Магазин;1;refund;10,00;02.07.2025;\n"            # not kept by where
        "E4;Магазин;1;payout;-;03.07.2025;\n"                # no amount: skipped
        "E5;Магазин;1;fee;abc;03.07.2025;\n"                 # not a number
        "E6;Магазин;1;chargeback;5,00;03.07.2025;\n".encode("cp1251")  # not kept by where either
    )
    loaded = ingest(settings, [source], mapping(tmp_path, LEDGER))
    r = loaded[("ledger_2025.csv", "merchant_events")]
    assert (r.rows_read, r.accepted, r.rejected, r.filtered) == (6, 2, 1, 3)
    assert query(settings, "SELECT event_id, merchant_id, event_type, amount, currency, occurred_at "
                           "FROM staging.merchant_events ORDER BY event_id") == [
        ("E1", "Магазин/1", "order_paid", Decimal("1234.50"), "RUB", dt.datetime(2025, 7, 1)),
        ("E2", "Магазин", "fee", Decimal("12.35"), "RUB", dt.datetime(2025, 7, 2)),
    ]
    assert rejects(settings) == [("ledger_2025.csv", 6, "amount", 'amount "abc" is not a number (column amount)')]


def test_a_code_the_contract_forbids_is_quarantined_not_guessed(settings, tmp_path):
    text = LEDGER.replace('where = { kind = ["sale", "fee", "payout"] }\n', "")
    source = tmp_path / "ledger_1.csv"
    source.write_bytes("id;shop;branch;kind;amount;day\nE9;S;1;chargeback;5,00;03.07.2025\n".encode("cp1251"))
    loaded = ingest(settings, [source], mapping(tmp_path, text))
    assert loaded[("ledger_1.csv", "merchant_events")].rejected == 1
    assert rejects(settings)[0][3] == (
        'event_type "chargeback" is not one of order_paid, payout, refund, fee, payout_reversed (column kind)')


def test_bytes_invalid_in_the_declared_encoding_quarantine_the_file(settings, tmp_path):
    text = LEDGER.replace('encoding = "cp1251"', 'encoding = "ascii"')
    source = tmp_path / "ledger_x.csv"
    source.write_bytes("id;shop;branch;kind;amount;day\nE1;Магазин;1;sale;1,00;01.07.2025\n".encode("cp1251"))
    # the header is read for the column check with replacement characters: it passes
    loaded = ingest(settings, [source], mapping(tmp_path, text))
    r = loaded[("ledger_x.csv", "merchant_events")]
    assert r.status == "rejected" and r.message.startswith("the file is not valid ascii")


def test_one_file_read_as_two_entities_and_loads_are_idempotent_per_mapping(settings, tmp_path):
    text = '''
[[files]]
match = "export.csv"
entity = "loans"
[files.fields]
loan_id = "id"
client_id = "id"
amount = "amount"
issue_date = "issued"
updated_at = "issued"
[files.constants]
repayment = "schedule"

[[files]]
match = "export.csv"
entity = "instalments"
[files.fields]
loan_id = "id"
due_date = "due"
principal = "amount"
[files.constants]
number = 1
'''
    source = tmp_path / "export.csv"
    source.write_text("id,amount,issued,due\nL1,100,2024-01-01,2024-02-01\nL2,50,2024-01-02,2024-02-02\n")
    path = mapping(tmp_path, text)
    first = ingest(settings, [source], path)
    assert [(k, r.accepted) for k, r in first.items()] == [(("export.csv", "loans"), 2), (("export.csv", "instalments"), 2)]
    again = ingest(settings, [source], path)
    assert {r.status for r in again.values()} == {"skipped"}
    # another table for the same content loads again: its rows meet the ones loaded (duplicates)
    path.write_text(text.replace('entity = "instalments"', 'entity = "instalments"\nnulls = ["", "NA"]'))
    changed = ingest(settings, [source], path)
    assert (changed[("export.csv", "instalments")].accepted, changed[("export.csv", "instalments")].duplicates) == (0, 2)
    assert changed[("export.csv", "loans")].status == "skipped"
    hashes = query(settings, "SELECT entity, count(DISTINCT mapping_hash) FROM meta.batches GROUP BY ALL ORDER BY 1")
    assert hashes == [("instalments", 2), ("loans", 1)]


def test_dry_run_loads_nothing_and_shows_the_first_mapped_rows(settings, tmp_path):
    source = tmp_path / "Llamadas_1.csv"
    source.write_text("Fecha,IDCliente,Hablado\n6/27/2023 13:22,46056,0:00:06\n13/01/2023 10:00,2,0:00:01\n")
    loaded = ingest(settings, [source], mapping(tmp_path, CALLS), dry_run=True)
    r = loaded[("Llamadas_1.csv", "calls")]
    assert (r.rows_read, r.accepted, r.rejected) == (2, 1, 1)
    assert r.preview[0]["client_id"] == "46056" and r.preview[0]["talk_seconds"] == "6"
    assert query(settings, "SELECT (SELECT count(*) FROM meta.batches), (SELECT count(*) FROM meta.rejects), "
                           "(SELECT count(*) FROM staging.calls)") == [(0, 0, 0)]


def test_names_and_codes_that_look_like_sql_are_data(settings, tmp_path):
    evil = "Robert'); DROP TABLE loans;--"
    text = f'''
[[files]]
match = "*.csv"
entity = "clients"
[files.fields]
client_id = "{evil.replace('"', '')}"
name = "<b>x</b>"
region = "r"
updated_at = "u"
[files.values.region]
"{evil}" = "north'--"
'''
    source = tmp_path / "weird.csv"
    source.write_text(f'"{evil}",<b>x</b>,r,u\nC1,"{evil}","{evil}",2024-01-01\n')
    loaded = ingest(settings, [source], mapping(tmp_path, text))
    assert loaded[("weird.csv", "clients")].accepted == 1
    assert query(settings, "SELECT client_id, name, region FROM staging.clients") == [("C1", evil, "north'--")]
    assert query(settings, "SELECT count(*) FROM staging.loans") == [(0,)]


def test_cli_reports_unmatched_files_dry_runs_and_refuses_bad_mappings(tmp_path):
    home = tmp_path / "home"
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Llamadas_1.csv").write_text("Fecha,IDCliente,Hablado\n6/27/2023 13:22,46056,0:00:06\n")
    (folder / "notes.txt").write_text("hello\n")
    path = mapping(tmp_path, CALLS)
    result = cli("ingest", "--mapping", path, "--dry-run", folder, home=home)
    assert result.exit_code == 0, result.output
    assert "notes.txt: no [[files]] match of map.toml covers this file name: left alone" in result.stderr
    assert "calls: read 1, would be accepted 1" in result.stdout
    assert "dry run: nothing was loaded" in result.stdout
    result = cli("ingest", "--mapping", path, folder, home=home)
    assert result.exit_code == 0 and "calls: read 1, accepted 1" in result.stdout
    bad = mapping(tmp_path, CALLS.replace('entity = "calls"', 'entity = "call"'))
    result = cli("ingest", "--mapping", bad, folder, home=home)
    assert result.exit_code == 2 and "files[0].entity: unknown entity 'call'" in result.stderr
    result = cli("ingest", "--mapping", path, "--entity", "calls", folder, home=home)
    assert result.exit_code == 2 and "--entity and --mapping" in result.stderr


def test_a_non_utf8_file_without_a_mapping_says_how_to_map_it(settings, tmp_path):
    source = tmp_path / "clients.jsonl"
    source.write_bytes('{"client_id": "C1", "name": "López", "updated_at": "2024-01-01"}\n'.encode("latin-1"))
    table = tmp_path / "clients.csv"
    table.write_bytes("client_id,name,updated_at\nC1,López,2024-01-01\nC2,Ana,2024-01-01\n".encode("latin-1"))
    with open_writer(settings) as con:
        whole, row = ingest_paths(con, [source, table])
    assert whole.status == "rejected"
    assert "load it through a source mapping that names it (encoding" in whole.message
    # the CSV reader rejects the row, not the file: the row says it too, and the rest loads
    assert (row.status, row.accepted) == ("partial", 1)
    assert row.examples == ['clients.csv:2: CSV row is malformed (invalid encoding): the row is not UTF-8; if it is in '
                            'another encoding, load it through a source mapping that names it (encoding = "latin-1", '
                            'docs/mappings.md)']
