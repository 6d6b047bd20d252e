"""Reading data-quality results: every build records each check in meta.dq_results.

The checks themselves are dbt tests (generic ones in the model YAML, singular ones in
transform/dbt_project/tests/); each that finds failing rows stores them in schema `dq`. See docs/quality.md.
"""

from __future__ import annotations

import duckdb

from loanwatch.config import Settings
from loanwatch.reports import Table, run_query
from loanwatch.warehouse import read_warehouse


def checks_of(con: duckdb.DuckDBPyConnection, build_id: int | None = None) -> Table:
    """Every check of a build (default: the latest with results), failures first."""
    return run_query(con, """
        SELECT check_name AS "check", model, severity, status, failing_rows, sample_keys
        FROM meta.dq_results
        WHERE build_id = coalesce($build, (SELECT max(build_id) FROM meta.dq_results))
        ORDER BY CASE status WHEN 'error' THEN 0 WHEN 'fail' THEN 1 WHEN 'warn' THEN 2 ELSE 3 END, check_name""",
        {"build": build_id})


def rejected_rows(con: duckdb.DuckDBPyConnection, file: str | None = None, newest_first: bool = False,
                  limit: int | None = None) -> Table:
    """Quarantined rows: entity, file, line, field, reason, raw."""
    order = "batch_id DESC, line_no" if newest_first else "batch_id, line_no"
    return run_query(con, f"""
        SELECT entity, file_name AS file, line_no AS line, field, reason, raw FROM meta.rejects
        WHERE $file IS NULL OR file_name = $file
        ORDER BY {order} LIMIT $limit""", {"file": file, "limit": limit})


def latest_results(settings: Settings, build_id: int | None = None) -> tuple[dict, Table]:
    with read_warehouse(settings) as con:
        row = con.execute(
            """SELECT build_id, status, data_date, published, message FROM meta.builds
               WHERE (? IS NULL AND status <> 'running') OR build_id = ? ORDER BY build_id DESC LIMIT 1""",
            [build_id, build_id],
        ).fetchall()
        if not row:
            raise LookupError("no build yet: run `loanwatch build`" if build_id is None else f"no build {build_id}")
        build = dict(zip(["build_id", "status", "data_date", "published", "message"], row[0]))
        return build, checks_of(con, build["build_id"])


def rejects(settings: Settings, file: str | None = None) -> Table:
    with read_warehouse(settings) as con:
        return rejected_rows(con, file)


def check_rows(settings: Settings, check: str, limit: int = 1000) -> Table:
    """A check's failing rows, where the build ran and kept them (schema dq). A check that passed
    keeps no table there: no columns and no rows. LookupError for a name no check has, or a check
    that kept no rows because it could not run."""
    from loanwatch.engines import open_engine

    engine = open_engine(settings)
    if check in engine.dq_tables():
        return Table(*engine.dq_rows(check, limit))
    with read_warehouse(settings) as con:
        last = con.execute("SELECT build_id, status FROM meta.dq_results WHERE check_name = ? "
                           "ORDER BY build_id DESC LIMIT 1", [check]).fetchall()
        if not last:
            known = [r[0] for r in con.execute(
                "SELECT DISTINCT check_name FROM meta.dq_results ORDER BY 1").fetchall()]
            raise LookupError(f"no check named {check!r}; checks: {', '.join(known)}")
    build_id, status = last[0]
    if status != "pass":
        raise LookupError(f"check {check!r} kept no failing rows: it ended {status!r} in build {build_id} "
                          f"(`loanwatch check --build {build_id}` says why)")
    return Table([], [])


# The Operations page: builds, checks and quarantine over time (from the snapshot's meta tables,
# as of the published build; `loanwatch runs` and <home>/runs.json have the runs since).
def builds_over_time(con: duckdb.DuckDBPyConnection) -> Table:
    """Every build: when, how long, full or incremental, its status and data date."""
    return run_query(con, """
        SELECT build_id, strftime(started_at, '%Y-%m-%d %H:%M') AS started_at,
               round(epoch(finished_at - started_at), 1) AS seconds,
               CASE WHEN full_refresh THEN 'full' ELSE 'incremental' END AS kind, status, data_date, message
        FROM meta.builds ORDER BY build_id""", None)


def checks_over_time(con: duckdb.DuckDBPyConnection) -> Table:
    """Per build, the checks that found rows, by severity (errors keep a build from publishing)."""
    return run_query(con, """
        SELECT build_id, severity, count(*) FILTER (WHERE status IN ('fail', 'warn', 'error')) AS checks_failing,
               coalesce(sum(failing_rows) FILTER (WHERE status IN ('fail', 'warn', 'error')), 0) AS failing_rows
        FROM meta.dq_results GROUP BY build_id, severity ORDER BY build_id, severity""", None)


def ingest_over_time(con: duckdb.DuckDBPyConnection) -> Table:
    """Per day of ingest: files, rows accepted and rows quarantined."""
    return run_query(con, """
        SELECT strftime(ingested_at, '%Y-%m-%d') AS day, count(*) AS files,
               coalesce(sum(rows_accepted), 0) AS rows_accepted, coalesce(sum(rows_rejected), 0) AS rows_quarantined
        FROM meta.batches GROUP BY ALL ORDER BY day""", None)
