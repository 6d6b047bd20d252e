"""The read-only serving snapshot that reports and the dashboard read.

DuckDB allows one writer process or many readers, never both, so after a successful build the
pipeline copies what readers need (schemas core, marts, meta) into a new file and renames it over
``serving.duckdb`` in one atomic step. A reader that has the old file open keeps reading it; the
next open sees the new one. A build that fails its checks never publishes.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from loanwatch.config import Settings

PUBLISHED_SCHEMAS = ("core", "marts", "meta")


class NoSnapshot(RuntimeError):
    """Nothing has been published yet."""


def publish(con: duckdb.DuckDBPyConnection, settings: Settings) -> Path:
    """Copy the published schemas of the open warehouse into a fresh snapshot, then swap it in."""
    target = settings.serving_path
    tmp = target.with_name(target.name + ".tmp")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        if leftover.exists():
            leftover.unlink()
    con.execute("ATTACH ? AS serving_new", [str(tmp)])
    try:
        # Tables, and views materialised (a view's sources, in staging, are not published).
        tables = con.execute(
            """SELECT schema_name, table_name FROM duckdb_tables()
               WHERE database_name = current_database() AND schema_name IN $schemas
               UNION ALL
               SELECT schema_name, view_name FROM duckdb_views()
               WHERE database_name = current_database() AND schema_name IN $schemas AND NOT internal
               ORDER BY 1, 2""",
            {"schemas": list(PUBLISHED_SCHEMAS)},
        ).fetchall()
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS serving_new.{schema}")
        for schema, table in tables:
            # Names come from the engine's own catalog of our schemas; quoted all the same.
            con.execute(f'CREATE TABLE serving_new."{schema}"."{table}" AS SELECT * FROM "{schema}"."{table}"')
    finally:
        con.execute("DETACH serving_new")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


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
