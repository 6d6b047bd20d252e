"""Ingest: formats, contract rules, quarantine with reasons, duplicates, conflicts, accounting."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.ingest.load import ingest_file
from loanwatch.ingest.read import entity_of
from loanwatch.warehouse import open_writer
from tests.conftest import cli

LOAN = {"loan_id": "L1", "client_id": "C1", "amount": 1200, "issue_date": "2024-01-15", "term_months": 3,
        "updated_at": "2024-01-15T09:30:00Z"}


def write_lines(path: Path, records) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def settings(tmp_path):
    return load_settings(tmp_path / "home", environ={})


def load(settings, path, entity=None):
    with open_writer(settings) as con:
        result = ingest_file(con, path, entity)
        rejects = con.execute(
            "SELECT line_no, field, reason, raw FROM meta.rejects WHERE batch_id = ? ORDER BY line_no", [result.batch_id]
        ).fetchall()
    return result, rejects


@pytest.mark.parametrize("name, entity", [
    ("loans.json", "loans"), ("loans_003.jsonl", "loans"), ("payments-2024-05-01.csv", "payments"),
    ("merchant_events_01.json", "merchant_events"), ("merchants.ndjson.gz", "merchants"),
    ("Clients.CSV", "clients"), ("loansheet.csv", None), ("notes.txt", None),
])
def test_entity_from_file_name(name, entity):
    assert entity_of(Path(name)) == entity


@pytest.mark.parametrize("change, field, reason", [
    ({"amount": "abc"}, "amount", 'amount "abc" is not a number'),
    ({"amount": -5}, "amount", 'amount "-5" must be greater than 0'),
    ({"amount": 0}, "amount", 'amount "0" must be greater than 0'),
    ({"amount": "1e400"}, "amount", 'amount "1e400" is not a number'),
    ({"amount": None}, "amount", "amount is missing"),
    ({"issue_date": "2024-02-30"}, "issue_date", 'issue_date "2024-02-30" is not a date (YYYY-MM-DD)'),
    ({"issue_date": "15/01/2024"}, "issue_date", 'issue_date "15/01/2024" is not a date (YYYY-MM-DD)'),
    ({"updated_at": "yesterday"}, "updated_at", 'updated_at "yesterday" is not an ISO 8601 timestamp'),
    ({"term_months": 0}, "term_months", 'term_months "0" must not be less than 1'),
    ({"term_months": 601}, "term_months", 'term_months "601" must not be more than 600'),
    ({"term_months": 2.5}, "term_months", 'term_months "2.5" is not a whole number'),
    ({"term_months": None}, "term_months", "term_months is missing (required unless a schedule is given or repayment is schedule)"),
    ({"repayment": "balloon"}, "repayment", 'repayment "balloon" is not one of annuity, bullet, schedule'),
    ({"risk_score": 1.5}, "risk_score", 'risk_score "1.5" must not be more than 1'),
    ({"currency": "dollars"}, "currency", 'currency "dollars" is not a 3-letter currency code'),
    ({"loan_id": "x" * 65}, "loan_id", 'loan_id "' + "x" * 57 + '..." must be 1 to 64 characters'),
    ({"client_id": None}, "client_id", "client_id is missing"),
    ({"deleted": "maybe"}, "deleted", 'deleted "maybe" is not a boolean (true/false)'),
    ({"schedule": [{"due_date": "2024-02-15", "principal": 100}]}, "schedule",
     "schedule principals sum to 100.00, not the amount 1200.00"),
    ({"schedule": "not json"}, "schedule", "schedule is not a JSON array of instalments"),
    ({"schedule": []}, "schedule", "schedule is empty"),
    ({"schedule": [{"due_date": "soon", "principal": 1200}]}, "schedule",
     "schedule has an instalment whose due_date is missing or not a date (YYYY-MM-DD)"),
])
def test_each_rule_quarantines_with_a_reason(settings, tmp_path, change, field, reason):
    good = dict(LOAN, loan_id="L0")
    bad = {k: v for k, v in {**LOAN, **change}.items() if v is not None}
    result, rejects = load(settings, write_lines(tmp_path / "loans.jsonl", [good, bad]))
    assert (result.rows_read, result.accepted, result.rejected) == (2, 1, 1)
    assert rejects[0][:3] == (2, field, reason)
    assert json.loads(rejects[0][3]) == bad  # the raw text is kept


def test_bad_json_lines_and_non_objects(settings, tmp_path):
    path = write_lines(tmp_path / "payments.jsonl", [
        {"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-02-01", "amount": "10.005"},
        '{"payment_id": "P2", "loan_id"',
        "[1, 2]",
        "",
        {"payment_id": "P3", "loan_id": "L1", "paid_at": "2024-02-01T10:00:00+03:00", "amount": 5, "type": "reversal"},
        {"payment_id": "P4", "loan_id": "L1", "paid_at": "2024-02-01", "amount": 5, "extra": {"kept": True}},
    ])
    result, rejects = load(settings, path)
    assert (result.rows_read, result.accepted, result.rejected) == (5, 2, 3)
    assert [(r[0], r[2]) for r in rejects] == [
        (2, "not valid JSON"), (3, "record is not a JSON object"), (5, "reverses is missing (required for a reversal)"),
    ]
    with open_writer(settings) as con:
        rows = con.execute("SELECT payment_id, amount, paid_at, record FROM staging.payments ORDER BY 1").fetchall()
    assert str(rows[0][1]) == "10.01"  # half-up to cents
    assert json.loads(rows[1][3])["extra"] == {"kept": True}  # unknown fields kept


def test_lines_of_a_file_read_in_parallel_keep_their_numbers(settings, tmp_path):
    """A file of several read buffers (about 20 MB) is read by more than one thread; every line
    keeps its number: payment Pn sits on line n, blank and broken lines included."""
    n = 200_000
    lines = [json.dumps({"payment_id": f"P{i}", "loan_id": "L1", "paid_at": "2024-02-01", "amount": 5,
                         "channel": "x" * 60}) for i in range(1, n + 1)]
    lines[2] = '{"payment_id": "P3", "loan_id"'  # line 3
    lines[99_999] = ""  # line 100,000: blank, not a record
    lines[180_000] = "[1]"  # line 180,001
    path = write_lines(tmp_path / "payments.jsonl", lines)
    result, rejects = load(settings, path)
    assert (result.rows_read, result.accepted, result.rejected) == (n - 1, n - 3, 2)
    assert [(r[0], r[2]) for r in rejects] == [(3, "not valid JSON"), (180_001, "record is not a JSON object")]
    with open_writer(settings) as con:
        misplaced = con.execute(
            "SELECT count(*) FROM staging.payments WHERE line_no <> CAST(substr(payment_id, 2) AS BIGINT)"
        ).fetchone()[0]
    assert misplaced == 0


def test_timestamps_are_utc_and_offsets_applied(settings, tmp_path):
    path = write_lines(tmp_path / "calls.jsonl", [
        {"call_id": "K1", "client_id": "C1", "called_at": "2024-02-01T01:00:00+03:00", "outcome": "no_answer"},
        {"call_id": "K2", "client_id": "C1", "called_at": "2024-02-01 01:00", "outcome": "paid"},
    ])
    load(settings, path)
    with open_writer(settings) as con:
        got = con.execute("SELECT call_id, CAST(called_at AS VARCHAR) FROM staging.calls ORDER BY 1").fetchall()
    assert got == [("K1", "2024-01-31 22:00:00"), ("K2", "2024-02-01 01:00:00")]


def test_duplicates_dropped_and_conflicts_quarantined_across_batches(settings, tmp_path):
    p = {"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-02-01T10:00:00Z", "amount": 10}
    first, _ = load(settings, write_lines(tmp_path / "payments_1.jsonl", [p, p]))
    assert (first.accepted, first.duplicates) == (1, 1)
    # same content with other key order and number spelling is a duplicate; other content a conflict
    again = '{"amount": 10.00, "loan_id": "L1", "payment_id": "P1", "paid_at": "2024-02-01T10:00:00Z"}'
    changed = dict(p, amount=11)
    second, rejects = load(settings, write_lines(tmp_path / "payments_2.jsonl", [again, changed]))
    assert (second.rows_read, second.accepted, second.duplicates, second.rejected) == (2, 0, 1, 1)
    assert rejects[0][1:3] == ("payment_id", 'payment_id "P1" conflicts with the record loaded from payments_1.jsonl:1 '
                                             "(same payment_id, different content)")


def test_versions_and_conflicts_of_versioned_entities(settings, tmp_path):
    v1 = dict(LOAN)
    v2 = dict(LOAN, updated_at="2024-02-01T00:00:00Z", status="closed")
    clash = dict(LOAN, amount=999)
    result, rejects = load(settings, write_lines(tmp_path / "loans.jsonl", [v1, v2, clash, v2]))
    assert (result.accepted, result.duplicates, result.rejected) == (2, 1, 1)
    assert rejects[0][2] == 'loan_id "L1" conflicts with line 1 of this file (same loan_id and updated_at, different content)'


def test_deletion_record_needs_only_key_and_updated_at(settings, tmp_path):
    result, _ = load(settings, write_lines(tmp_path / "loans.jsonl", [
        LOAN, {"loan_id": "L1", "deleted": True, "updated_at": "2024-03-01"}]))
    assert (result.accepted, result.rejected) == (2, 0)


def test_same_content_again_is_a_no_op(settings, tmp_path):
    path = write_lines(tmp_path / "loans.jsonl", [LOAN])
    first, _ = load(settings, path)
    again, _ = load(settings, path)
    assert first.status == "loaded" and again.status == "skipped"
    assert "already ingested" in again.message


@pytest.mark.parametrize("name, content, reason", [
    # (mtime=0: a test's id must be the same in every pytest worker, and gzip stamps the time)
    ("loans.jsonl.gz", gzip.compress(b'{"loan_id": "L1"}\n' * 500, mtime=0)[:-40], "the gzip stream is truncated or corrupt"),
    ("loans.json", b'[{"loan_id": "L1"}, {"loan_id": ', "the JSON array is malformed or cut off"),
    ("loans.jsonl", b'{"loan_id": "L1"}\n{"name": "\xff\xfe"}\n', "the file is not UTF-8 encoded (line 2)"),
    ("loans.bin", b"\x00\x01\x02", "unknown file type"),
], ids=["gzip-cut", "json-array-cut", "not-utf8", "unknown-type"])
def test_unreadable_files_are_quarantined_whole(settings, tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    result, rejects = load(settings, path, "loans")
    assert result.status == "rejected"
    assert len(rejects) == 1 and rejects[0][0] is None
    assert rejects[0][2].startswith(reason)


def test_formats_csv_json_array_gzip_bom_and_empty(settings, tmp_path):
    (tmp_path / "loans.csv").write_text(
        "\ufeffloan_id,client_id,amount,issue_date,term_months,schedule,updated_at\n"
        'L1,C1,100,2024-01-01,,"[{""due_date"": ""2024-02-01"", ""principal"": 100}]",2024-01-01\n'
        "L2,C1,oops,2024-01-01,2,,2024-01-01\n"
        'L3,C1,"1,000",2024-01-01,2,,2024-01-01,EXTRA\n'
        "L4,C1,50,2024-01-01,1,,2024-01-01\n",
        encoding="utf-8",
    )
    result, rejects = load(settings, tmp_path / "loans.csv")
    assert (result.rows_read, result.accepted, result.rejected) == (4, 2, 2)
    assert [(r[0], r[2]) for r in rejects] == [
        (3, 'amount "oops" is not a number'), (4, "CSV row is malformed (too many columns)")]
    (tmp_path / "clients.json").write_text(json.dumps([
        {"client_id": "C1", "name": "A", "updated_at": "2024-01-01"},
        {"client_id": "C2", "name": "", "updated_at": "2024-01-01"}]))
    result, rejects = load(settings, tmp_path / "clients.json")
    assert (result.accepted, result.rejected, rejects[0][:3]) == (1, 1, (2, "name", "name is empty"))
    with gzip.open(tmp_path / "merchants.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"merchant_id": "M1", "name": "Shop", "updated_at": "2024-01-01"}) + "\n")
    assert load(settings, tmp_path / "merchants.jsonl.gz")[0].accepted == 1
    (tmp_path / "calls.jsonl").write_text("")
    result, _ = load(settings, tmp_path / "calls.jsonl")
    assert (result.status, result.rows_read) == ("loaded", 0)


def test_accounting_holds_in_the_manifest(settings, tmp_path):
    load(settings, write_lines(tmp_path / "loans.jsonl", [LOAN, LOAN, dict(LOAN, amount="x"), "{"]))
    with open_writer(settings) as con:
        row = con.execute(
            "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected, status FROM meta.batches").fetchone()
    assert row == (4, 1, 1, 2, "partial")
    assert row[0] == row[1] + row[2] + row[3]


def test_cli_ingest_exit_codes_and_messages(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "ok").mkdir()
    good = write_lines(tmp_path / "ok" / "loans.jsonl", [LOAN])
    out = cli("ingest", str(good), home=home)
    assert out.exit_code == 0
    assert "read 1, accepted 1, duplicates 0, rejected 0" in out.stdout
    out = cli("ingest", str(good), home=home)
    assert out.exit_code == 0 and "already ingested" in out.stdout
    (tmp_path / "bad").mkdir()
    bad = write_lines(tmp_path / "bad" / "loans_03.jsonl", [dict(LOAN, loan_id="L9", amount="abc")])
    out = cli("ingest", str(bad), home=home)
    assert out.exit_code == 3
    assert 'loans_03.jsonl:1: amount "abc" is not a number' in out.stderr
    out = cli("rejects", "--format", "csv", home=home)
    assert out.stdout.splitlines()[0] == "entity,file,line,field,reason,raw"
    assert out.stdout.splitlines()[1].startswith('loans,loans_03.jsonl,1,amount,"amount ""abc"" is not a number"')
    assert cli("ingest", str(tmp_path / "nope.jsonl"), home=home).exit_code == 2
    assert cli("ingest", "--entity", "widgets", str(good), home=home).exit_code == 2
    out = cli("batches", "--format", "json", home=home)
    assert [b["status"] for b in json.loads(out.stdout)] == ["loaded", "partial"]
    # A folder (its files hashed ahead, in another thread): each file is recorded with its own hash
    # and recognised by it again.
    folder = tmp_path / "many"
    folder.mkdir()
    for i in (1, 2, 3):
        write_lines(folder / f"loans_{i}.jsonl", [dict(LOAN, loan_id=f"M{i}")])
    assert cli("ingest", str(folder), home=home).exit_code == 0
    again = cli("ingest", str(folder), home=home)
    assert again.exit_code == 0
    assert [line.split(": ", 1)[1] for line in again.stdout.splitlines()] == [
        f"already ingested (batch {batch}, loans_{i}.jsonl)" for i, batch in ((1, 3), (2, 4), (3, 5))
    ]
    with open_writer(load_settings(home, environ={})) as con:
        recorded = dict(con.execute("SELECT file_name, content_hash FROM meta.batches WHERE batch_id >= 3").fetchall())
    assert recorded == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def test_a_file_rewritten_after_it_was_hashed_is_recorded_with_the_content_loaded(settings, tmp_path):
    """Files are hashed ahead of loading; one rewritten in between (a producer still writing) must
    be recorded with the hash of what was loaded, or its first content, delivered again, would be
    skipped as "already ingested" and never loaded."""
    from loanwatch.ingest.load import ingest_paths

    folder = tmp_path / "inbox"
    folder.mkdir()
    write_lines(folder / "payments_1.jsonl", [{"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-02-01", "amount": 5}])
    first = [{"payment_id": "P2", "loan_id": "L1", "paid_at": "2024-02-02", "amount": 6}]
    second = [{"payment_id": "P3", "loan_id": "L1", "paid_at": "2024-02-03", "amount": 70}]
    write_lines(folder / "payments_2.jsonl", first)

    def rewrite_the_next_file(result) -> None:
        if result.path.name == "payments_1.jsonl":  # payments_2 was hashed by now (a tiny file)
            write_lines(folder / "payments_2.jsonl", second)

    with open_writer(settings) as con:
        ingest_paths(con, [folder], on_file=rewrite_the_next_file)
        loaded = con.execute("SELECT payment_id FROM staging.payments ORDER BY 1").fetchall()
        recorded = con.execute("SELECT content_hash FROM meta.batches WHERE file_name = 'payments_2.jsonl'").fetchone()[0]
    assert loaded == [("P1",), ("P3",)]
    assert recorded == hashlib.sha256((folder / "payments_2.jsonl").read_bytes()).hexdigest()
    # the first content, delivered again, is loaded: it never was
    again, _ = load(settings, write_lines(tmp_path / "payments_2_again.jsonl", first))
    assert (again.status, again.accepted) == ("loaded", 1)


def test_upgrade_from_schema_1_drops_record_hash_and_keeps_duplicate_detection(settings, tmp_path):
    """A warehouse written before schema 2 had a record_hash column in every staging table;
    `init` drops it, and a record sent again is still told from a changed one by its content."""
    import duckdb

    settings.home.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.schema_version (version INTEGER, applied_at TIMESTAMP)")
    con.execute("INSERT INTO meta.schema_version VALUES (1, now())")
    con.execute("""CREATE SCHEMA staging; CREATE TABLE staging.payments (batch_id BIGINT, file_name VARCHAR,
                   line_no BIGINT, record VARCHAR, record_hash VARCHAR, payment_id VARCHAR, loan_id VARCHAR,
                   paid_at TIMESTAMP, amount DECIMAL(18,2), type VARCHAR, reverses VARCHAR, channel VARCHAR)""")
    con.execute("""INSERT INTO staging.payments VALUES (1, 'old.jsonl', 4, '{}', 'abc', 'P1', 'L1',
                   '2024-02-15 10:00:00', 100.00, 'payment', NULL, NULL)""")
    con.close()

    same = {"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-02-15T10:00:00Z", "amount": "100.0"}
    changed = {**same, "payment_id": "P1", "amount": 90}
    result, rejects = load(settings, write_lines(tmp_path / "payments_2.jsonl", [same, changed]))
    assert (result.accepted, result.duplicates, result.rejected) == (0, 1, 1)
    assert rejects[0][:2] == (2, "payment_id")
    assert "conflicts with the record loaded from old.jsonl:4" in rejects[0][2]
    with open_writer(settings) as con:
        columns = [r[0] for r in con.execute("DESCRIBE staging.payments").fetchall()]
        assert "record_hash" not in columns
        assert con.execute("SELECT max(version) FROM meta.schema_version").fetchone()[0] == 2
