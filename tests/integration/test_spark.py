"""`[warehouse] engine = "spark"`: the whole cycle on Spark equals DuckDB's.

Two ways, as users run them: Spark in loanwatch's process (`method = "session"`, `local[2]`;
every such run a `loanwatch` process of its own, a JVM each, the tables and the Derby catalog
under the home's `spark/` folder), on the golden fixture; and a Spark Thrift server
(`method = "thrift"`, a throwaway one: tests/spark_thrift.py), on 2,000 generated clients in two
incremental batches. Readers (reports, the contact plan) read the serving snapshot in-process, as
on every engine. Needs pyspark (the dev extras) and Java 17 (`.ci/run` installs Debian's
openjdk-17-jre-headless): without them the tests skip, saying which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from loanwatch.config import load_settings
from loanwatch.serve import open_snapshot
from tests.conftest import GOLDEN, build_home, cli, run_cli
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

pytestmark = [pytest.mark.spark, pytest.mark.integration]

try:
    import pyspark  # noqa: F401
except ImportError:
    pytest.skip("pyspark is not installed: pip install -e '.[spark]'", allow_module_level=True)
if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java: install openjdk-17-jre-headless (.ci/run does)", allow_module_level=True)

SPARK = {"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__MASTER": "local[2]"}

# A child process that kills itself (SIGKILL) when ingest writes the batch manifest: every batch
# is in its partitions, none in the manifest, as if the machine died between the two.
KILLED_AT_THE_MANIFEST = textwrap.dedent("""
    import os, signal, sys
    from pyspark.sql import DataFrameWriter
    insert_into = DataFrameWriter.insertInto
    def insert(self, table, overwrite=None):
        if table == "meta.landed_batches":
            os.kill(os.getpid(), signal.SIGKILL)
        return insert_into(self, table, overwrite)
    DataFrameWriter.insertInto = insert
    from loanwatch.cli import run
    sys.argv = ["loanwatch", *sys.argv[1:]]
    run()
""")


def _staging_counts(spark_home: Path) -> dict[str, tuple]:
    """Rows, batches and the sum of batch ids of each staging table, read from Spark's Parquet files."""
    import duckdb

    out = {}
    for table in ("clients", "loans", "loan_schedules", "payments", "calls"):
        folder = spark_home / "spark" / "staging.db" / table
        out[table] = duckdb.execute(
            f"SELECT count(*), count(DISTINCT batch_id), sum(batch_id) FROM read_parquet('{folder}/*/*.parquet', "
            "hive_partitioning = true)").fetchone()
    return out


@pytest.fixture(scope="module")
def spark_golden(tmp_path_factory):
    """The golden fixture on Spark in-process (`local[2]`) through the CLI, the hard way: the
    ingest is killed between landing the batches and writing the manifest; the build lands them
    again, then builds."""
    home = tmp_path_factory.mktemp("spark_golden")
    env = {**SPARK, "LOANWATCH_HOME": str(home)}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_THE_MANIFEST, "ingest", str(GOLDEN)],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    landed_before = _staging_counts(home)
    built = run_cli("build", env=env, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    return load_settings(home, environ=env), landed_before


def test_the_golden_fixture_on_spark_equals_duckdb_after_a_killed_landing(spark_golden, golden):
    settings, landed_before = spark_golden
    # the killed ingest had written every batch's partition, and no manifest row
    assert landed_before["payments"][0] == 16
    ledger = open_snapshot(golden)
    # landed again by the build: each batch once, as in the home's ingest ledger
    from loanwatch.warehouse import connect

    con = connect(settings.warehouse_path, read_only=True)
    for table, counts in _staging_counts(settings.home).items():
        query = f"SELECT count(*), count(DISTINCT batch_id), sum(batch_id) FROM staging.{table}"
        assert counts == con.execute(query).fetchone(), table
    con.close()
    assert_same_snapshot(settings, golden)
    checks = "SELECT check_name, status, failing_rows, sample_keys FROM meta.dq_results WHERE build_id = 1 ORDER BY 1"
    assert open_snapshot(settings).execute(checks).fetchall() == ledger.execute(checks).fetchall()
    ledger.close()


def test_every_report_and_the_contact_plan_on_spark_equal_duckdb(spark_golden, golden):
    settings, _ = spark_golden
    assert_same_reports(settings, golden)
    # a check's failing rows are kept in Spark; `check --rows` reads them there (its own JVM)
    args = ["check", "--rows", "warn_source_status_mismatch", "-f", "csv"]
    on_spark = run_cli("--home", settings.home, *args, env=SPARK)
    on_duck = cli(*args, home=golden.home)
    assert on_spark.returncode == on_duck.exit_code == 0, on_spark.stderr[-2000:]
    assert sorted(on_spark.stdout.splitlines()) == sorted(on_duck.stdout.splitlines()) and "L05" in on_spark.stdout
    assert on_spark.stderr == "", on_spark.stderr  # Spark's own log goes to spark/spark.log


def test_spark_that_cannot_start_is_one_line_and_exit_1(tmp_path):
    """No Java where JAVA_HOME points: one line naming the master and what to install, exit 1;
    ingest keeps the files in its ledger and says they land later."""
    env = {**SPARK, "JAVA_HOME": str(tmp_path / "no-java")}
    result = run_cli("--home", tmp_path / "home", "ingest", GOLDEN, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot start a Spark session" in lines[0] and "local[2]" in lines[0], result.stderr
    assert "land in Spark with the next ingest or build" in lines[0]
    from loanwatch.warehouse import connect

    con = connect(tmp_path / "home" / "warehouse.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM staging.payments").fetchone()[0] == 16
    con.close()


def test_a_master_loanwatch_cannot_use_is_a_usage_error(tmp_path):
    result = cli("build", home=tmp_path, env={**SPARK, "LOANWATCH_SPARK__MASTER": "local[two]; rm -rf /"})
    assert result.exit_code == 2 and "[spark] master" in result.stderr and "local[N]" in result.stderr
    result = cli("ingest", str(GOLDEN), home=tmp_path, env={**SPARK, "LOANWATCH_SPARK__METHOD": "jdbc"})
    assert result.exit_code == 2 and "[spark] method = 'jdbc'" in result.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()  # stopped before anything was loaded


@pytest.fixture(scope="module")
def thrift_server(tmp_path_factory):
    from tests.spark_thrift import start_thrift_server

    server, stop = start_thrift_server(tmp_path_factory.mktemp("thrift") / "warehouse")
    try:
        yield server
    finally:
        stop()


def test_two_incremental_batches_of_2000_clients_through_a_thrift_server_equal_duckdb(thrift_server, two_batches, tmp_path):
    """`[spark] method = "thrift"`, with 2,000 generated clients split in two batches, built batch
    by batch (the second build incremental: its pre-hooks rewrite tables without the rows to
    recompute), equal to DuckDB built the same way. loanwatch starts no JVM: batches land as
    Parquet in the shared warehouse directory and the server inserts them, dbt-spark builds over
    Thrift, the export comes back as Parquet."""
    batches, on_duck = two_batches
    home = tmp_path / "thrift"
    home.mkdir()
    (home / "loanwatch.toml").write_text(f"""[warehouse]\nengine = "spark"\n\n[spark]\nmethod = "thrift"
host = "{thrift_server['host']}"\nport = {thrift_server['port']}\nwarehouse_dir = "{thrift_server['warehouse_dir']}"\n""")
    on_thrift = load_settings(home, environ={})
    build_in_batches(on_thrift, batches)
    assert_same_snapshot(on_thrift, on_duck)
    on_server = cli("report", "overdue-monthly", "-f", "csv", home=home)
    assert on_server.stdout == cli("report", "overdue-monthly", "-f", "csv", home=on_duck.home).stdout
    # nothing of the exchange is left behind in the shared directory
    assert not list((Path(thrift_server["warehouse_dir"]) / "loanwatch-io").iterdir())

    # a server that is not there: one line, exit 1
    result = cli("build", home=home, env={"LOANWATCH_SPARK__PORT": "1"})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Spark Thrift server 127.0.0.1:1" in lines[0] and "cannot connect" in lines[0], result.stderr


def test_provisions_and_servicing_events_on_spark_equal_duckdb(tmp_path):
    """Two golden fixtures in one Spark home (in-process, through the CLI: a JVM start and a build
    cost a minute or two each here). Charges, waivers, their reversals and restructurings
    (tests/golden/test_servicing.py, test_restructuring.py): the chain of allocation stages plans
    and runs there, and a 360-month annuity's schedule folds there (past Spark's 100 levels of
    recursion), with DuckDB's figures. The provisions fixture (tests/golden/test_provisions.py):
    the transition states, moves and recoveries, and the provisions and forecast read from them,
    equal DuckDB's."""
    # and a loan late every month of a year, a penalty each time: 14 steps, a chain of stages
    # deeper than Spark's analyzer plans by default (at M, 9 failed: servicing_stages_planned)
    late = tmp_path / "late_every_month"
    late.mkdir()
    # and an annuity of 360 months (past Spark's 100 levels of a recursive CTE: a fold there)
    (late / "loans.jsonl").write_text("".join(json.dumps(loan) + "\n" for loan in (
        {"loan_id": "S-LATE", "client_id": "C1", "product": "cash", "amount": 1200, "interest_rate": 0,
         "issue_date": "2024-01-05", "term_months": 12, "status": "active", "updated_at": "2024-01-05T09:00:00Z"},
        {"loan_id": "S-LONG", "client_id": "C1", "product": "cash", "amount": 250000, "interest_rate": 0.085,
         "issue_date": "2024-01-31", "term_months": 360, "status": "active", "updated_at": "2024-01-31T09:00:00Z"})))
    (late / "charges.jsonl").write_text("".join(json.dumps(
        {"charge_id": f"S-LATE-N{k}", "loan_id": "S-LATE", "type": "penalty", "amount": 5 + k,
         "charged_at": f"{2024 + (k // 12)}-{k % 12 + 1:02d}-10T09:00:00Z", "instalment": min(k, 12)}) + "\n"
        for k in range(1, 15)))
    (late / "payments.jsonl").write_text("".join(json.dumps(
        {"payment_id": f"S-LATE-P{k}", "loan_id": "S-LATE", "amount": 90,
         "paid_at": f"{2024 + (k // 12)}-{k % 12 + 1:02d}-20T09:00:00Z"}) + "\n" for k in range(1, 15)))
    env = {**SPARK, "LOANWATCH_HOME": str(tmp_path / "spark")}
    fixtures = (PROVISIONS, SERVICING, RESTRUCTURING, late)
    for args in (["ingest", *map(str, fixtures)], ["build"]):
        done = run_cli(*args, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    duck = build_home(tmp_path / "duck", *fixtures)
    con = duckdb.connect(str(duck.warehouse_path), read_only=True)
    assert con.execute("SELECT max(step) FROM core.int_servicing_events WHERE loan_id = 'S-LATE'").fetchone() == (14,)
    # 360 instalments whose principals sum to the amount (the last takes the balance left)
    assert con.execute("""SELECT count(*), max(instalment_number), sum(principal_amount)
                          FROM core.int_instalments_scheduled WHERE loan_id = 'S-LONG'""").fetchone() == (360, 360, 250000)
    con.close()
    on_spark = load_settings(tmp_path / "spark", environ=env)
    assert_same_servicing(on_spark, duck)
    assert_same_provisions(on_spark, duck)
