"""The same dbt project on PostgreSQL (dbt-postgres) gives the same marts as on DuckDB.

A throwaway server is started from Debian's postgresql package (initdb + pg_ctl into a temp dir,
as the `postgres` user when the tests run as root); the golden fixture's staging tables are copied
into it, dbt builds there, and every mart row is compared with the DuckDB build.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.ingest.contract import ENTITIES
from loanwatch.serve import open_snapshot
from loanwatch.transform import run_dbt
from loanwatch.warehouse import connect

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

STAGING = [*ENTITIES, "loan_schedules"]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    matches = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return matches[-1] if matches else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries missing: .ci/run installs the postgresql package")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql")
    # Not under pytest's temp root: that is private to the user running the tests, and the
    # server may run as another user.
    base = Path(tempfile.mkdtemp(prefix="loanwatch-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(base, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                             f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres"}
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _pg_type(duck_type: str) -> str:
    t = duck_type.upper()
    if t.startswith("DECIMAL"):
        return t.replace("DECIMAL", "NUMERIC")
    return {"VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "BOOLEAN": "BOOLEAN",
            "DATE": "DATE", "TIMESTAMP": "TIMESTAMP"}.get(t, "TEXT")


def copy_staging(duck_path: Path, pg: dict, work: Path) -> None:
    """Copy the staging tables of a DuckDB warehouse into PostgreSQL's schema staging."""
    import psycopg2

    duck = connect(duck_path)  # same configuration as the build's own connection in this process
    conn = psycopg2.connect(**pg)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA IF NOT EXISTS staging")
    for table in STAGING:
        cols = duck.execute(f"DESCRIBE staging.{table}").fetchall()
        cur.execute(f"DROP TABLE IF EXISTS staging.{table}")
        cur.execute(f"CREATE TABLE staging.{table} ({', '.join(f'{c[0]} {_pg_type(c[1])}' for c in cols)})")
        csv_path = work / f"{table}.csv"
        duck.execute(f"COPY staging.{table} TO '{csv_path}' (FORMAT CSV, HEADER false)")
        with open(csv_path) as fh:
            cur.copy_expert(f"COPY staging.{table} FROM STDIN WITH (FORMAT csv)", fh)
    duck.close()
    conn.close()


def _pg_outputs(pg: dict) -> dict:
    """The dbt profile output for the throwaway server."""
    return {"postgres": {"type": "postgres", "host": pg["host"], "port": pg["port"], "user": pg["user"],
                         "password": "", "dbname": pg["dbname"], "schema": "public", "threads": 2}}


def _norm(rows):
    out = []
    for r in rows:
        out.append(tuple(
            (v.normalize() if isinstance(v, Decimal) else v) if not isinstance(v, float) else Decimal(str(v)).normalize()
            for v in r
        ))
    return out


COMPARE = {
    "marts.fct_loan_states": "SELECT loan_id, valid_from, valid_to, state, overdue_since_date, principal_outstanding_amount, past_due_amount FROM {t} ORDER BY loan_id, valid_from",
    "marts.fct_loan_snapshots": "SELECT snapshot_date, loan_id, state, dpd, bucket, principal_outstanding_amount FROM {t} ORDER BY snapshot_date, loan_id",
    "marts.fct_instalments": "SELECT loan_id, instalment_number, due_date, principal_amount, interest_amount, paid_on_date FROM {t} ORDER BY 1, 2",
    "marts.fct_payment_allocations": "SELECT payment_id, interest_amount, principal_amount, credit_amount FROM {t} ORDER BY 1",
    "marts.snapshot_dates": "SELECT month, snapshot_date FROM {t} ORDER BY 1",
}


def test_dbt_project_on_postgres_equals_duckdb(golden, pg_server, tmp_path):
    import psycopg2

    copy_staging(golden.warehouse_path, pg_server, tmp_path)
    outputs = _pg_outputs(pg_server)
    run = run_dbt(golden, "build", ["--exclude-resource-type", "unit_test"], target="postgres", extra_outputs=outputs)
    failed = [(r.name, r.message) for r in run.results if r.status not in ("success", "pass", "warn")]
    assert run.success and not failed, failed or run.error
    # the same checks warn, on the same number of rows, as on DuckDB
    warned = {r.name: r.failures for r in run.results if r.status == "warn"}
    duck_warned = dict(open_snapshot(golden).execute(
        "SELECT check_name, failing_rows FROM meta.dq_results WHERE status = 'warn' AND build_id = 1").fetchall())
    assert warned == duck_warned and "warn_source_status_mismatch" in warned

    duck = open_snapshot(golden)
    pg = psycopg2.connect(**pg_server)
    cur = pg.cursor()
    for table, sql in COMPARE.items():
        cur.execute(sql.format(t=table))
        pg_rows = _norm(cur.fetchall())
        duck_rows = _norm(duck.execute(sql.format(t=table)).fetchall())
        assert duck_rows, table
        assert pg_rows == duck_rows, table
    pg.close()


def test_incremental_build_on_postgres_equals_duckdb(pg_server, tmp_path):
    """The incremental path on PostgreSQL: the ten-loan fixture in two batches, the second with
    later payments (recomputed from their day), a payment dated before one already loaded and a
    reversal (recomputed whole); built on PostgreSQL from the first build's watermark, it equals
    DuckDB's build of everything."""
    import psycopg2

    from loanwatch.config import load_settings
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.transform.build import build
    from loanwatch.warehouse import open_writer
    from tests.conftest import golden_batches

    early = ["P01", "P02", "P05", "P06", "P09", "P10", "P16"]
    late = ["P03", "P04", "P07", "P08", "P11", "P12", "P13", "P14", "P15"]
    folders = golden_batches(tmp_path / "batches", [early, late])

    settings = load_settings(tmp_path / "duck", environ={})
    outputs = _pg_outputs(pg_server)
    pg = psycopg2.connect(**pg_server)
    pg.autocommit = True
    cur = pg.cursor()
    for schema in ("core", "marts", "dq"):  # the module's other test built here too
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    through = 0
    for folder in folders:
        with open_writer(settings) as con:
            ingest_paths(con, [folder])
        cur.execute("DROP SCHEMA IF EXISTS staging CASCADE")  # the sources, and dbt's views on them
        copy_staging(settings.warehouse_path, pg_server, tmp_path)
        run = run_dbt(settings, "build", ["--exclude-resource-type", "unit_test"], target="postgres",
                      extra_outputs=outputs, extra_vars={"since_batch": through} if through else None)
        failed = [(r.name, r.message) for r in run.results if r.status not in ("success", "pass", "warn")]
        assert run.success and not failed, failed or run.error
        with open_writer(settings) as con:
            through = con.execute("SELECT max(batch_id) FROM meta.batches").fetchone()[0]
    cur.execute("SELECT loan_id, recompute_from FROM core.int_loans_changed ORDER BY 1")
    assert [(k, str(v) if v else None) for k, v in cur.fetchall()] == [
        ("L01", "2024-04-30"), ("L02", None), ("L03", "2024-04-10"), ("L06", "2024-04-15"), ("L07", None)]

    assert build(settings).status == "success"  # DuckDB, everything at once
    duck = open_snapshot(settings)
    for table, sql in COMPARE.items():
        cur.execute(sql.format(t=table))
        assert _norm(cur.fetchall()) == _norm(duck.execute(sql.format(t=table)).fetchall()), table
    pg.close()


def test_money_at_the_top_of_the_range_on_postgres_equals_duckdb(pg_server, tmp_path):
    """Amounts near 10^16 and rates to 1,000 % (issue: hardening, 1): the same schedules,
    allocations and states on PostgreSQL as on DuckDB, which equals tests/reference.py
    (tests/integration/test_money_range.py)."""
    import psycopg2

    from tests.conftest import build_home
    from tests.integration.test_money_range import BIG_LOANS, _write

    payments = [(f"P{k}", loan_id, "2024-02-15T00:00:00Z", (Decimal(amount) / 3).quantize(Decimal("0.01")))
                for k, (loan_id, amount, *_rest) in enumerate(BIG_LOANS)]
    payments += [("PX1", "TOP_AMOUNT", "2024-05-15T00:00:00Z", "9999999999999999.99"),
                 ("PX2", "TOP_AMOUNT", "2024-05-16T00:00:00Z", "9999999999999999.99")]
    _write(tmp_path / "raw", BIG_LOANS, payments)
    settings = build_home(tmp_path / "duck", tmp_path / "raw")
    pg = psycopg2.connect(**pg_server)
    pg.autocommit = True
    cur = pg.cursor()
    for schema in ("core", "marts", "dq", "staging"):
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    copy_staging(settings.warehouse_path, pg_server, tmp_path)
    run = run_dbt(settings, "build", ["--exclude-resource-type", "unit_test"], target="postgres",
                  extra_outputs=_pg_outputs(pg_server))
    failed = [(r.name, r.message) for r in run.results if r.status not in ("success", "pass", "warn")]
    assert run.success and not failed, failed or run.error
    duck = open_snapshot(settings)
    for table, sql in COMPARE.items():
        cur.execute(sql.format(t=table))
        pg_rows = _norm(cur.fetchall())
        assert pg_rows and pg_rows == _norm(duck.execute(sql.format(t=table)).fetchall()), table
    pg.close()
