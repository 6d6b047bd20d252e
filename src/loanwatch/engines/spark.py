"""Spark as the engine: land staging, mirror the build watermark, export what readers need.

`[spark] method = "session"`: loanwatch starts Spark in its own process (pyspark) on `master`
(``local[2]`` on one machine, ``spark://host:7077`` or ``yarn`` for a cluster), and dbt-spark's
``session`` method runs the dbt project in that same session. Its tables live under
``warehouse_dir`` (``spark.sql.warehouse.dir``; ``<home>/spark`` when empty), its catalog in a
Derby metastore beside them (a cluster's own metastore, when ``hive-site.xml`` names one, wins).

* ``land``: every batch the manifest ``meta.landed_batches`` does not list is written, through
  Spark, into its own partition (``batch_id``) of each ``staging`` table, replacing whatever a
  killed landing left in that partition; the manifest row is written last. The manifest is the
  single source of truth: a process killed before it leaves a partition that the next landing
  replaces (nothing counted twice), one killed after it has the batch counted once.
* ``mirror_builds``: the models read the last good build's watermark from ``meta.builds`` on the
  engine they run on, so the build's rows are copied there before dbt runs.
* ``export``: after a good build, the tables readers need are copied from Spark (as Arrow) into
  the build's DuckDB file, which becomes the serving snapshot, as on DuckDB.

Spark's Parquet tables have no DELETE or UPDATE: the project's incremental pre-hooks rewrite a
table without the rows to recompute instead (macros/incremental.sql, ``spark__`` macros). A
rewrite that is killed can leave a table short, so after a build that did not finish well the
next build on Spark rebuilds everything (``resumes_after_failure``).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from loanwatch.config import ConfigError, Settings
from loanwatch.engines import EngineUnreachable
from loanwatch.ingest.contract import ENTITIES

STAGING_TABLES = [*(e.table for e in ENTITIES.values()), "staging.loan_schedules"]
NOT_LANDED = {"record"}
PARTITION = "batch_id"

_TO_SPARK = {"VARCHAR": "STRING", "BIGINT": "BIGINT", "INTEGER": "INT", "SMALLINT": "SMALLINT", "TINYINT": "TINYINT",
             "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT",
             "HUGEINT": "DECIMAL(38,0)"}
_TO_DUCK = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT",
            "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP",
            "double": "DOUBLE", "float": "FLOAT"}

# Spark's own log lines (the JVM's) say nothing a loanwatch user acts on: errors only.
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
# explicit, so that pyspark's session does not announce a level of its own
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
# "database already exists" from CREATE DATABASE IF NOT EXISTS
logger.hms.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hms.level = off
"""


def spark_type(duck_type: str) -> str:
    t = duck_type.upper()
    if t.startswith("DECIMAL"):
        return t
    return _TO_SPARK.get(t, "STRING")


def duck_type(spark_type: str) -> str:
    """The DuckDB type of a Spark column (its simpleString)."""
    t = spark_type.lower()
    if t.startswith("decimal"):
        return t.upper()
    return _TO_DUCK.get(t, "VARCHAR")


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _qualified(table: str) -> str:
    return ".".join(_ident(part) for part in table.split("."))


class SparkEngine:
    name = "spark"
    place = "in Spark"  # where batches land, in messages
    target = "spark"
    # a killed rewrite (see the module's doc) can leave a table short: start again from nothing
    resumes_after_failure = False

    def __init__(self, settings: Settings):
        spark = settings.section("spark")
        self.settings = settings
        self.method = str(spark.get("method") or "session").strip().lower()
        if self.method != "session":
            raise ConfigError(f"[spark] method = {self.method!r}: loanwatch runs Spark in its own process (\"session\", "
                              "with [spark] master local[N], spark://host:port or yarn); a Thrift server cannot be "
                              "landed to yet (docs/engines.md)")
        self.master = str(spark.get("master") or "local[2]").strip()
        if not valid_master(self.master):
            raise ConfigError(f"[spark] master = {self.master!r}: use local[N], spark://host:port, k8s://…, or yarn "
                              "(LOANWATCH_SPARK__MASTER)")
        self.warehouse_dir = Path(str(spark.get("warehouse_dir") or settings.home / "spark")).expanduser().resolve()
        self.shuffle_partitions = int(spark.get("shuffle_partitions") or 4)
        self._session = None

    # --- the session -------------------------------------------------------------------------

    def where(self) -> str:
        return f"Spark {self.master} ({self.warehouse_dir})"

    def session(self):
        """The process's Spark session, started on first use (dbt-spark's `session` method finds it)."""
        if self._session is not None:
            return self._session
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineUnreachable("[warehouse] engine = 'spark' needs pyspark and dbt-spark: "
                                    "pip install 'loanwatch[spark]' (and Java 17)") from None
        self.warehouse_dir.mkdir(parents=True, exist_ok=True)
        log4j = self.warehouse_dir / "log4j2.properties"
        log4j.write_text(_LOG4J)
        java = f"-Dderby.stream.error.file={self.warehouse_dir / 'derby.log'} -Dlog4j2.configurationFile=file:{log4j}"
        builder = (SparkSession.builder.master(self.master).appName("loanwatch")
                   .config("spark.sql.warehouse.dir", str(self.warehouse_dir))
                   .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                           f"jdbc:derby:;databaseName={self.warehouse_dir / 'metastore_db'};create=true")
                   .config("spark.driver.extraJavaOptions", java)
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", str(self.shuffle_partitions))
                   .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
                   .config("spark.sql.legacy.createHiveTableByDefault", "false")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false"))
        try:
            with _jvm_output_to(self.warehouse_dir / "spark.log"):
                self._session = builder.enableHiveSupport().getOrCreate()
        except Exception as exc:  # no Java, a master that does not answer, a metastore in use
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise EngineUnreachable(f"{self.where()}: cannot start a Spark session ({text}); check [spark] master and "
                                    "warehouse_dir, and that Java 17 is installed (openjdk-17-jre-headless)") from None
        self._session.sparkContext.setLogLevel("ERROR")
        return self._session

    def outputs(self) -> dict:
        """The dbt profile output: dbt-spark's `session` method uses the session started here."""
        self.session()
        return {self.target: {"type": "spark", "method": "session", "host": "NA", "schema": "default", "threads": 2}}

    def dbt_environment(self) -> dict[str, str]:
        return {}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.query_table(sql, params)[1]

    def query_table(self, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a query (positional ``?`` parameters)."""
        frame = self.session().sql(sql, args=list(params) if params else None)
        return list(frame.columns), [tuple(r) for r in frame.collect()]

    def dq_tables(self) -> list[str]:
        """The checks whose failing rows the build kept (schema dq)."""
        spark = self.session()
        if not spark.catalog.databaseExists("dq"):
            return []
        return sorted(t.name for t in spark.catalog.listTables("dq"))

    def dq_rows(self, check: str, limit: int) -> tuple[list[str], list[tuple]]:
        frame = self.session().table(_qualified(f"dq.{check}")).limit(int(limit))
        return list(frame.columns), [tuple(r) for r in frame.collect()]

    # --- landing -----------------------------------------------------------------------------

    def _prepare(self, duck) -> dict[str, list[str]]:
        """Create (or widen) the staging tables like the ingest ledger's; their columns, in the
        table's order (the partition column last)."""
        spark = self.session()
        spark.sql("CREATE DATABASE IF NOT EXISTS staging")
        spark.sql("CREATE DATABASE IF NOT EXISTS meta")
        spark.sql("""CREATE TABLE IF NOT EXISTS meta.landed_batches (batch_id BIGINT, entity STRING, file_name STRING,
                         content_hash STRING, rows_landed BIGINT, landed_at TIMESTAMP, ledger_id STRING) USING parquet""")
        landed: dict[str, list[str]] = {}
        for table in STAGING_TABLES:
            schema, name = table.split(".")
            columns = [(c, t) for c, t in duck.execute(
                """SELECT column_name, data_type FROM information_schema.columns
                   WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
                   ORDER BY ordinal_position""", [schema, name]).fetchall() if c not in NOT_LANDED]
            data = [(c, t) for c, t in columns if c != PARTITION]
            if not spark.catalog.tableExists(f"{schema}.{name}"):
                spark.sql(f"CREATE TABLE {_qualified(table)} ({', '.join(f'{_ident(c)} {spark_type(t)}' for c, t in data)}, "
                          f"{PARTITION} BIGINT) USING parquet PARTITIONED BY ({PARTITION})")
            present = {f.name for f in spark.table(_qualified(table)).schema.fields}
            missing = [(c, t) for c, t in data if c not in present]
            if missing:  # a column a newer version of the ledger added
                spark.sql(f"ALTER TABLE {_qualified(table)} ADD COLUMNS "
                          f"({', '.join(f'{_ident(c)} {spark_type(t)}' for c, t in missing)})")
            landed[table] = [f.name for f in spark.table(_qualified(table)).schema.fields]
        return landed

    def land(self, duck) -> int:
        """Land every batch of the ingest ledger (``duck``) that the manifest does not list.
        Returns how many batches were landed."""
        import datetime

        import pyarrow as pa

        spark = self.session()
        columns = self._prepare(duck)
        ledger = duck.execute("SELECT min(ledger_id) FROM meta.ledger").fetchone()[0]
        landed = [tuple(r) for r in spark.table("meta.landed_batches").select("batch_id", "ledger_id").collect()]
        if any(other != ledger for _, other in landed):
            raise EngineUnreachable(f"{self.where()} holds batches another loanwatch home loaded; point this home at "
                                    "its own [spark] warehouse_dir, or use the home that loaded them")
        have = {row[0] for row in landed}
        batches = [b for b in duck.execute(
            "SELECT batch_id, entity, file_name, content_hash, rows_accepted FROM meta.batches ORDER BY batch_id"
        ).fetchall() if b[0] not in have]
        if not batches:
            return 0
        ids = [int(b[0]) for b in batches]
        for table, cols in columns.items():
            names = ", ".join(f'"{c}"' for c in cols)
            rows = duck.sql(f"SELECT {names} FROM {table} WHERE batch_id IN (SELECT unnest($ids))",
                            params={"ids": ids}).to_arrow_table()
            if not rows.num_rows:
                continue
            # naive UTC timestamps, labelled as such: Spark's TIMESTAMP is an instant
            rows = rows.cast(pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type)
                                        else f for f in rows.schema]))
            # the batches' partitions are replaced whole: what a killed landing left there goes
            spark.createDataFrame(rows).write.insertInto(table, overwrite=True)
        # Last, the manifest (see the module's doc).
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        manifest = spark.createDataFrame(
            [(int(b[0]), b[1], b[2], b[3], int(b[4] or 0), now, ledger) for b in batches],
            schema=spark.table("meta.landed_batches").schema)
        manifest.write.insertInto("meta.landed_batches")
        return len(batches)

    # --- builds ------------------------------------------------------------------------------

    def mirror_builds(self, duck) -> None:
        """Copy the warehouse's build rows to Spark's meta.builds (what the models read)."""
        spark = self.session()
        rows = duck.execute("""SELECT build_id, status, full_refresh, through_batch_id, since_batch_id, data_date
                               FROM meta.builds ORDER BY build_id""").fetchall()
        spark.sql("CREATE DATABASE IF NOT EXISTS meta")
        spark.sql("""CREATE TABLE IF NOT EXISTS meta.builds (build_id BIGINT, status STRING, full_refresh BOOLEAN,
                         through_batch_id BIGINT, since_batch_id BIGINT, data_date DATE) USING parquet""")
        frame = spark.createDataFrame([tuple(r) for r in rows], schema=spark.table("meta.builds").schema)
        frame.write.insertInto("meta.builds", overwrite=True)

    # --- export ------------------------------------------------------------------------------

    def export(self, tables: list[str], target: Path) -> None:
        """Copy ``schema.table`` relations from Spark into the DuckDB file ``target`` (replacing
        tables of the same name), as Arrow through the driver, with the types Spark declares."""
        import duckdb

        spark = self.session()
        duck = duckdb.connect(str(target))
        try:
            duck.execute("SET TimeZone = 'UTC'")  # Spark's instants, back to naive UTC timestamps
            for table in tables:
                frame = spark.table(_qualified(table))
                columns = [(f.name, duck_type(f.dataType.simpleString())) for f in frame.schema.fields]
                duck.execute(f"CREATE SCHEMA IF NOT EXISTS {_qualified(table.split('.')[0])}".replace("`", '"'))
                name = '"' + '"."'.join(part.replace('"', '""') for part in table.split(".")) + '"'
                duck.execute(f"CREATE OR REPLACE TABLE {name} ({', '.join(_duck_column(c, t) for c, t in columns)})")
                arrow = frame.toArrow()
                if arrow.num_rows:
                    duck.register("exported", arrow)
                    duck.execute(f"INSERT INTO {name} BY NAME SELECT * FROM exported")
                    duck.unregister("exported")
            duck.execute("CHECKPOINT")
        finally:
            duck.close()


@contextlib.contextmanager
def _jvm_output_to(path: Path) -> Iterator[None]:
    """Start the JVM with its standard output and error going to a log file (the JVM's own
    warnings, Spark's errors and stack traces, which the one-line messages of loanwatch already
    say), and pyspark's Python warnings silenced; the process's own streams are unchanged."""
    import sys

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\.|$)")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


def _duck_column(name: str, kind: str) -> str:
    return '"' + name.replace('"', '""') + '" ' + kind


def valid_master(master: str) -> bool:
    return bool(re.fullmatch(r"local(\[(\d+|\*)\])?|(spark|k8s|mesos)://\S+|yarn", master))
