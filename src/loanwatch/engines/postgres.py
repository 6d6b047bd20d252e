"""PostgreSQL as the engine: land staging, mirror the build watermark, export what readers need.

* ``land``: the accepted rows of every batch the server does not have yet are copied (``COPY``,
  as CSV streamed from Arrow) into its ``staging`` tables, and the batches are written to its
  manifest ``meta.landed_batches``, in one transaction. The manifest is the single source of
  truth: a process killed before the commit leaves nothing on the server, and the next ingest or
  build lands those batches again; one killed after it has them counted once.
* ``mirror_builds``: the models read the last good build's watermark and data date from
  ``meta.builds`` on the engine they run on (macros/incremental/watermark.sql), so the build's rows are
  copied there before and after dbt runs.
* ``export``: after a good build, the tables readers need (models configured
  ``database: published``) are copied from the server into the build's DuckDB file, which then
  becomes the serving snapshot, as on DuckDB.

The password is read only from the environment (``LOANWATCH_POSTGRES__PASSWORD``); dbt gets it
through a ``DBT_ENV_SECRET_`` variable for the duration of its run, never through a file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loanwatch.config import Settings
from loanwatch.engines import Engine, EngineUnreachable, pending_batches, qualified, quoted
from loanwatch.errors import first_line
from loanwatch.ingest.contract import ENTITIES

# The staging tables the dbt sources read (the raw record stays in the local ingest ledger:
# no model reads it, and it is most of a row's bytes).
STAGING_TABLES = [*(e.table for e in ENTITIES.values()), "staging.loan_schedules"]
NOT_LANDED = {"record"}
PASSWORD_VARIABLE = "DBT_ENV_SECRET_LOANWATCH_POSTGRES_PASSWORD"

_TO_PG = {"VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
          "TIMESTAMP": "TIMESTAMP", "DOUBLE": "DOUBLE PRECISION", "HUGEINT": "NUMERIC(38,0)"}


def pg_type(duck_type: str) -> str:
    t = duck_type.upper()
    if t.startswith("DECIMAL"):
        return "NUMERIC" + t[len("DECIMAL"):]
    return _TO_PG.get(t, "TEXT")


def duck_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """The DuckDB type of a PostgreSQL column (information_schema names)."""
    t = data_type.lower()
    if t == "numeric":
        if precision is None:  # unconstrained (a model that casts none): wide, and exact to 10 places
            return "DECIMAL(38,10)"
        return f"DECIMAL({min(int(precision), 38)},{int(scale or 0)})"
    return {"bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "double precision": "DOUBLE",
            "real": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp without time zone": "TIMESTAMP",
            "timestamp with time zone": "TIMESTAMPTZ", "interval": "INTERVAL"}.get(t, "VARCHAR")


class PostgresEngine(Engine):
    name = "postgres"
    place = "on the server"  # where batches land, in messages
    target = "postgres"
    exports_published = True
    resumes_after_failure = True

    def __init__(self, settings: Settings):
        super().__init__(settings)
        pg = settings.section("postgres")
        self.host = str(pg.get("host") or "localhost")
        self.port = int(pg.get("port") or 5432)
        self.user = str(pg.get("user") or "")
        self.dbname = str(pg.get("dbname") or "")
        self.timeout = int(pg.get("connect_timeout") or 10)
        self.threads = int(pg.get("threads") or 2)
        self._password = str(pg.get("password") or "")

    # --- connections -------------------------------------------------------------------------

    def where(self) -> str:
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self):
        import psycopg2

        try:
            conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=self.dbname,
                                    password=self._password or None, connect_timeout=self.timeout,
                                    application_name="loanwatch")
        except psycopg2.Error as exc:
            raise EngineUnreachable(f"{self.where()}: cannot connect ({self._first_line(exc)}); check [postgres] host, "
                                    "port, user and dbname, and LOANWATCH_POSTGRES__PASSWORD") from None
        conn.autocommit = False
        return conn

    def _first_line(self, exc: BaseException) -> str:
        text = first_line(exc)
        return text.replace(self._password, "***") if self._password else text

    @contextlib.contextmanager
    def session(self) -> Iterator:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def outputs(self, writes_models: bool = True) -> dict:
        """The dbt profile output: everything but the password, which dbt reads from the
        environment while it runs (``dbt_environment()``)."""
        return {self.target: {"type": "postgres", "host": self.host, "port": self.port, "user": self.user,
                              "password": "{{ env_var('" + PASSWORD_VARIABLE + "', '') }}",
                              "dbname": self.dbname, "schema": "public", "threads": self.threads,
                              "connect_timeout": self.timeout}}

    def dbt_environment(self) -> dict[str, str]:
        """What dbt's connections need from the environment while it runs: the password, and
        two planner settings (libpq's PGOPTIONS, added to any the user set).

        * JIT compilation off: it compiles each model's plan for seconds (3.4 s of
          fct_loan_states' 13 s at M) and gains nothing back on these queries: a 1 % batch at M,
          fct_calls 3.9 -> 1.3 s, the hold-out's loan-days 3.5 -> 1.7 s, transitions 2.2 -> 1.0 s.
        * Nested loops off where another join can do (a range join with no equal column still
          loops): on an incremental build the planner, estimating a filtered input at a row or
          two, looped over an unindexed table once per row of the other. A 1 % batch at M, paired
          from one database: 54.9 -> 37.1 s (int_servicing_steps 15.1 -> 2.8 s, payments 4.2 -> under
          1 s); the full build 95.9 -> 89.1 s.
        """
        options = " ".join(filter(None, [os.environ.get("PGOPTIONS", ""), "-c jit=off -c enable_nestloop=off"]))
        return {PASSWORD_VARIABLE: self._password, "PGOPTIONS": options}

    def query(self, sql: str, duck) -> list[tuple]:
        return self.query_table(sql)[1]  # (on the server: ``duck`` is not read)

    def query_table(self, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a query on the server."""
        with self.session() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return [d[0] for d in cur.description], cur.fetchall()

    def dq_tables(self) -> list[str]:
        """The checks whose failing rows the build kept (schema dq)."""
        return [r[0] for r in self.query_table(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dq' ORDER BY 1")[1]]

    def dq_rows(self, check: str, limit: int) -> tuple[list[str], list[tuple]]:
        return self.query_table(f"SELECT * FROM dq.{quoted(check)} LIMIT %s", (int(limit),))

    # --- landing -----------------------------------------------------------------------------

    def _prepare(self, cur, duck) -> dict[str, list[str]]:
        """Create (or widen) the server's staging tables like the ingest ledger's; the columns landed."""
        cur.execute("CREATE SCHEMA IF NOT EXISTS staging")
        cur.execute("CREATE SCHEMA IF NOT EXISTS meta")
        cur.execute("""CREATE TABLE IF NOT EXISTS meta.landed_batches (
                           batch_id BIGINT PRIMARY KEY, entity TEXT, file_name TEXT, content_hash TEXT,
                           rows_landed BIGINT, landed_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC'), ledger_id TEXT)""")
        cur.execute("SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'staging'")
        present: dict[str, set[str]] = {}
        for table, column in cur.fetchall():
            present.setdefault(table, set()).add(column)
        landed: dict[str, list[str]] = {}
        for table in STAGING_TABLES:
            schema, name = table.split(".")
            columns = [(c, t) for c, t, *_ in duck.execute(
                """SELECT column_name, data_type FROM information_schema.columns
                   WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
                   ORDER BY ordinal_position""", [schema, name]).fetchall() if c not in NOT_LANDED]
            if table not in present:
                cur.execute(f"CREATE TABLE {qualified(table)} ({', '.join(f'{quoted(c)} {pg_type(t)}' for c, t in columns)})")
            for c, t in columns:  # a column a newer version of the ledger added (locks the table: only when needed)
                if table in present and c not in present[table]:
                    cur.execute(f"ALTER TABLE {qualified(table)} ADD COLUMN {quoted(c)} {pg_type(t)}")
            landed[table] = [c for c, _ in columns]
        return landed

    def land(self, duck) -> int:
        """Land every batch of the ingest ledger (``duck``, the warehouse connection) that the
        server's manifest does not list. Returns how many batches were landed."""
        import psycopg2.errors
        import pyarrow.csv as pacsv

        with self.session() as conn:
            cur = conn.cursor()
            columns = self._prepare(cur, duck)
            cur.execute("SELECT batch_id, ledger_id FROM meta.landed_batches")
            ledger, batches = pending_batches(duck, cur.fetchall(), self.where(), "an empty database ([postgres] dbname)")
            if not batches:
                conn.rollback()
                return 0
            ids = [int(b[0]) for b in batches]
            options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
            for table, cols in columns.items():
                names = ", ".join(quoted(c) for c in cols)
                reader = duck.sql(f"SELECT {names} FROM {qualified(table)} WHERE batch_id IN (SELECT unnest($ids))",
                                  params={"ids": ids}).to_arrow_reader(200_000)
                with tempfile.TemporaryFile() as buffer:
                    rows = 0
                    for chunk in reader:
                        if chunk.num_rows:
                            pacsv.write_csv(chunk, buffer, options)
                            rows += chunk.num_rows
                    if rows:
                        buffer.seek(0)
                        cur.copy_expert(f"COPY {qualified(table)} ({names}) FROM STDIN WITH (FORMAT csv)", buffer)
            from psycopg2.extras import execute_values

            # Last, the manifest: its key makes a second lander of the same batches (another
            # machine sharing the server) fail here, and roll its copies back with it.
            try:
                execute_values(cur, "INSERT INTO meta.landed_batches (batch_id, entity, file_name, content_hash, rows_landed, "
                               "ledger_id) VALUES %s", [(int(b[0]), b[1], b[2], b[3], int(b[4] or 0), ledger) for b in batches])
            except psycopg2.errors.UniqueViolation:
                conn.rollback()
                raise EngineUnreachable(f"{self.where()}: another loanwatch landed the same batches meanwhile; "
                                        "nothing was landed twice: run the command again") from None
            conn.commit()
            return len(batches)

    # --- builds ------------------------------------------------------------------------------

    def mirror_builds(self, duck) -> None:
        """Copy the warehouse's build rows to the server's meta.builds (what the models read)."""
        from psycopg2.extras import execute_values

        rows = duck.execute("""SELECT build_id, status, full_refresh, through_batch_id, since_batch_id, data_date
                               FROM meta.builds ORDER BY build_id""").fetchall()
        with self.session() as conn:
            cur = conn.cursor()
            cur.execute("CREATE SCHEMA IF NOT EXISTS meta")
            cur.execute("""CREATE TABLE IF NOT EXISTS meta.builds (build_id BIGINT PRIMARY KEY, status TEXT,
                               full_refresh BOOLEAN, through_batch_id BIGINT, since_batch_id BIGINT, data_date DATE)""")
            cur.execute("DELETE FROM meta.builds")
            if rows:
                execute_values(cur, "INSERT INTO meta.builds VALUES %s", rows)
            conn.commit()

    # --- export ------------------------------------------------------------------------------

    def export(self, tables: list[str], target: Path, changes: bool = False) -> list[str]:
        """Copy ``schema.table`` relations from the server into the DuckDB file ``target``
        (replacing tables of the same name); the tables exported by their changes.

        Each table goes out of the server as CSV (``COPY … TO STDOUT``) into a temporary file,
        which DuckDB's own reader loads in parallel with the column types the server declares.
        One thread copies the next table out while DuckDB loads the one before (at M: 9 s of
        copying out, in 5.5 million rows).

        With ``changes`` (``target`` holds the tables as the server had them before this build: the
        last good build's snapshot), a table whose changes the build kept (schema ``changes``,
        macros/incremental/recompute.sql) gets only those: the rows the build deleted are deleted
        from it, every column equal, and the rows it inserted are inserted. When the rows deleted
        there are not as many as the server deleted, the copy was not what the server had, and
        the table is copied whole after all.
        """
        import duckdb

        work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        duck = duckdb.connect(str(target))
        by_changes: list[str] = []
        try:
            with self.session() as conn, ThreadPoolExecutor(1, thread_name_prefix="export") as pool:
                cur = conn.cursor()
                cur.execute("""SELECT table_schema || '.' || table_name, column_name, data_type, numeric_precision,
                                      numeric_scale
                               FROM information_schema.columns WHERE table_schema IN ('core', 'marts')
                               ORDER BY table_schema, table_name, ordinal_position""")
                declared: dict[str, list[tuple[str, str]]] = {}
                for table, column, data_type, precision, scale in cur.fetchall():
                    declared.setdefault(table, []).append((column, duck_type(data_type, precision, scale)))
                missing = [t for t in tables if not declared.get(t)]
                if missing:
                    raise RuntimeError(f"{self.where()}: {', '.join(missing)} missing after the build")
                kept: set[str] = set()  # the changes the build kept, of tables the copy has
                if changes:
                    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'changes'")
                    names = {name for (name,) in cur.fetchall()}
                    kept = {f"{schema}.{table}" for schema, table in duck.execute(
                                "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
                            if {f"{schema}__{table}__removed", f"{schema}__{table}__added"} <= names}
                # (table, the relations to copy out): the table itself, or the rows it lost and gained
                # (named as changes_relation() in macros/incremental/recompute.sql names them)
                jobs = [(t, [f"changes.{t.replace('.', '__')}__{kind}" for kind in ("removed", "added")] if t in kept else [t])
                        for t in tables]
                files = itertools.count()

                def copy_out(relations: list[str]) -> list[Path]:
                    paths = []
                    for relation in relations:
                        path = work / f"{next(files)}.csv"
                        with open(path, "wb") as fh:
                            cur.copy_expert(f"COPY (SELECT * FROM {qualified(relation)}) TO STDOUT WITH (FORMAT csv)", fh)
                        paths.append(path)
                    return paths

                # NULL is an empty field, an empty text a quoted one (PostgreSQL's CSV)
                read = ("SELECT * FROM read_csv($path, header = false, auto_detect = false, columns = $columns, "
                        "allow_quoted_nulls = false)")

                def load_whole(table: str, path: Path) -> None:
                    columns = declared[table]
                    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(table.split('.')[0])}")
                    duck.execute(f"CREATE OR REPLACE TABLE {qualified(table)} "
                                 f"({', '.join(f'{quoted(c)} {t}' for c, t in columns)})")
                    if path.stat().st_size:
                        duck.execute(f"INSERT INTO {qualified(table)} {read}", {"path": str(path), "columns": dict(columns)})

                def apply_changes(table: str, removed: Path, added: Path) -> bool:
                    columns = declared[table]
                    duck.execute("BEGIN")
                    if removed.stat().st_size:  # (an empty file: nothing to read, nothing removed)
                        duck.execute(f"CREATE OR REPLACE TEMP TABLE removed AS {read}",
                                     {"path": str(removed), "columns": dict(columns)})
                        expected = duck.execute("SELECT count(*) FROM removed").fetchone()[0]
                        same = " AND ".join(f"t.{quoted(c)} IS NOT DISTINCT FROM r.{quoted(c)}" for c, _ in columns)
                        # A row equal to a removed one was removed too (the delete's condition reads
                        # only the row), so the copy, if it held what the server did, loses as many.
                        deleted = duck.execute(f"DELETE FROM {qualified(table)} AS t USING removed AS r WHERE {same}"
                                               ).fetchone()[0]
                        duck.execute("DROP TABLE removed")
                        if deleted != expected:
                            duck.execute("ROLLBACK")
                            return False
                    if added.stat().st_size:
                        duck.execute(f"INSERT INTO {qualified(table)} {read}", {"path": str(added), "columns": dict(columns)})
                    duck.execute("COMMIT")
                    return True

                again = []
                pending = pool.submit(copy_out, jobs[0][1]) if jobs else None
                for index, (table, _) in enumerate(jobs):
                    paths = pending.result()
                    pending = pool.submit(copy_out, jobs[index + 1][1]) if index + 1 < len(jobs) else None
                    if len(paths) == 1:
                        load_whole(table, paths[0])
                    elif apply_changes(table, *paths):
                        by_changes.append(table)
                    else:
                        again.append(table)
                    for path in paths:
                        path.unlink()
                for table in again:  # (the pool is done: its cursor is free)
                    load_whole(table, copy_out([table])[0])
            duck.execute("CHECKPOINT")
        finally:
            duck.close()
            shutil.rmtree(work, ignore_errors=True)
        return by_changes
