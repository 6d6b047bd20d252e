"""Ingest under attack (issue: hardening): file names that look like patterns, records of any
size, dates that cannot be, fields given twice, files that are not files, a full disk, a
read-only home, terminal escapes in data, bad settings. Each class in at least two shapes; every
CLI run goes through the traceback guard (tests/conftest.py)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loanwatch.warehouse import connect
from tests.conftest import assert_no_traceback, cli

pytestmark = pytest.mark.unit

PAY = {"loan_id": "L1", "paid_at": "2024-01-01T10:00:00Z", "amount": 10}


def payments(path: Path, ids, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"payment_id": i, **PAY, **(extra or {})}) + "\n" for i in ids), encoding="utf-8")
    return path


def write_payments(path: Path, recs: list[dict]) -> Path:
    """Payment records in the format the name says: .csv, .json (an array), .jsonl, .jsonl.gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".csv"):
        path.write_text("payment_id,loan_id,paid_at,amount,note\n" + "".join(
            f"{r['payment_id']},{r['loan_id']},{r['paid_at']},{r['amount']},{r.get('note', '')}\n" for r in recs))
    elif name.endswith(".json"):
        path.write_text(json.dumps(recs))
    else:
        text = "".join(json.dumps(r) + "\n" for r in recs)
        path.write_bytes(gzip.compress(text.encode())) if name.endswith(".gz") else path.write_text(text)
    return path


def staged(home: Path, table: str = "payments") -> dict[str, list[str]]:
    """file name -> sorted ids of the rows loaded from it."""
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        key = {"payments": "payment_id", "loans": "loan_id"}[table]
        rows = con.execute(f"SELECT file_name, list({key} ORDER BY {key}) FROM staging.{table} GROUP BY 1").fetchall()
    finally:
        con.close()
    return dict(rows)


def rejects(home: Path) -> list[dict]:
    result = cli("rejects", "--format", "json", home=home)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- 3. file names are literal ------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "payments_[ab].jsonl",        # a character class: would read payments_a and payments_b
    "payments_*.jsonl",           # a wildcard
    "payments_?.jsonl",           # one character
    "payments_{a,b}.jsonl",       # braces
    "payments_it's \\ ~ $HOME.jsonl",  # quote, backslash, tilde, dollar
    "payments_\u00e9\u4e2d \u202e.jsonl",  # non-ASCII, a bidi control
])
def test_a_file_name_is_read_as_itself_never_as_a_pattern(tmp_path, name):
    folder = tmp_path / "in"
    payments(folder / "payments_a.jsonl", ["A1"])
    payments(folder / "payments_b.jsonl", ["B1"])
    target = payments(folder / name, ["OWN1", "OWN2"])
    result = cli("ingest", target, home=tmp_path / "home")
    assert result.exit_code == 0, result.stderr
    assert staged(tmp_path / "home") == {name: ["OWN1", "OWN2"]}


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl.gz"])
def test_pattern_names_are_literal_in_every_format(tmp_path, suffix):
    folder = tmp_path / "in"
    write_payments(folder / f"payments_a{suffix}", [{"payment_id": "DECOY", **PAY}])
    write_payments(folder / f"payments_[ab]{suffix}", [{"payment_id": f"X{k}", **PAY} for k in (1, 2)])
    result = cli("ingest", folder / f"payments_[ab]{suffix}", home=tmp_path / "home")
    assert result.exit_code == 0, result.stderr
    assert staged(tmp_path / "home") == {f"payments_[ab]{suffix}": ["X1", "X2"]}


def test_split_reads_pattern_names_literally(tmp_path):
    folder = tmp_path / "in"
    payments(folder / "payments_a.jsonl", ["DECOY"])
    (folder / "payments_[ab].csv").write_text("payment_id,loan_id,paid_at,amount\nC1,L1,2024-01-01T10:00:00Z,10\n")
    result = cli("split", folder / "payments_[ab].csv", "--parts", "1", "--out", tmp_path / "parts")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "parts" / "part_01" / "payments_[ab].csv").read_text().splitlines()[1].startswith("C1,")


# --- 4. one long record is loaded or quarantined alone ------------------------------------------

BIG = "x" * 3_000_000  # 3 MB: beyond the readers' 2 MB default line limit


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "jsonl.gz"])
@pytest.mark.parametrize("valid", [True, False])
def test_a_long_record_is_loaded_or_quarantined_alone(tmp_path, fmt, valid):
    recs = [{"payment_id": f"P{k:03d}", **PAY} for k in range(1, 101)]
    recs[49]["note"] = BIG                    # line 50 of 100 (row 50 of the CSV: line 51)
    if not valid:
        recs[49]["amount"] = -1               # the long record breaks a rule: quarantined alone
    path = write_payments(tmp_path / "in" / f"payments.{fmt}", recs)
    result = cli("ingest", path, home=tmp_path / "home")
    loaded = staged(tmp_path / "home").get(path.name, [])
    if valid:
        assert result.exit_code == 0, result.stderr
        assert len(loaded) == 100
    else:
        assert result.exit_code == 3
        assert len(loaded) == 99 and "P050" not in loaded
        line = 51 if fmt == "csv" else 50
        [reject] = rejects(tmp_path / "home")
        assert (reject["line"], reject["field"]) == (line, "amount")
        assert len(reject["raw"]) > 3_000_000  # the raw record kept whole


# --- 5. dates that cannot be --------------------------------------------------------------------

def test_business_dates_in_the_future_or_before_1900_and_bad_offsets_are_quarantined(tmp_path):
    lines = [
        {"payment_id": "OK1", "loan_id": "L1", "paid_at": "2024-01-01T10:00:00+14:00", "amount": 1},
        {"payment_id": "OK2", "loan_id": "L1", "paid_at": "2024-01-01T10:00:00.5-12:00", "amount": 1},
        {"payment_id": "FUTURE", "loan_id": "L1", "paid_at": "9999-12-31T00:00:00Z", "amount": 1},
        {"payment_id": "OLD", "loan_id": "L1", "paid_at": "1024-06-30", "amount": 1},
        {"payment_id": "EAST", "loan_id": "L1", "paid_at": "2024-01-01T10:00:00+15:00", "amount": 1},
        {"payment_id": "WEST", "loan_id": "L1", "paid_at": "2024-01-01 10:00:00-1430", "amount": 1},
    ]
    path = tmp_path / "payments.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert cli("ingest", path, home=tmp_path / "home").exit_code == 3
    reasons = {r["line"]: r["reason"] for r in rejects(tmp_path / "home")}
    assert set(reasons) == {3, 4, 5, 6}
    assert "is in the future" in reasons[3] and "max_future_days" in reasons[3]
    assert reasons[4] == 'paid_at "1024-06-30" is before 1900-01-01'
    assert "UTC offset beyond ±14:00" in reasons[5] and "UTC offset beyond ±14:00" in reasons[6]
    assert staged(tmp_path / "home") == {"payments.jsonl": ["OK1", "OK2"]}


def test_an_issue_date_typo_does_not_move_the_data_date_and_due_dates_may_be_future(tmp_path):
    import datetime as dt

    soon = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    loans = [
        {"loan_id": "TYPO", "client_id": "C1", "amount": 100, "issue_date": "9999-12-31", "term_months": 1,
         "updated_at": "2024-01-01T00:00:00Z"},
        {"loan_id": "TOMORROW", "client_id": "C1", "amount": 100, "issue_date": soon, "term_months": 1,
         "updated_at": "2024-01-01T00:00:00Z"},
        {"loan_id": "LATER", "client_id": "C1", "amount": 100, "issue_date": later, "term_months": 1,
         "updated_at": "2024-01-01T00:00:00Z"},
        # an explicit schedule may fall due in the future
        {"loan_id": "SCHEDULED", "client_id": "C1", "amount": 100, "issue_date": "2024-01-01",
         "schedule": [{"due_date": "2999-01-01", "principal": 100}], "updated_at": "2024-01-01T00:00:00Z"},
    ]
    path = tmp_path / "loans.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in loans))
    assert cli("ingest", path, home=tmp_path / "home").exit_code == 3
    assert staged(tmp_path / "home", "loans") == {"loans.jsonl": ["SCHEDULED", "TOMORROW"]}
    assert sorted(r["line"] for r in rejects(tmp_path / "home")) == [1, 3]
    # the setting widens the window: 30 days ahead is accepted with max_future_days = 31
    again = tmp_path / "loans_again.jsonl"
    again.write_text(json.dumps(loans[2]) + "\n")
    ok = cli("ingest", again, home=tmp_path / "home2", env={"LOANWATCH_INGEST__MAX_FUTURE_DAYS": "31"})
    assert ok.exit_code == 0, ok.stderr


# --- 7. a field given twice is ambiguous --------------------------------------------------------

def test_a_field_given_twice_is_quarantined_in_every_format(tmp_path):
    nd = tmp_path / "loans.jsonl"
    nd.write_text(
        '{"loan_id": "D1", "client_id": "C1", "amount": 1000, "amount": 2000, "issue_date": "2024-01-01", '
        '"term_months": 3, "updated_at": "2024-01-01T00:00:00Z"}\n'
        # the same name nested in an unknown field is not a repeat of the loan's amount
        '{"loan_id": "D2", "client_id": "C1", "amount": 1000, "issue_date": "2024-01-01", "term_months": 3, '
        '"updated_at": "2024-01-01T00:00:00Z", "meta": {"amount": 5}}\n'
        '{"loan_id": "D3", "loan_id": "D3", "client_id": "C1", "amount": 1000, "issue_date": "2024-01-01", '
        '"term_months": 3, "updated_at": "2024-01-01T00:00:00Z"}\n')
    arr = tmp_path / "payments_arr.json"
    arr.write_text('[{"payment_id": "A1", "loan_id": "L1", "paid_at": "2024-01-01", "amount": 1, "amount": 2},'
                   ' {"payment_id": "A2", "loan_id": "L1", "paid_at": "2024-01-01", "amount": 1}]')
    csv_file = tmp_path / "payments_dup.csv"
    csv_file.write_text("payment_id,loan_id,paid_at,amount,amount\nC1,L1,2024-01-01,1,2\n")
    result = cli("ingest", nd, arr, csv_file, home=tmp_path / "home")
    assert result.exit_code == 3
    found = {(r["file"], r["line"]): r["reason"] for r in rejects(tmp_path / "home")}
    assert found == {
        ("loans.jsonl", 1): 'field "amount" appears twice in the record: its value is ambiguous',
        ("loans.jsonl", 3): 'field "loan_id" appears twice in the record: its value is ambiguous',
        ("payments_arr.json", 1): 'field "amount" appears twice in the record: its value is ambiguous',
        ("payments_dup.csv", None): 'the header names column "amount" twice: its values are ambiguous',
    }
    assert staged(tmp_path / "home", "loans") == {"loans.jsonl": ["D2"]}
    # a producer that cannot repeat a key may skip the check (a second parse of every record)
    off = cli("ingest", nd, home=tmp_path / "home_off", env={"LOANWATCH_INGEST__CHECK_REPEATED_KEYS": "false"})
    assert off.exit_code == 0
    assert staged(tmp_path / "home_off", "loans") == {"loans.jsonl": ["D1", "D2", "D3"]}


def test_a_repeat_is_found_among_records_that_share_one_key_list(tmp_path):
    """Most records give the same keys in the same order (the check compares them as a list with
    one of them): a record that adds a repeat to that list, or repeats one in place of another
    key, is still caught, and one that gives its keys in another order still loads."""
    lines = [json.dumps({"payment_id": f"P{i:02}", "loan_id": "L1", "paid_at": "2024-01-01", "amount": 1})
             for i in range(40)]
    lines.insert(20, '{"payment_id": "R1", "loan_id": "L1", "paid_at": "2024-01-01", "amount": 1, "amount": 2}')
    lines.insert(30, '{"payment_id": "R2", "loan_id": "L1", "paid_at": "2024-01-01", "paid_at": "2024-01-02"}')
    lines.insert(35, '{"amount": 3, "paid_at": "2024-01-01", "loan_id": "L1", "payment_id": "O1"}')
    path = tmp_path / "payments.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert cli("ingest", path, home=tmp_path / "home").exit_code == 3
    assert {(r["line"], r["reason"]) for r in rejects(tmp_path / "home")} == {
        (21, 'field "amount" appears twice in the record: its value is ambiguous'),
        (31, 'field "paid_at" appears twice in the record: its value is ambiguous'),
    }
    assert staged(tmp_path / "home") == {"payments.jsonl": ["O1"] + [f"P{i:02}" for i in range(40)]}


# --- 9. files that are not files; settings; a full disk; a read-only home -----------------------

def test_a_fifo_or_a_device_is_never_read(tmp_path):
    fifo = tmp_path / "payments_pipe.jsonl"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        result = cli("ingest", target, home=tmp_path / "home")
        assert result.exit_code == 2
        assert "not a file" in result.stderr and str(target) in result.stderr
    # inside a folder: reported and passed over, the rest loads
    folder = tmp_path / "in"
    payments(folder / "payments_ok.jsonl", ["P1"])
    os.mkfifo(folder / "payments_fifo.jsonl")
    result = cli("ingest", folder, home=tmp_path / "home")
    assert result.exit_code == 3
    assert "payments_fifo.jsonl: a named pipe (FIFO), not a file: not read" in result.stdout
    assert staged(tmp_path / "home") == {"payments_ok.jsonl": ["P1"]}


@pytest.mark.parametrize("env, toml, expected", [
    ({"LOANWATCH_WAREHOUSE__TOLERANCE": "abc"}, None,
     "LOANWATCH_WAREHOUSE__TOLERANCE='abc' is not a number (the default is 0.0)"),
    ({"LOANWATCH_WAREHOUSE__DPD_COUNTS_DUE_DAY": "maybe"}, None, "is not true or false"),
    ({"LOANWATCH_WAREHOUSE__LOCK_TIMEOUT": "soon"}, None, "is not a whole number"),
    ({"LOANWATCH_CONFIG": "/dev/zero"}, None, "LOANWATCH_CONFIG=/dev/zero: not a file"),
    ({}, '[warehouse]\ntolerance = "abc"\n', '[warehouse] tolerance = \'abc\' is not a number'),
    ({}, "[warehouse\n", "not valid TOML"),
])
def test_a_bad_setting_is_one_line_naming_it(tmp_path, env, toml, expected):
    if toml is not None:
        (tmp_path / "loanwatch.toml").write_text(toml)
        env = {**env, "LOANWATCH_CONFIG": str(tmp_path / "loanwatch.toml")}
    for args in (["report", "loans"], ["batches"], ["ingest", tmp_path]):
        result = cli(*args, home=tmp_path / "home", env=env)
        assert result.exit_code == 2, (args, result.stderr)
        assert expected in result.stderr
        assert result.stderr.count("\n") == 1  # one line


def _can_mount() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m) for a small or read-only file system")


def _in_small_fs(tmp_path, options: str, *args: str) -> subprocess.CompletedProcess:
    """Run loanwatch with <tmp>/fs a fresh tmpfs mounted with `options`, in a private mount namespace."""
    (tmp_path / "fs").mkdir(exist_ok=True)
    cmd = " ".join(["mount -t tmpfs -o", options, "tmpfs", str(tmp_path / "fs"), "&&",
                    sys.executable, "-c", "'from loanwatch.cli import run; run()'", *args])
    done = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert_no_traceback(done.stdout, done.stderr)
    return done


@needs_mount
def test_a_full_disk_is_named_and_nothing_is_half_loaded(tmp_path):
    import random
    import string

    rng = random.Random(1)
    path = tmp_path / "payments_full.jsonl"  # incompressible enough to overflow a 3 MB file system
    path.write_text("".join(json.dumps({"payment_id": f"P{i}", **PAY, "channel": "".join(rng.choices(string.ascii_letters, k=60))}) + "\n"
                            for i in range(100_000)))
    home = tmp_path / "fs" / "home"
    done = _in_small_fs(tmp_path, "size=3m", "--home", str(home), "ingest", str(path), ";",
                        sys.executable, "-c", "'from loanwatch.cli import run; run()'", "--home", str(home), "batches", "-f", "csv")
    assert "no space left on the device; free some space" in done.stderr
    assert "quarantined" not in done.stderr  # the file is not blamed for the disk
    # the batches listing, run after it in the same namespace, shows no batch: nothing half-loaded
    assert done.stdout.strip().splitlines() == [
        "batch_id,entity,file_name,rows_read,rows_accepted,rows_duplicate,rows_rejected,status,message,ingested_at"]


@needs_mount
def test_a_read_only_home_is_named(tmp_path):
    path = payments(tmp_path / "payments.jsonl", ["P1"])
    for args in (["ingest", str(path)], ["build"], ["init"]):
        done = _in_small_fs(tmp_path, "ro,size=1m", "--home", str(tmp_path / "fs" / "home"), *args)
        assert done.returncode == 1, done.stderr
        assert "the file system is read-only; choose a writable folder with --home" in done.stderr


# --- 10. terminal escapes in data are shown escaped ---------------------------------------------

EVIL = "\x1b]0;TITLE\x07\x1b[2J"


def test_control_characters_are_shown_escaped_in_ingest_rejects_and_batches(tmp_path):
    # JSON carries them escaped (\u001b); CSV carries the bytes themselves
    path = tmp_path / "payments.jsonl"
    path.write_text(json.dumps({"payment_id": "P1" + EVIL, "loan_id": "L1", "paid_at": "2024-01-01",
                                "amount": "ten" + EVIL}) + "\n")
    raw_csv = tmp_path / "payments_raw.csv"
    raw_csv.write_text(f"payment_id,loan_id,paid_at,amount\nQ{EVIL},L1,2024-01-01,x{EVIL}\n")
    named = tmp_path / ("payments_" + EVIL + ".jsonl")  # a file name may hold them too
    payments(named, ["P2"])
    result = cli("ingest", path, raw_csv, named, home=tmp_path / "home")
    assert result.exit_code == 3
    wide = {"COLUMNS": "240"}  # the escaped text whole on one line
    table = cli("rejects", home=tmp_path / "home", env=wide)
    listing = cli("batches", home=tmp_path / "home", env=wide)
    for out in (result.stdout, result.stderr, table.stdout, listing.stdout):
        assert "\x1b" not in out and "\x07" not in out
    assert 'amount "ten\\x1b]0;TITLE\\x07\\x1b[2J"' in result.stderr  # the quarantine example, escaped
    assert "payments_\\x1b]0;TITLE\\x07\\x1b[2J.jsonl" in result.stdout  # the file name, escaped
    assert "\\x1b]0;TITLE" in table.stdout and "payments_\\x1b]0;TITLE" in listing.stdout
    # programs get the data exactly: a CSV row's record is JSON, which escapes them by its own rules
    rows = json.loads(cli("rejects", "-f", "json", home=tmp_path / "home").stdout)
    record = json.loads([r for r in rows if r["file"] == "payments_raw.csv"][0]["raw"])
    assert record["payment_id"] == "Q" + EVIL
