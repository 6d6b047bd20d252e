"""`[warehouse] engine = "postgres"`: the whole cycle on a PostgreSQL server equals DuckDB's.

A throwaway server (tests/pg.py, one per test run) with a password login, a database per home.
Ingest lands batches on the server, the build runs dbt-postgres there and exports what readers
need into the serving snapshot; every table of that snapshot, every report and the contact plan
are compared with a DuckDB home of the same input.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.serve import open_snapshot
from loanwatch.warehouse import open_writer
from tests.conftest import GOLDEN, assert_no_traceback, build_home, cli
from tests.engine_checks import (
    PROVISIONS,
    RESTRUCTURING,
    SERVICING,
    assert_same_provisions,
    assert_same_reports,
    assert_same_servicing,
    assert_same_snapshot,
    build_in_batches,
)
from tests.pg import engine_env, new_database

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


def _env(home: Path, db: dict) -> dict[str, str]:
    return {"LOANWATCH_HOME": str(home), **engine_env(db)}


@pytest.fixture(scope="module")
def pg_golden(pg_server, tmp_path_factory):
    """The golden fixture through the CLI on PostgreSQL: ingest, build."""
    home = tmp_path_factory.mktemp("pg_golden")
    db = new_database(pg_server, "golden")
    # as a user would: the server in the home's loanwatch.toml, the password in the environment
    (home / "loanwatch.toml").write_text(f"""[warehouse]\nengine = "postgres"\n\n[postgres]\nhost = "{db['host']}"
port = {db['port']}\nuser = "{db['user']}"\ndbname = "{db['dbname']}"\n""")
    env = {"LOANWATCH_POSTGRES__PASSWORD": db["password"]}
    result = cli("ingest", str(GOLDEN), home=home, env=env)
    assert result.exit_code == 0, result.stderr
    result = cli("build", home=home, env=env)
    assert result.exit_code == 0, result.stderr
    return load_settings(home, environ=env)


def test_the_golden_fixture_on_postgres_equals_duckdb(pg_golden, golden, pg_server):
    import psycopg2

    assert_same_snapshot(pg_golden, golden)
    # the marts are real tables on the server, for the team's own tools; the batches landed once
    conn = psycopg2.connect(**{**pg_server, "dbname": "golden"})
    cur = conn.cursor()
    cur.execute("SELECT count(*), sum(principal_outstanding_amount) FROM marts.fct_loan_states WHERE valid_to IS NULL")
    count, outstanding = cur.fetchone()
    duck = open_snapshot(golden)
    assert (count, outstanding) == duck.execute(
        "SELECT count(*), sum(principal_outstanding_amount) FROM marts.fct_loan_states WHERE valid_to IS NULL").fetchone()
    cur.execute("SELECT count(*), count(DISTINCT batch_id) FROM meta.landed_batches")
    landed = cur.fetchone()
    assert landed == duck.execute("SELECT count(*), count(DISTINCT batch_id) FROM meta.batches").fetchone()
    # the same checks warn, on the same rows, as on DuckDB
    checks = "SELECT check_name, status, failing_rows, sample_keys FROM meta.dq_results WHERE build_id = 1 ORDER BY 1"
    assert open_snapshot(pg_golden).execute(checks).fetchall() == duck.execute(checks).fetchall()
    # every table the build wrote has its statistics (the post-hook), so later models plan on them;
    # views have none
    cur.execute("""SELECT count(*) FILTER (WHERE last_analyze IS NULL), count(*) FROM pg_stat_user_tables
                   WHERE schemaname IN ('core', 'marts')""")
    not_analyzed, tables = cur.fetchone()
    assert not_analyzed == 0 and tables > 30
    conn.close()


def test_every_report_and_the_contact_plan_on_postgres_equal_duckdb(pg_golden, golden):
    assert_same_reports(pg_golden, golden)
    # a check's failing rows are kept on the server; `check --rows` reads them there
    args = ["check", "--rows", "warn_source_status_mismatch", "-f", "csv"]
    password = {"LOANWATCH_POSTGRES__PASSWORD": pg_golden.get("postgres", "password")}
    on_pg, on_duck = cli(*args, home=pg_golden.home, env=password), cli(*args, home=golden.home)
    assert on_pg.exit_code == on_duck.exit_code == 0, on_pg.stderr
    assert sorted(on_pg.stdout.splitlines()) == sorted(on_duck.stdout.splitlines()) and "L05" in on_pg.stdout


def test_a_wrong_password_or_no_server_is_one_line_and_exit_1(pg_server, tmp_path):
    db = new_database(pg_server, "refused")
    wrong = "Wr0ng-Secret-" + "x" * 8
    result = cli("build", env={**_env(tmp_path / "a", db), "LOANWATCH_POSTGRES__PASSWORD": wrong})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "password authentication failed" in lines[0], result.stderr
    assert "LOANWATCH_POSTGRES__PASSWORD" in lines[0] and "127.0.0.1" in lines[0]
    assert wrong not in result.stderr + result.stdout and db["password"] not in result.stderr + result.stdout

    # ingest keeps the files in its ledger and says they land later
    closed = {**db, "port": 1}
    result = cli("ingest", str(GOLDEN), env=_env(tmp_path / "b", closed))
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot connect" in last and "land on the server with the next ingest or build" in last, result.stderr
    assert db["password"] not in result.stderr + result.stdout
    # and nothing was written with the password in it
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".json", ".toml", ".log"):
            assert db["password"] not in path.read_text(errors="replace"), path


def test_a_second_home_on_the_same_database_is_refused(pg_golden, golden, pg_server, tmp_path):
    """Batch ids are a home's own: another home's batch 1 landing beside this one's would be
    taken for it. So a database that holds another home's batches is refused, and left as it was."""
    import psycopg2

    env = _env(tmp_path / "other", {**pg_server, "dbname": "golden"})
    result = cli("ingest", str(GOLDEN), env=env)
    assert result.exit_code == 1
    assert "holds batches another loanwatch home loaded" in result.stderr.strip().splitlines()[-1], result.stderr
    conn = psycopg2.connect(**{**pg_server, "dbname": "golden"})
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT ledger_id) FROM meta.landed_batches")
        assert cur.fetchone() == (open_snapshot(golden).execute("SELECT count(*) FROM meta.batches").fetchone()[0], 1)
    conn.close()


def test_an_unknown_engine_is_a_usage_error(tmp_path):
    result = cli("build", home=tmp_path, env={"LOANWATCH_WAREHOUSE__ENGINE": "oracle"})
    assert result.exit_code == 2 and "use one of duckdb, postgres, spark" in result.stderr
    result = cli("ingest", str(GOLDEN), home=tmp_path, env={"LOANWATCH_WAREHOUSE__ENGINE": "oracle"})
    assert result.exit_code == 2 and "use one of duckdb, postgres, spark" in result.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()  # stopped before anything was loaded


def test_ingest_killed_while_landing_lands_nothing_then_everything(pg_server, golden, tmp_path):
    """SIGKILL after ingest copied every table to the server, while it waits to write the manifest
    (the test holds a lock that lets it read the manifest but not write it): the server has none of
    the rows; the day's run (`loanwatch run`) lands each batch once and builds, equal to DuckDB."""
    import psycopg2

    db = new_database(pg_server, "killed")
    env = _env(tmp_path / "home", db)
    holder = psycopg2.connect(**db)
    cur = holder.cursor()
    cur.execute("CREATE SCHEMA meta")
    cur.execute("""CREATE TABLE meta.landed_batches (batch_id BIGINT PRIMARY KEY, entity TEXT, file_name TEXT,
                   content_hash TEXT, rows_landed BIGINT, landed_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC'),
                   ledger_id TEXT)""")
    holder.commit()
    cur.execute("LOCK TABLE meta.landed_batches IN SHARE MODE")

    proc = subprocess.Popen([sys.executable, "-c", "from loanwatch.cli import run; run()", "ingest", str(GOLDEN)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    waiting = None
    watcher = psycopg2.connect(**db)
    watcher.autocommit = True  # (in a transaction, pg_stat_activity would not change)
    w = watcher.cursor()
    while time.monotonic() < deadline and not waiting and proc.poll() is None:
        w.execute("SELECT query FROM pg_stat_activity WHERE application_name = 'loanwatch' AND wait_event_type = 'Lock'")
        waiting = w.fetchone()
        time.sleep(0.1)
    watcher.close()
    if not waiting:
        proc.kill()
        pytest.fail(f"the ingest never reached the landing: {proc.communicate()[1].decode()[-1500:]}")
    assert waiting[0].startswith("INSERT INTO meta.landed_batches"), waiting  # after every COPY
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    holder.rollback()
    cur.execute("SELECT count(*), to_regclass('staging.payments') FROM meta.landed_batches")
    assert cur.fetchone() == (0, None)  # the copies went with the transaction
    holder.commit()

    # the day's run (`loanwatch run`): every file is in the ledger already; its ingest lands them
    again = cli("run", "--inbox", str(GOLDEN), env=env)
    assert again.exit_code == 0, again.stderr
    assert_no_traceback(again.stdout, again.stderr)
    from loanwatch.warehouse import connect

    ledger = connect(tmp_path / "home" / "warehouse.duckdb", read_only=True)
    for table in ("clients", "loans", "loan_schedules", "payments", "calls"):
        query = f"SELECT count(*), count(DISTINCT batch_id), sum(batch_id) FROM staging.{table}"
        cur.execute(query)
        assert cur.fetchone() == ledger.execute(query).fetchone(), table
    ledger.close()
    cur.execute("SELECT count(*) FROM staging.payments")
    assert cur.fetchone()[0] == 16  # P01..P16, once
    holder.close()
    settings = load_settings(tmp_path / "home", environ=env)
    assert_same_snapshot(settings, golden)
    assert cli("run", "--inbox", str(GOLDEN), env=env).exit_code == 0
    with open_snapshot(settings) as con:
        assert con.execute("SELECT count(*) FROM meta.builds").fetchone()[0] == 1  # nothing new: no build


def test_two_incremental_batches_of_a_generated_portfolio_on_postgres_equal_duckdb(pg_server, two_batches, tmp_path):
    """2,000 generated clients split in two batches: built on PostgreSQL batch by batch
    (the second build incremental), equal to DuckDB built the same way. The second build exports
    the incremental tables by their changes; one that the snapshot no longer holds as the server
    had it (its rows removed from the snapshot between the builds) is copied whole."""
    import duckdb

    def tamper(settings):  # (the file's size and time kept: the build cannot tell by them)
        before = settings.serving_path.stat()
        with duckdb.connect(str(settings.serving_path)) as con:
            con.execute("DELETE FROM marts.fct_instalments")
        assert settings.serving_path.stat().st_size == before.st_size
        os.utime(settings.serving_path, ns=(before.st_atime_ns, before.st_mtime_ns))

    batches, on_duck = two_batches
    on_pg = load_settings(tmp_path / "pg", environ=engine_env(new_database(pg_server, "portfolio")))
    build_in_batches(on_pg, batches, between=tamper)
    assert_same_snapshot(on_pg, on_duck)
    with open_writer(on_pg) as con:
        by_changes = {r[0] for r in con.execute(
            "SELECT model FROM meta.build_nodes WHERE node = 'export changes' AND build_id = 2").fetchall()}
    assert {"marts.fct_loan_states", "marts.fct_loan_snapshots", "core.payments", "marts.dim_loans"} <= by_changes
    assert "marts.fct_instalments" not in by_changes


def test_money_at_the_top_of_the_range_on_postgres_equals_duckdb(pg_server, tmp_path):
    """Amounts near 10^16 and rates to 1,000 % (tests/integration/test_money_range.py): the same
    schedules, allocations and states on PostgreSQL as on DuckDB."""
    from tests.integration.test_money_range import BIG_LOANS, _write

    payments = [(f"P{k}", loan_id, "2024-02-15T00:00:00Z", (Decimal(amount) / 3).quantize(Decimal("0.01")))
                for k, (loan_id, amount, *_rest) in enumerate(BIG_LOANS)]
    payments += [("PX1", "TOP_AMOUNT", "2024-05-15T00:00:00Z", "9999999999999999.99"),
                 ("PX2", "TOP_AMOUNT", "2024-05-16T00:00:00Z", "9999999999999999.99")]
    _write(tmp_path / "raw", BIG_LOANS, payments)
    on_duck = build_home(tmp_path / "duck", tmp_path / "raw")
    db = new_database(pg_server, "money")
    on_pg = build_home(tmp_path / "pg", tmp_path / "raw", settings_env=engine_env(db))
    assert_same_snapshot(on_pg, on_duck)
    with open_snapshot(on_pg) as con:
        assert con.execute("SELECT max(amount) FROM marts.dim_loans").fetchone()[0] > Decimal("1e15")


def test_provisions_on_postgres_equal_duckdb(pg_server, tmp_path):
    """The provisions fixture (tests/golden/test_provisions.py): the transition states, moves and
    recoveries, and the provisions and forecast read from them, the same on PostgreSQL."""
    on_duck = build_home(tmp_path / "duck", PROVISIONS)
    on_pg = build_home(tmp_path / "pg", PROVISIONS, settings_env=engine_env(new_database(pg_server, "provisions")))
    assert_same_provisions(on_pg, on_duck)


def test_servicing_events_on_postgres_equal_duckdb(pg_server, tmp_path):
    """Charges, waivers, their reversals and restructurings (tests/golden/test_servicing.py,
    test_restructuring.py), allocated event by event, the same on PostgreSQL."""
    on_duck = build_home(tmp_path / "duck", SERVICING, RESTRUCTURING)
    on_pg = build_home(tmp_path / "pg", SERVICING, RESTRUCTURING, settings_env=engine_env(new_database(pg_server, "servicing")))
    assert_same_servicing(on_pg, on_duck)
