"""SIGKILL at any moment, then run again: the same warehouse as an uninterrupted run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.generate.portfolio import generate
from loanwatch.generate.write import write_portfolio
from loanwatch.serve import open_snapshot
from tests.conftest import assert_no_traceback, build_home, copy_home
from tests.engine_checks import published_rows

LOANWATCH = [sys.executable, "-m", "loanwatch.cli"]
TABLES = {
    "marts.fct_loan_states": "loan_id, valid_from",
    "marts.fct_loan_snapshots": "snapshot_date, loan_id",
    "core.loan_versions": "loan_id, valid_from",
    "marts.fct_payment_allocations": "payment_id",
}


def _dump(home: Path) -> dict:
    return published_rows(home, TABLES)


def _run(args, home, kill_after=None):
    env = {**os.environ, "LOANWATCH_HOME": str(home)}
    proc = subprocess.Popen(LOANWATCH + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = proc.communicate(timeout=600)
        assert_no_traceback(err)
        assert proc.returncode == 0, err.decode()[-2000:]
        return True
    try:
        proc.wait(timeout=kill_after)
        return True  # finished before the kill
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return False


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("crash_raw")
    write_portfolio(generate(3000, seed=21, start=dt.date(2024, 1, 1), end=dt.date(2025, 6, 30)), out)
    return out


@pytest.fixture(scope="module")
def halves(raw, tmp_path_factory):
    from loanwatch.generate.split import split

    return split([raw], 2, tmp_path_factory.mktemp("crash_parts")).parts


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    """Everything ingested and built at once, uninterrupted."""
    return build_home(tmp_path_factory.mktemp("crash_ref"), raw)


@pytest.fixture(scope="module")
def reference(built):
    return _dump(built.home)


@pytest.fixture(scope="module")
def first_half_built(halves, tmp_path_factory):
    """The first half ingested and built (a first good build, so a next build is incremental)."""
    home = tmp_path_factory.mktemp("crash_first_half") / "home"
    _run(["ingest", *map(str, halves[1])], home)
    _run(["build"], home)
    return load_settings(home, environ={})


@pytest.mark.integration
@pytest.mark.parametrize("kill_after", [1.2, 2.0, 3.0])
def test_killed_ingest_then_rerun(raw, reference, tmp_path, kill_after):
    home = tmp_path / "home"
    _run(["ingest", str(raw)], home, kill_after=kill_after)
    _run(["ingest", str(raw)], home)
    _run(["build"], home)
    assert _dump(home) == reference


@pytest.mark.integration
@pytest.mark.parametrize("kill_after", [4.0, 7.5])
def test_killed_build_then_rerun(halves, first_half_built, reference, tmp_path, kill_after):
    home = copy_home(first_half_built, tmp_path / "home").home
    _run(["ingest", *map(str, halves[2])], home)
    _run(["build"], home, kill_after=kill_after)
    _run(["build"], home)
    assert _dump(home) == reference
    con = open_snapshot(load_settings(home, environ={}))
    statuses = [r[0] for r in con.execute("SELECT status FROM meta.builds ORDER BY build_id").fetchall()]
    con.close()
    assert statuses[-1] == "success" and "running" not in statuses


@pytest.mark.integration
def test_reports_read_the_snapshot_while_a_build_runs(built, tmp_path):
    home = copy_home(built, tmp_path / "home").home
    env = {**os.environ, "LOANWATCH_HOME": str(home)}
    proc = subprocess.Popen(LOANWATCH + ["build", "--full-refresh"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reads = 0
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            out = subprocess.run(LOANWATCH + ["report", "overdue-monthly", "-f", "csv"], env=env,
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert out.stdout.startswith("month,loans_active")
            reads += 1
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
    assert reads >= 1


@pytest.mark.integration
def test_two_writers_at_once_both_finish_and_nothing_is_lost(halves, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "LOANWATCH_HOME": str(home)}
    procs = [subprocess.Popen(LOANWATCH + ["ingest", *map(str, halves[k])], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for k in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert_no_traceback(err)
        assert p.returncode == 0, err.decode()[-2000:]
    from loanwatch.warehouse import connect

    con = connect(home / "warehouse.duckdb", read_only=True)
    # every file of both halves (eleven entities each), each loaded once
    assert con.execute("SELECT count(*) FROM meta.batches WHERE status = 'loaded'").fetchone()[0] == len(halves[1]) + len(halves[2]) == 22
    con.close()
