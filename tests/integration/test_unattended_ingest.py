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

