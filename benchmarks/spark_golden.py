"""The dbt project on an in-process Spark session (dbt-spark, method `session`), against DuckDB.

A first measurement toward running loanwatch on Spark (issue: PostgreSQL and Spark end to end):
the golden ten-loan fixture is built on DuckDB as usual; its staging tables go to Parquet and are
registered in a Spark session (`local[1]`, then `local[2]`, each in its own process and JVM); the
same dbt project builds there; the marts come back as Parquet and are compared with DuckDB's,
row by row. Prints the session start, the staging registration and the dbt build per master,
and whether every mart is equal.

Needs the `spark` extra (`pip install -e '.[spark]'`: dbt-spark with pyspark) and Java 17
(`openjdk-17-jre-headless`). Run it with `make bench-spark`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARTS = ["fct_loan_states", "fct_loan_snapshots", "fct_instalments", "fct_payment_allocations", "snapshot_dates",
         "fct_calls", "fct_merchant_balances", "dim_loans", "fct_loan_transitions", "fct_loan_milestones"]


def child(master: str, work: Path) -> None:
    """In a fresh process: a Spark session on `master`, staging registered, dbt build, marts out."""
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    from loanwatch.transform import PROJECT_DIR

    here = work / _folder(master)
    t0 = time.monotonic()
    spark = (SparkSession.builder.master(master)
             .config("spark.sql.warehouse.dir", str(here / "warehouse"))
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={here}")
             .enableHiveSupport().getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    t1 = time.monotonic()
    spark.sql("CREATE DATABASE IF NOT EXISTS staging")
    for parquet in sorted((work / "staging").glob("*.parquet")):
        spark.sql(f"CREATE TABLE staging.{parquet.stem} USING parquet AS SELECT * FROM parquet.`{parquet}`")
    t2 = time.monotonic()
    profiles = here / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(json.dumps({"loanwatch": {"target": "spark", "outputs": {"spark": {
        "type": "spark", "method": "session", "schema": "default", "host": "NA", "threads": 1}}}}))
    result = dbtRunner().invoke([
        "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(profiles), "--quiet",
        "--target-path", str(here / "target"), "--log-path", str(here / "logs"),
        "--vars", (work / "vars.json").read_text(), "--exclude-resource-type", "unit_test"])
    t3 = time.monotonic()
    failed = [f"{r.node.name}: {str(r.message)[:200]}" for r in (result.result.results if result.result else [])
              if str(r.status) not in ("success", "pass", "warn")]
    for mart in MARTS:
        spark.table(f"marts.{mart}").coalesce(1).write.mode("overwrite").parquet(str(here / "marts" / mart))
    print(json.dumps({"session_s": t1 - t0, "staging_s": t2 - t1, "build_s": t3 - t2, "success": bool(result.success),
                      "failed": failed}))


def _folder(master: str) -> str:
    """A folder name for a master: Hadoop reads brackets in a path as a glob."""
    return master.replace("[", "-").replace("]", "")


def _normal(rows):
    return sorted(tuple(v.normalize() if isinstance(v, Decimal) else
                        Decimal(str(v)).normalize() if isinstance(v, float) else v for v in r) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("MASTER", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        print(f"needs {exc.name}: pip install -e '.[spark]' (dbt-spark with pyspark), and Java 17", file=sys.stderr)
        return 2
    import duckdb

    from loanwatch.config import load_settings
    from loanwatch.ingest.contract import ENTITIES
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.serve import open_snapshot
    from loanwatch.transform import dbt_vars
    from loanwatch.transform.build import build
    from loanwatch.warehouse import connect, open_writer

    work = Path(tempfile.mkdtemp(prefix="loanwatch-spark-"))
    settings = load_settings(work / "home", environ={})
    with open_writer(settings) as con:
        ingest_paths(con, [ROOT / "tests" / "golden" / "ten_loans"])
    assert build(settings).status == "success"
    (work / "vars.json").write_text(json.dumps(dbt_vars(settings)))
    (work / "staging").mkdir()
    con = connect(settings.warehouse_path)
    for table in [*ENTITIES, "loan_schedules"]:
        con.execute(f"COPY staging.{table} TO '{work / 'staging' / table}.parquet' (FORMAT parquet)")
    con.close()
    duck = open_snapshot(settings)
    times = {}
    for master in ("local[1]", "local[2]"):
        done = subprocess.run([sys.executable, __file__, "--child", master, str(work)], capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            print(f"{master}: the Spark run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        run = json.loads(lines[-1])
        times[master] = run
        equal = []
        for mart in MARTS:
            spark_rows = duckdb.execute(f"SELECT * FROM read_parquet('{work / _folder(master) / 'marts' / mart}/*.parquet')")
            names = [d[0] for d in spark_rows.description]
            ours = duck.execute(f"SELECT {', '.join(names)} FROM marts.{mart}").fetchall()
            equal.append((mart, _normal(ours) == _normal(spark_rows.fetchall()), len(ours)))
        print(f"{master}: session {run['session_s']:.1f} s, staging {run['staging_s']:.1f} s, dbt build "
              f"{run['build_s']:.1f} s, {'success' if run['success'] else 'FAILED: ' + '; '.join(run['failed'][:3])}")
        print("  marts equal to DuckDB's: " + ", ".join(f"{m} ({n} rows) {'=' if ok else 'DIFFERENT'}" for m, ok, n in equal))
        if not all(ok for _, ok, _ in equal):
            return 1
    ratio = times["local[1]"]["build_s"] / times["local[2]"]["build_s"]
    print(f"dbt build local[1] / local[2]: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
