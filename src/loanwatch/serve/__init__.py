"""The read-only serving snapshot that reports and the dashboard read.

DuckDB allows one writer process or many readers, never both, so after a successful build the
pipeline copies what readers need (schemas core and marts, which the build writes to the file
``published.duckdb``, and the meta tables, copied into it first) to a new file and renames it over
``serving.duckdb`` in one atomic step. A reader that has the old file open keeps reading it; the
next open sees the new one. A build that fails its checks never publishes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb

from loanwatch.config import Settings

class NoSnapshot(RuntimeError):
    """Nothing has been published yet."""


def publish(con: duckdb.DuckDBPyConnection, settings: Settings) -> Path:
    """Put the meta tables into the published database, then copy it and swap the copy in.

    The build writes what readers need (schemas core and marts) to ``published.duckdb``, so a
    snapshot is a plain file copy, whatever the size of the warehouse; only the small meta
    tables are copied row by row, into the published file before the copy.
    """
    source = settings.published_path
    target = settings.serving_path
    tmp = target.with_name(target.name + ".tmp")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        if leftover.exists():
            leftover.unlink()
    with _published(con, source):
        con.execute("CREATE SCHEMA IF NOT EXISTS published.meta")
        meta = con.execute(
            """SELECT table_name FROM duckdb_tables()
               WHERE database_name = current_database() AND schema_name = 'meta' ORDER BY 1"""
        ).fetchall()
        for (table,) in meta:
            # Names come from the engine's own catalog of our schema; quoted all the same.
            con.execute(f'CREATE OR REPLACE TABLE published.meta."{table}" AS SELECT * FROM meta."{table}"')
        # Everything is in the file itself (no pending WAL), and stays so: nothing else writes
        # it while the writer lock is held.
        con.execute("CHECKPOINT published")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


def clear_published(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Drop every table of the published database before a full refresh.

    A full refresh rewrites all of them; dropping them first lets the new tables reuse the old
    ones' blocks, so the file (which DuckDB never shrinks, and publishing copies whole) does not
    grow to hold both.
    """
    with _published(con, settings.published_path):
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'published'").fetchall()
        for schema, name in tables:
            # names from the engine's own catalog, quoted all the same
            con.execute(f'DROP TABLE published."{schema}"."{name}"')
        con.execute("CHECKPOINT published")


@contextlib.contextmanager
def _published(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[None]:
    """The published database attached as `published` (dbt's own connection in this process
    may have attached it already: then it stays attached)."""
    attached = con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'published'").fetchone()[0]
    if not attached:
        con.execute("ATTACH ? AS published", [str(path)])
    try:
        yield
    finally:
        if not attached:
            con.execute("DETACH published")


def open_snapshot(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the snapshot published now.

    DuckDB caches database instances by path within a process: connecting to serving.duckdb
    again while an older connection lives would return the old, renamed-over file. A fresh
    in-memory instance that attaches the file always opens the current one.
    """
    path = settings.serving_path
    if not path.exists():
        raise NoSnapshot(
            f"{settings.home}: no published data yet. Run `loanwatch ingest FILES` and then `loanwatch build`."
        )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("ATTACH ? AS snapshot (READ_ONLY)", [str(path)])
    con.execute("USE snapshot")
    return con
