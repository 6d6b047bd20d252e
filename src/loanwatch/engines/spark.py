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
table without the rows to recompute instead (macros/incremental/recompute.sql, ``spark__`` macros). A
rewrite that is killed can leave a table short, so after a build that did not finish well the
next build on Spark rebuilds everything (``resumes_after_failure``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from loanwatch.config import ConfigError, Settings
from loanwatch.engines import Engine, EngineUnreachable, pending_batches, qualified, quoted
from loanwatch.errors import first_line
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
    return quoted(name, "`")


def _qualified(table: str) -> str:
    return qualified(table, "`")


class SparkEngine(Engine):
    name = "spark"
    place = "in Spark"  # where batches land, in messages
    target = "spark"
    exports_published = True
    # a killed rewrite (see the module's doc) can leave a table short: start again from nothing
    resumes_after_failure = False

    def __init__(self, settings: Settings):
        super().__init__(settings)
        spark = settings.section("spark")
        self.method = str(spark.get("method") or "session").strip().lower()
        if self.method not in ("session", "thrift"):
            raise ConfigError(f"[spark] method = {self.method!r}: use \"session\" (Spark in loanwatch's process, on [spark] "
                              "master) or \"thrift\" (a Spark Thrift server at [spark] host and port)")
        self.master = str(spark.get("master") or "local[2]").strip()
        if self.method == "session" and not valid_master(self.master):
            raise ConfigError(f"[spark] master = {self.master!r}: use local[N], spark://host:port, k8s://…, or yarn "
                              "(LOANWATCH_SPARK__MASTER)")
        self.host = str(spark.get("host") or "localhost").strip()
        self.port = int(spark.get("port") or 10000)
        self.user = str(spark.get("user") or "loanwatch")
        self.warehouse_dir = Path(str(spark.get("warehouse_dir") or settings.home / "spark")).expanduser().resolve()
        self.shuffle_partitions = int(spark.get("shuffle_partitions") or 4)
        # dbt's threads: 4 in-process (statements overlap: 103 against 112 s for the golden build),
        # 2 through a Thrift server (4 were no faster there: 170 and 207 against 165 and 171 s)
        threads = int(spark.get("threads") or 0)
        if threads < 0:
            raise ConfigError(f"[spark] threads = {threads}: use 1 or more, or 0 for loanwatch's choice (dbt's "
                              "parallel models; LOANWATCH_SPARK__THREADS)")
        self.threads = threads or (2 if self.method == "thrift" else 4)
        self.driver_memory = str(spark.get("driver_memory") or "4g").strip()
        if not re.fullmatch(r"[0-9]+[kmgt]?", self.driver_memory.lower()):
            raise ConfigError(f"[spark] driver_memory = {self.driver_memory!r}: use a size such as 4g (LOANWATCH_SPARK__DRIVER_MEMORY)")
        self._session = None
        self._cursor = None

    def where(self) -> str:
        if self.method == "thrift":
            return f"Spark Thrift server {self.host}:{self.port} ({self.warehouse_dir})"
        return f"Spark {self.master} ({self.warehouse_dir})"

    # --- the session, or the Thrift server ---------------------------------------------------

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
        # (quoted: Spark splits the options at spaces outside quotes, and a home may have one)
        java = f'"-Dderby.stream.error.file={self.warehouse_dir / "derby.log"}" "-Dlog4j2.configurationFile=file:{log4j}"'
        builder = (SparkSession.builder.master(self.master).appName("loanwatch")
                   .config("spark.sql.warehouse.dir", str(self.warehouse_dir))
                   .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                           f"jdbc:derby:;databaseName={self.warehouse_dir / 'metastore_db'};create=true")
                   .config("spark.driver.extraJavaOptions", java)
                   .config("spark.driver.memory", self.driver_memory)
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
            raise EngineUnreachable(f"{self.where()}: cannot start a Spark session ({first_line(exc, 200)}); check "
                                    "[spark] master and warehouse_dir, and that Java 17 is installed "
                                    "(openjdk-17-jre-headless)") from None
        self._session.sparkContext.setLogLevel("ERROR")
        return self._session

    def _thrift(self):
        """A cursor on the Thrift server, opened on first use."""
        if self._cursor is not None:
            return self._cursor
        try:
            from pyhive import hive
        except ImportError:
            raise EngineUnreachable("[spark] method = 'thrift' needs PyHive: pip install 'loanwatch[spark]'") from None
        import logging

        # the Thrift library logs each failed attempt (dbt-spark routes those loggers to its own
        # output once imported); the one line below says it once
        for name in ("thrift", "thrift.transport", "thrift.protocol", "pyhive", "pyhive.hive"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            connection = hive.connect(host=self.host, port=self.port, username=self.user)
            cursor = connection.cursor()
            # the session's settings the landing relies on (the server's own defaults may differ)
            for setting in ("spark.sql.sources.partitionOverwriteMode=dynamic", "spark.sql.session.timeZone=UTC"):
                cursor.execute(f"SET {setting}")
        except Exception as exc:
            raise EngineUnreachable(f"{self.where()}: cannot connect ({first_line(exc, 200)}); check [spark] host, "
                                    "port and user, and that the server runs") from None
        self._cursor = cursor
        return cursor

    def outputs(self, writes_models: bool = True) -> dict:
        """The dbt profile output: dbt-spark's `session` method uses the session started here;
        its `thrift` method connects to the same server."""
        if self.method == "thrift":
            self._thrift()
            return {self.target: {"type": "spark", "method": "thrift", "host": self.host, "port": self.port,
                                  "user": self.user, "schema": "default", "threads": self.threads,
                                  # a server busy opening another session can drop a new connection
                                  # ("TSocket read 0 bytes"): dbt tries again, three times, 3 s apart
                                  "connect_retries": 3, "connect_timeout": 3, "retry_all": True,
                                  # dbt-spark asks whether a statement is done every poll_interval
                                  # seconds (5 by default) and the server holds each question up
                                  # to 5 s: a statement of 5-7 s took 10 s, with 1 about 7
                                  # (docs/engines.md); whole seconds only
                                  "poll_interval": 1}}
        self.session()
        return {self.target: {"type": "spark", "method": "session", "host": "NA", "schema": "default", "threads": self.threads}}

    def dbt_environment(self) -> dict[str, str]:
        return {}

    def known_fault(self, message: str) -> str | None:
        # Spark 4 ships Hive 2.3.10 without hive-llap-*: Hive's function registry cannot load. On
        # a Thrift server, closing a session loads it now and then: the node's work was done,
        # the close failed (and a later one may hang: Hive's flag stays "pending")
        if "LlapSigner" not in message:
            return None
        jars = "hive-llap-common and hive-llap-client 2.3.10 (Spark 4)"
        if self.method == "thrift" and "TCloseSessionResp" in message:
            return (f"{self.where()} failed closing a session: its Hive jars lack {jars}; add them to the "
                    "server's jars and restart it (docs/engines.md, Thrift server)")
        return (f"{self.where()}: Hive's function registry could not load, its jars lack {jars}; add them to "
                f"{'the server' if self.method == 'thrift' else 'Spark'}'s jars (docs/engines.md, Thrift server)")

    def _sql(self, statement: str) -> tuple[list[str], list[tuple]]:
        """Run one statement; its column names and rows."""
        if self.method == "thrift":
            cursor = self._thrift()
            cursor.execute(statement)
            if not cursor.description:
                return [], []
            return [d[0].split(".")[-1] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]
        frame = self.session().sql(statement)
        return list(frame.columns), [tuple(r) for r in frame.collect()]

    def _columns(self, table: str) -> list[tuple[str, str]]:
        """A table's columns and their Spark types, in order (the partition column last)."""
        out = []
        for name, kind, *_ in self._sql(f"DESCRIBE {_qualified(table)}")[1]:
            if not name or name.startswith("#"):
                break
            out.append((name, kind))
        return out

    def _exists(self, table: str) -> bool:
        schema, name = table.split(".")
        return any(r[1] == name for r in self._sql(f"SHOW TABLES IN {_ident(schema)}")[1])

    def _put(self, table: str, rows, overwrite: bool = False) -> None:
        """Write an Arrow table's rows into a Spark table (columns in the table's order). With
        ``overwrite``, a partitioned table has the partitions the rows fall in replaced whole, an
        unpartitioned one all its rows."""
        import pyarrow as pa

        # naive UTC timestamps, labelled as such: Spark's TIMESTAMP is an instant
        rows = rows.cast(pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type)
                                    else f for f in rows.schema]))
        if self.method == "session":
            self.session().createDataFrame(rows).write.insertInto(table, overwrite=overwrite)
            return
        # Through the Thrift server: a Parquet file under the warehouse directory, which the
        # server reads (the directory is shared between this machine and the server).
        import pyarrow.parquet as pq

        folder = self.warehouse_dir / "loanwatch-io" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        try:
            pq.write_table(rows, folder / "part-0.parquet")
            names = ", ".join(_ident(f.name) for f in rows.schema)
            self._sql(f"INSERT {'OVERWRITE' if overwrite else 'INTO'} TABLE {_qualified(table)} "
                      f"SELECT {names} FROM parquet.{_ident(str(folder))}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _get(self, table: str):
        """A table's rows as Arrow."""
        if self.method == "session":
            return self.session().table(_qualified(table)).toArrow()
        import pyarrow.parquet as pq

        folder = self.warehouse_dir / "loanwatch-io" / uuid.uuid4().hex
        try:
            self._sql(f"INSERT OVERWRITE DIRECTORY {_literal(str(folder))} USING parquet SELECT * FROM {_qualified(table)}")
            files = sorted(folder.glob("*.parquet"))
            return pq.read_table(files) if files else None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def query(self, sql: str, duck) -> list[tuple]:
        return self._sql(sql)[1]  # (in Spark: ``duck`` is not read)

    def dq_tables(self) -> list[str]:
        """The checks whose failing rows the build kept (schema dq)."""
        if not any(r[0] == "dq" for r in self._sql("SHOW DATABASES")[1]):
            return []
        return sorted(r[1] for r in self._sql("SHOW TABLES IN dq")[1])

    def dq_rows(self, check: str, limit: int) -> tuple[list[str], list[tuple]]:
        # (the name is one dq_tables() listed; quoted as an identifier all the same)
        return self._sql(f"SELECT * FROM {_qualified('dq.' + check)} LIMIT {int(limit)}")

    @contextlib.contextmanager
    def _failing_as(self, what: str) -> Iterator[None]:
        """Spark's errors (a Java stack under a Python one) as one line naming what failed."""
        try:
            yield
        except EngineUnreachable:
            raise
        except Exception as exc:
            raise EngineUnreachable(f"{self.where()}: {what} failed ({first_line(exc, 300)}); Spark's log: "
                                    f"{self.warehouse_dir / 'spark.log'}") from None

    # --- landing -----------------------------------------------------------------------------

    def _prepare(self, duck) -> dict[str, list[str]]:
        """Create (or widen) the staging tables like the ingest ledger's; their columns, in the
        table's order (the partition column last)."""
        self._sql("CREATE DATABASE IF NOT EXISTS staging")
        self._sql("CREATE DATABASE IF NOT EXISTS meta")
        self._sql(f"CREATE TABLE IF NOT EXISTS meta.landed_batches ({_MANIFEST}) USING parquet")
        landed: dict[str, list[str]] = {}
        for table in STAGING_TABLES:
            schema, name = table.split(".")
            columns = [(c, t) for c, t in duck.execute(
                """SELECT column_name, data_type FROM information_schema.columns
                   WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
                   ORDER BY ordinal_position""", [schema, name]).fetchall() if c not in NOT_LANDED]
            data = [(c, t) for c, t in columns if c != PARTITION]
            if not self._exists(table):
                self._sql(f"CREATE TABLE {_qualified(table)} ({', '.join(f'{_ident(c)} {spark_type(t)}' for c, t in data)}, "
                          f"{PARTITION} BIGINT) USING parquet PARTITIONED BY ({PARTITION})")
            present = {c for c, _ in self._columns(table)}
            missing = [(c, t) for c, t in data if c not in present]
            if missing:  # a column a newer version of the ledger added
                self._sql(f"ALTER TABLE {_qualified(table)} ADD COLUMNS "
                          f"({', '.join(f'{_ident(c)} {spark_type(t)}' for c, t in missing)})")
            landed[table] = [c for c, _ in self._columns(table)]
        return landed

    def land(self, duck) -> int:
        """Land every batch of the ingest ledger (``duck``) that the manifest does not list.
        Returns how many batches were landed."""
        with self._failing_as("landing the batches"):
            return self._land(duck)

    def _land(self, duck) -> int:
        import datetime

        import pyarrow as pa

        columns = self._prepare(duck)
        landed = self._sql("SELECT batch_id, ledger_id FROM meta.landed_batches")[1]
        ledger, batches = pending_batches(duck, landed, self.where(), "its own [spark] warehouse_dir")
        if not batches:
            return 0
        ids = [int(b[0]) for b in batches]
        for table, cols in columns.items():
            names = ", ".join(f'"{c}"' for c in cols)
            rows = duck.sql(f"SELECT {names} FROM {table} WHERE batch_id IN (SELECT unnest($ids))",
                            params={"ids": ids}).to_arrow_table()
            if rows.num_rows:  # the batches' partitions are replaced whole: what a killed landing left there goes
                self._put(table, rows, overwrite=True)
        # Last, the manifest (see the module's doc).
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        manifest = pa.table({
            "batch_id": pa.array([int(b[0]) for b in batches], pa.int64()),
            "entity": [b[1] for b in batches], "file_name": [b[2] for b in batches],
            "content_hash": [b[3] for b in batches],
            "rows_landed": pa.array([int(b[4] or 0) for b in batches], pa.int64()),
            "landed_at": pa.array([now] * len(batches), pa.timestamp("us")), "ledger_id": [ledger] * len(batches)})
        self._put("meta.landed_batches", manifest)
        return len(batches)

    # --- builds ------------------------------------------------------------------------------

    def mirror_builds(self, duck) -> None:
        """Copy the warehouse's build rows to Spark's meta.builds (what the models read)."""
        with self._failing_as("copying meta.builds"):
            rows = duck.sql("""SELECT build_id, status, full_refresh, through_batch_id, since_batch_id, data_date
                               FROM meta.builds ORDER BY build_id""").to_arrow_table()
            self._sql("CREATE DATABASE IF NOT EXISTS meta")
            self._sql("""CREATE TABLE IF NOT EXISTS meta.builds (build_id BIGINT, status STRING, full_refresh BOOLEAN,
                             through_batch_id BIGINT, since_batch_id BIGINT, data_date DATE) USING parquet""")
            self._put("meta.builds", rows, overwrite=True)

    # --- export ------------------------------------------------------------------------------

    def export(self, tables: list[str], target: Path, changes: bool = False) -> list[str]:
        """Copy ``schema.table`` relations from Spark into the DuckDB file ``target`` (replacing
        tables of the same name), as Arrow, with the types Spark declares. Always whole: Spark
        keeps no changes (docs/engines.md, "Serving")."""
        import duckdb

        duck = duckdb.connect(str(target))
        try:
            duck.execute("SET TimeZone = 'UTC'")  # Spark's instants, back to naive UTC timestamps
            for table in tables:
                columns = [(c, duck_type(t)) for c, t in self._columns(table)]
                schema = table.split(".")[0]
                duck.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}")
                name = qualified(table)
                duck.execute(f"CREATE OR REPLACE TABLE {name} ({', '.join(f'{quoted(c)} {t}' for c, t in columns)})")
                arrow = self._get(table)
                if arrow is not None and arrow.num_rows:
                    duck.register("exported", arrow)
                    duck.execute(f"INSERT INTO {name} BY NAME SELECT * FROM exported")
                    duck.unregister("exported")
            duck.execute("CHECKPOINT")
        finally:
            duck.close()
        return []


_MANIFEST = ("batch_id BIGINT, entity STRING, file_name STRING, content_hash STRING, rows_landed BIGINT, "
             "landed_at TIMESTAMP, ledger_id STRING")


def _literal(text: str) -> str:
    """A Spark SQL string literal (a path of the settings, never a user's value)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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


def valid_master(master: str) -> bool:
    return bool(re.fullmatch(r"local(\[(\d+|\*)\])?|(spark|k8s|mesos)://\S+|yarn", master))
