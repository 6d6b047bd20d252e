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
    again = run_cli("--home", home, "ingest", raw)
    assert again.returncode == 0, again.stderr
    batches, rejects = _manifest(home)
    assert len(batches) == 9 and set(batches.values()) == {"loaded"} and rejects == []
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
