"""Ingest as an unattended daily service: a fault of the machine (memory, a full temp folder) is
never a quarantined file. Nothing of the file is recorded as seen; the command says so in one line
(exit 1) and the next run loads it. Only a fault of a file's content quarantines it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loanwatch.warehouse import connect
from tests.conftest import assert_no_traceback, run_cli
from tests.unit.test_hardening_ingest import needs_mount

pytestmark = pytest.mark.integration


def _manifest(home):
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        batches = dict(con.execute("SELECT file_name, status FROM meta.batches").fetchall())
        rejects = con.execute("SELECT file_name, reason FROM meta.rejects").fetchall()
    finally:
        con.close()
    return batches, rejects


def test_out_of_memory_is_not_the_files_fault_and_the_next_run_loads_it(tmp_path):
    raw = tmp_path / "raw"
    made = run_cli("generate", "--clients", "300", "--seed", "3", "--end", "2025-06-30", "--out", raw)
    assert made.returncode == 0, made.stderr
    home = tmp_path / "home"
    # 8 MB is too little for the larger files (calls, payments) of 300 clients, enough for the rest
    starved = run_cli("--home", home, "ingest", raw, env={"LOANWATCH_WAREHOUSE__MEMORY_LIMIT": "8MB"})
    assert starved.returncode == 1, starved.stdout + starved.stderr
    line = starved.stderr.strip().splitlines()[-1]
    assert "was not loaded (nothing of it is recorded): the machine ran out of memory" in line
    failed = line.removeprefix("error: ").split(" ")[0]
    batches, rejects = _manifest(home)
    assert failed not in batches and rejects == []  # neither seen nor quarantined
    assert "quarantined" not in starved.stderr
    assert batches and set(batches.values()) == {"loaded"}  # the files that fit loaded all the same
    again = run_cli("--home", home, "ingest", raw)
    assert again.returncode == 0, again.stderr
    batches, rejects = _manifest(home)
    assert len(batches) == 11 and set(batches.values()) == {"loaded"} and rejects == []
    assert batches[failed] == "loaded"


MAPPING = """
[[files]]
match = "pagos*.csv"
entity = "payments"
encoding = "latin-1"

[files.fields]
payment_id = "id"
loan_id = "prestamo"
paid_at = "fecha"
amount = "monto"
"""


@needs_mount
def test_a_full_temp_folder_is_not_the_files_fault(tmp_path):
    """A latin-1 export is decoded into a UTF-8 copy in $TMPDIR: with $TMPDIR full (a 64 KB
    file system), the file is not loaded and not quarantined; with room, the same command loads it."""
    (tmp_path / "mapping.toml").write_text(MAPPING)
    rows = "".join(f"P{i},L1,2024-01-0{1 + i % 9}T10:00:00Z,{10 + i}.50\n" for i in range(4000))
    (tmp_path / "pagos_año.csv").write_bytes(("id,prestamo,fecha,monto\n" + rows).encode("latin-1"))
    home = tmp_path / "home"
    (tmp_path / "fs").mkdir()
    cmd = " ".join(["mount -t tmpfs -o size=64k tmpfs", str(tmp_path / "fs"), "&&", f"TMPDIR={tmp_path / 'fs'}",
                    sys.executable, "-c", "'from loanwatch.cli import run; run()'", "--home", str(home), "ingest",
                    "--mapping", str(tmp_path / "mapping.toml"), str(tmp_path / "pagos_año.csv")])
    full = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert_no_traceback(full.stdout, full.stderr)
    assert full.returncode == 1, full.stdout + full.stderr
    assert "pagos_año.csv was not loaded (nothing of it is recorded)" in full.stderr
    assert "no space left on the device" in full.stderr and "quarantined" not in full.stderr
    assert _manifest(home) == ({}, [])
    done = run_cli("--home", home, "ingest", "--mapping", tmp_path / "mapping.toml", tmp_path / "pagos_año.csv")
    assert done.returncode == 0, done.stderr
    assert _manifest(home) == ({"pagos_año.csv": "loaded"}, [])



HALF_CSV = "payment_id,loan_id,paid_at,amount\nP1,L1,2024-01-01T10:00:00Z,100.00\nP2,L1,2024-01-02T10:00:00Z,1234"
HALF_NDJSON = ('{"payment_id":"Q1","loan_id":"L1","paid_at":"2024-01-01T10:00:00Z","amount":5}\n'
               '{"payment_id":"Q2","loan_id":"L1","paid_at":"2024-01-01T10:00:00Z","amount":12')


def _staged(home):
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        return dict(con.execute("SELECT payment_id, CAST(amount AS VARCHAR) FROM staging.payments").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("name, half, rest", [
    ("payments_1.csv", HALF_CSV, "5.67\n"),          # cut inside an amount: 1234 of 12345.67
    ("payments_2.jsonl", HALF_NDJSON, ".5}\n"),      # cut inside a record: not even JSON
    ("payments_3.csv", HALF_CSV.replace("1234", '"1234'), '5.67"\n'),  # cut inside a quoted value
])
def test_a_file_still_being_written_loads_its_ended_lines_then_the_rest(tmp_path, name, half, rest):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    (inbox / name).write_text(half)
    first = run_cli("--home", home, "ingest", inbox)
    assert first.returncode == 3, first.stderr  # the unended line is quarantined, with its reason
    assert len(_staged(home)) == 1  # P1 or Q1: the cut value never loads as another number
    assert "1234" not in _staged(home).values()
    if not half.endswith('"1234'):
        assert f"{name}:3: the last line has no line end" in first.stderr or f"{name}:2: the last line has no line end" in first.stderr
    (inbox / name).write_text(half + rest)  # the writer finishes the file
    second = run_cli("--home", home, "ingest", inbox)
    assert second.returncode == 0, second.stderr
    assert "accepted 1, duplicates 1, rejected 0" in second.stdout  # the first row again, the finished one new
    assert set(_staged(home).values()) in ({"100.00", "12345.67"}, {"5.00", "12.50"})


def test_an_unclosed_json_array_loads_nothing_until_it_is_closed(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    records = '[{"payment_id":"A1","loan_id":"L1","paid_at":"2024-01-01T10:00:00Z","amount":5},\n' \
              ' {"payment_id":"A2","loan_id":"L1","paid_at":"2024-01-01T10:00:00Z","amount":7'
    (inbox / "payments_a.json").write_text(records)
    first = run_cli("--home", home, "ingest", inbox)
    assert first.returncode == 3 and "cut off" in first.stderr
    assert _staged(home) == {}
    (inbox / "payments_a.json").write_text(records + "}]\n")
    assert run_cli("--home", home, "ingest", inbox).returncode == 0
    assert _staged(home) == {"A1": "5.00", "A2": "7.00"}


def test_settle_seconds_leaves_a_fresh_file_for_the_next_run(tmp_path):
    """[run] settle_seconds: a file modified within it is left for the next run, and said so; an
    older one loads. A negative value is a usage error naming the key."""
    import os
    import time

    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    (inbox / "payments_old.csv").write_text(HALF_CSV + "5.67\n")
    (inbox / "payments_new.jsonl").write_text(HALF_NDJSON + ".5}\n")
    hour_ago = time.time() - 3600
    os.utime(inbox / "payments_old.csv", (hour_ago, hour_ago))
    env = {"LOANWATCH_RUN__SETTLE_SECONDS": "600", "LOANWATCH_RUN__NOTIFY": "false"}
    first = run_cli("--home", home, "run", "--inbox", inbox, env=env)
    assert first.returncode == 0, first.stderr
    assert "files waiting 1" in first.stdout
    assert "left for the next run, modified within [run] settle_seconds: payments_new.jsonl" in first.stdout
    assert set(_staged(home)) == {"P1", "P2"}
    os.utime(inbox / "payments_new.jsonl", (hour_ago, hour_ago))  # ten minutes later, as it were
    second = run_cli("--home", home, "run", "--inbox", inbox, env=env)
    assert second.returncode == 0, second.stderr
    assert set(_staged(home)) == {"P1", "P2", "Q1", "Q2"}
    bad = run_cli("--home", home, "run", "--inbox", inbox, env={"LOANWATCH_RUN__SETTLE_SECONDS": "-1"})
    assert bad.returncode == 2 and "[run] settle_seconds = -1" in bad.stderr


PAYMENT = '{"payment_id":"%s","loan_id":"L1","paid_at":"2024-01-01T10:00:00Z","amount":10%s}\n'


def test_links_out_of_the_inbox_are_not_followed_and_nothing_blocks_the_rest(tmp_path):
    """A link to a file outside the inbox is not followed (its lines would show in `rejects`), a
    link to nothing is reported, hidden folders (a writer's temporary names) and a home inside the
    inbox are never read, a file this user may not read is passed over: the rest loads, exit 3,
    the next run says the same and loads what became readable."""
    import os

    inbox = tmp_path / "inbox"
    (inbox / ".partial").mkdir(parents=True)
    (inbox / "payments_ok.jsonl").write_text(PAYMENT % ("P1", ""))
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:secret line\n")
    (inbox / "clients_x.csv").symlink_to(secret)
    (inbox / "payments_gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (inbox / ".partial" / "payments_half.jsonl").write_text(PAYMENT % ("P9", ""))
    (inbox / "sub").mkdir()
    (inbox / "sub" / "payments_in.jsonl").write_text(PAYMENT % ("P2", ""))
    (inbox / "link_in.jsonl").symlink_to(inbox / "sub" / "payments_in.jsonl")  # inside: followed
    outside = tmp_path / "partner"
    outside.mkdir()
    (outside / "payments_partner.jsonl").write_text(PAYMENT % ("P7", ""))
    (inbox / "partner").symlink_to(outside)  # a linked folder out of the inbox: said, not followed
    locked = inbox / "payments_locked.jsonl"
    locked.write_text(PAYMENT % ("P3", ""))
    locked.chmod(0)
    home = inbox / "home"  # a home inside the inbox
    env = {"LOANWATCH_RUN__NOTIFY": "false"}
    try:
        first = run_cli("--home", home, "run", "--inbox", inbox, env=env)
        assert first.returncode == 3, first.stdout + first.stderr
        assert "clients_x.csv: a link to" in first.stdout and "outside the folders given: not followed" in first.stdout
        assert "payments_gone.jsonl: a link to nothing" in first.stdout
        assert f"partner: a link to the folder {outside.resolve()}, outside the folders given: not followed" in first.stdout
        rejected = run_cli("--home", home, "rejects", "--format", "csv")
        assert "secret" not in rejected.stdout
        if os.geteuid() != 0:  # root reads any file: the permission case is for everyone else
            assert "payments_locked.jsonl: permission denied" in first.stdout
        staged = set(_staged(home))
        assert {"P1", "P2"} <= staged and "P9" not in staged and "P7" not in staged
        again = run_cli("--home", home, "run", "--inbox", inbox, env=env)  # nothing new: said again, exit 3
        assert again.returncode == 3, again.stdout + again.stderr
        assert "nothing new since the last build; " in again.stderr and "file(s) passed over: clients_x.csv" in again.stderr
        by_hand = run_cli("--home", home, "ingest", inbox)
        assert by_hand.returncode == 3 and "not loaded: " in by_hand.stderr and "outside the folders given" in by_hand.stderr
        assert "warehouse.duckdb" not in by_hand.stdout + by_hand.stderr  # the home's own files are not input
    finally:
        locked.chmod(0o644)


def test_a_file_a_mapping_cannot_read_is_passed_over_by_run_but_stops_ingest_by_hand(tmp_path):
    """[run] mapping with one export whose column was renamed: the daily run reports that file and
    loads the others (exit 3); `ingest --mapping` by hand keeps its strict usage error (exit 2,
    nothing loaded)."""
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    (tmp_path / "mapping.toml").write_text(MAPPING.replace('encoding = "latin-1"\n', ""))
    (inbox / "pagos_1.csv").write_text("id,prestamo,fecha,monto\nP1,L1,2024-01-01T10:00:00Z,10\n")
    (inbox / "pagos_2.csv").write_text("id,prestamo,fecha,importe\nP2,L1,2024-01-01T10:00:00Z,10\n")  # renamed
    env = {"LOANWATCH_RUN__MAPPING": str(tmp_path / "mapping.toml"), "LOANWATCH_RUN__NOTIFY": "false"}
    ran = run_cli("--home", home, "run", "--inbox", inbox, env=env)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "pagos_2.csv" in ran.stdout and "monto" in ran.stdout
    assert set(_staged(home)) == {"P1"}
    by_hand = run_cli("--home", tmp_path / "home2", "ingest", "--mapping", tmp_path / "mapping.toml", inbox)
    assert by_hand.returncode == 2 and "monto" in by_hand.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "jsonl.gz"])
def test_a_record_of_31_mb_loads_with_the_rest(tmp_path, fmt):
    """A 31 MB record among 60,000 small ones: every row loads (the reader once failed the whole
    NDJSON file, and dropped the CSV row without a word); above [ingest] max_record_bytes an NDJSON
    record is quarantined alone, a CSV file whole, each with the setting named."""
    import gzip

    n, big = 60_000, 30_000  # the size at which the reader failed the file (NDJSON) or lost the row (CSV)
    if fmt == "csv":
        text = "payment_id,loan_id,paid_at,amount,note\n" + "".join(
            f"P{i},L1,2024-01-01T10:00:00Z,10,{'x' * 31_000_000 if i == big else ''}\n" for i in range(n))
    else:
        text = "".join(PAYMENT % (f"P{i}", ', "note": "%s"' % ("x" * 31_000_000) if i == big else "") for i in range(n))
    path = tmp_path / f"payments_big.{fmt}"
    path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    loaded = run_cli("--home", tmp_path / "home", "ingest", path)
    assert loaded.returncode == 0, loaded.stderr
    assert len(_staged(tmp_path / "home")) == n
    small = run_cli("--home", tmp_path / "home2", "ingest", path, env={"LOANWATCH_INGEST__MAX_RECORD_BYTES": "10000000"})
    assert small.returncode == 3
    assert "more than [ingest] max_record_bytes (10,000,000)" in small.stderr
    if fmt == "csv":
        assert _staged(tmp_path / "home2") == {}
    else:
        assert len(_staged(tmp_path / "home2")) == n - 1 and f"P{big}" not in _staged(tmp_path / "home2")


def test_a_gzip_file_that_inflates_without_limit_is_quarantined_unread(tmp_path):
    import gzip

    bomb = tmp_path / "payments_bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as f:
        for _ in range(40):
            f.write(b" " * (1 << 20))  # 40 MB of spaces: a few kilobytes compressed
        f.write((PAYMENT % ("P1", "")).encode())
    assert bomb.stat().st_size < 200_000
    out = run_cli("--home", tmp_path / "home", "ingest", bomb, env={"LOANWATCH_INGEST__MAX_UNCOMPRESSED_BYTES": "10000000"})
    assert out.returncode == 3
    assert "inflates to more than [ingest] max_uncompressed_bytes (10,000,000 bytes)" in out.stderr
    assert run_cli("--home", tmp_path / "home3", "ingest", bomb).returncode == 0  # under the default, it loads


def test_a_file_written_to_while_it_is_read_is_left_for_the_next_run(tmp_path, monkeypatch):
    """The hash, the line ends and the rows must speak of the same bytes: a file appended to after
    it was hashed (here: while it is read) is not recorded at all, and the next run loads it whole."""
    from loanwatch.config import load_settings
    from loanwatch.ingest import load, run

    path = tmp_path / "payments_1.csv"
    path.write_text(HALF_CSV)
    original = load.read_lines

    def read_then_finish(*args, **kwargs):
        out = original(*args, **kwargs)
        with path.open("a") as f:
            f.write("5.67\n")  # the writer finishes the file while loanwatch reads it
        return out

    settings = load_settings(tmp_path / "home", environ={})
    monkeypatch.setattr(load, "read_lines", read_then_finish)
    [first] = run(settings, [path])
    assert first.status == "waiting" and "changed while it was being read" in first.message
    monkeypatch.setattr(load, "read_lines", original)
    [second] = run(settings, [path])
    assert (second.status, second.accepted, second.rejected) == ("loaded", 2, 0)
    assert _staged(tmp_path / "home") == {"P1": "100.00", "P2": "12345.67"}


def test_a_csv_record_spanning_many_lines_past_the_readers_limit_loads_whole(tmp_path):
    """A quoted note of 30,000 lines (3 MB in all, each line short) in one record: the reader's
    2 MB limit is on the record, which broke into thousands of rows missing columns; it loads
    as one record, and the file's truly malformed row is still quarantined alone."""
    note = '"' + "\n".join(["x" * 99] * 30_000) + '"'
    rows = ["payment_id,loan_id,paid_at,amount,note"] + [
        f"P{i},L1,2024-01-01T10:00:00Z,10," + (note if i == 50 else "") for i in range(100)] + ["P100,L1,too,many,columns,here"]
    path = tmp_path / "payments_ml.csv"
    path.write_text("\n".join(rows) + "\n")
    out = run_cli("--home", tmp_path / "home", "ingest", path)
    assert out.returncode == 3, out.stderr
    assert "read 101, accepted 100, duplicates 0, rejected 1" in out.stdout
    assert len(_staged(tmp_path / "home")) == 100
