"""`loanwatch build`: run the dbt project, record every check, publish only a good build."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from loanwatch.config import Settings
from loanwatch.engines import Engine, open_engine
from loanwatch.errors import engine_line, explain, first_line
from loanwatch.errors import is_damage as explain_damage
from loanwatch.serve import clear_published, publish, restore_published, unreadable_snapshot
from loanwatch.transform import PROJECT_DIR, DbtRun, dbt_vars, release_dbt, run_dbt
from loanwatch.warehouse import connect, init_warehouse, writer_lock


@dataclass
class BuildResult:
    build_id: int
    status: str  # success | failed
    published: bool
    data_date: object = None
    message: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run: DbtRun | None = None
    up_to_date: bool = False  # nothing new since the last good build: nothing was run


def build(settings: Settings, full_refresh: bool = False, select: list[str] | None = None) -> BuildResult:
    began = time.monotonic()
    engine = open_engine(settings)
    with writer_lock(settings):
        con = connect(settings.warehouse_path)
        try:
            init_warehouse(con)
            # batches an interrupted ingest left unlanded; or every batch, on an engine that lost its tables
            landed = engine.land(con)
            # A build that was killed leaves its row 'running': say so, then start afresh.
            con.execute("UPDATE meta.builds SET status = 'interrupted' WHERE status = 'running'")
            project = project_hash(settings, engine.fingerprint())
            if not (full_refresh or select or landed) and (current := _current_build(con, settings, project)):
                build_id, data_date = current
                return BuildResult(build_id, "success", True, data_date, up_to_date=True,
                                   message=f"nothing new since build {build_id}: nothing to do")
            build_id = con.execute("SELECT coalesce(max(build_id), 0) + 1 FROM meta.builds").fetchone()[0]
            through = con.execute("SELECT coalesce(max(batch_id), 0) FROM meta.batches").fetchone()[0]
            last = con.execute(
                """SELECT through_batch_id, project_hash FROM meta.builds
                   WHERE status = 'success' ORDER BY build_id DESC LIMIT 1"""
            ).fetchone()
            attempt = con.execute(
                "SELECT full_refresh, status FROM meta.builds ORDER BY build_id DESC LIMIT 1").fetchone()
            holds_snapshot = _engine_holds_snapshot(con, settings)
            # Incremental models recompute the loans of batches after the last good build,
            # starting from its snapshot. A changed dbt project (an upgrade), no good build yet,
            # no snapshot to start from, or a full refresh that did not finish means everything.
            damaged = unreadable_snapshot(settings)
            # On an engine that does not resume (Spark), whatever did not finish well.
            if (last is None or last[1] != project or (attempt[0] and attempt[1] != "success")
                    or (not engine.resumes_after_failure and attempt[1] != "success")
                    or not settings.serving_path.exists() or damaged):
                full_refresh = True
            since = 0 if full_refresh else int(last[0] or 0)
            if select:
                # A selection leaves the models outside it as they were: the next build starts
                # from where the last whole one did (the batches since then and, after an
                # upgrade, the new project), and recomputes what the selection already has,
                # which gives the same rows.
                through, project = (int(last[0] or 0), last[1]) if last else (0, "")
            con.execute(
                """INSERT INTO meta.builds (build_id, started_at, status, full_refresh, through_batch_id,
                                            published, project_hash, since_batch_id)
                   VALUES (?, now(), 'running', ?, ?, false, ?, ?)""",
                [build_id, full_refresh, through, project, since],
            )
            con.execute("CHECKPOINT")
            engine.mirror_builds(con)  # the models read the watermark on the engine they run on
        finally:
            con.close()

        run = _run_dbt_build(settings, engine, full_refresh, select, from_snapshot=not damaged, since=since)
        if (not engine.exports_published and not run.success and not full_refresh
                and (unreadable := _unreadable_start(run, settings))):
            # dbt started from a copy of the snapshot, which opened, but a part of it cannot be
            # read (a file cut short): start again from the warehouse alone, as a full build.
            damaged, full_refresh = unreadable, True
            con = connect(settings.warehouse_path)
            try:
                con.execute("UPDATE meta.builds SET full_refresh = true, since_batch_id = 0 WHERE build_id = ?", [build_id])
                con.execute("CHECKPOINT")
            finally:
                con.close()
            run = _run_dbt_build(settings, engine, True, select, from_snapshot=False, since=0)

        con = connect(settings.warehouse_path)
        try:
            started = time.monotonic()
            errors, warnings = _record_checks(con, build_id, run, engine)
            run.phases["checks recorded"] = time.monotonic() - started
            if damaged:
                warnings.insert(0, f"{damaged}: rebuilt everything from the warehouse instead of starting from it")
            if run.error:  # dbt's own exception, as dbt says it (one the engine knows, in its words)
                errors.insert(0, engine.known_fault(run.error) or run.error)
            ok = run.success and not errors
            data_date = None
            if ok:
                data_date = engine.query("SELECT data_date FROM core.int_data_date", con)[0][0]
            message = "" if ok else "; ".join(errors[:5])
            # A good build's row says 'success' in the warehouse only once its snapshot is in
            # place: the next build starts from the snapshot of the last build that says so. A
            # build killed before that stays 'running', and the next build recomputes everything
            # since the build before, whether or not the rename had happened (recomputing loans
            # the snapshot already has gives the same rows, as after any kill). The snapshot
            # carries its own row, final.
            con.execute(
                """UPDATE meta.builds SET finished_at = now(), status = ?, data_date = ?, message = ?
                   WHERE build_id = ?""",
                ["running" if ok else "failed", data_date, message, build_id],
            )
            published = False
            if ok:
                con.execute("CHECKPOINT")
                try:
                    if engine.exports_published:
                        seconds, by_changes = _export(settings, engine, run, full_refresh and not select,
                                                      from_snapshot=not damaged, changes=holds_snapshot and not full_refresh)
                        # beside dbt's nodes, where the build's time went (`make bench-postgres`),
                        # and the tables exported by their changes
                        con.execute("INSERT INTO meta.build_nodes VALUES (?, 'export', 'export', NULL, 'success', ?)",
                                    [build_id, seconds])
                        if by_changes:
                            con.executemany("INSERT INTO meta.build_nodes VALUES (?, 'export changes', 'export', ?, 'success', "
                                            "NULL)", [[build_id, table] for table in by_changes])
                    started = time.monotonic()
                    publish(con, settings, build_id)
                    run.phases["publish"] = time.monotonic() - started
                    published = True
                except Exception as exc:
                    ok, message = False, f"publishing the serving snapshot failed: {first_line(exc, 300)}"
                    errors.append(message)
                # what a later build compares to find nothing to do; a selection built only part
                # of the project, so a build after it always runs
                current = published and not select
                con.execute(
                    """UPDATE meta.builds SET status = ?, published = ?, message = ?, snapshot_stat = ?,
                                              code_version = ? WHERE build_id = ?""",
                    ["success" if ok else "failed", published, message,
                     _snapshot_stat(settings) if current else None, _code_version() if current else None, build_id],
                )
            run.phases["build"] = time.monotonic() - began  # all of it, but the last checkpoint
            # beside dbt's nodes, the build's phases (`make bench` profiles a build with them)
            con.executemany("INSERT INTO meta.build_nodes VALUES (?, ?, 'phase', NULL, 'success', ?)",
                            [[build_id, name, seconds] for name, seconds in run.phases.items()])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _write_status(settings, build_id, ok, published, data_date, message, errors, warnings)
    result = BuildResult(build_id, "success" if ok else "failed", published, data_date, message, errors, warnings, run)
    _report_to_slack(settings, result, through, since)
    return result


def _current_build(con, settings: Settings, project: str) -> tuple[int, object] | None:
    """The last build (id, data date) when a build now would do nothing it has not done: the
    latest attempt succeeded and published a snapshot that can be read, of every batch loaded,
    with this dbt project and these settings, by the same code (versions), and that snapshot is
    still the file it published and opens.
    Only the stale-data check reads the calendar; the build that published the snapshot ran it."""
    last = con.execute(
        """SELECT build_id, data_date, through_batch_id, project_hash, status, published, snapshot_stat,
                  code_version
           FROM meta.builds ORDER BY build_id DESC LIMIT 1""").fetchone()
    if last is None or last[4] != "success" or not last[5] or last[3] != project or last[7] != _code_version():
        return None
    newest = con.execute("SELECT coalesce(max(batch_id), 0) FROM meta.batches").fetchone()[0]
    # the snapshot that build published, untouched since (not cut short, replaced or removed)
    if newest > (last[2] or 0) or last[6] is None or last[6] != _snapshot_stat(settings):
        return None
    if unreadable_snapshot(settings):  # damaged in place: the build starts again from the warehouse
        return None
    return last[0], last[1]


def _engine_holds_snapshot(con, settings: Settings) -> bool:
    """Whether an exporting engine's tables are, table for table, those of the serving snapshot a
    build starts from, so that it may export only what the build changes: the last build was a
    good whole build, and the snapshot is still the file it published (its snapshot_stat; a
    selection records none). After a build that did not finish well, which may have written
    tables it never published, after a selection, which copied only its own tables, or with a
    snapshot put back by hand, the export copies every table whole."""
    last = con.execute("SELECT status, snapshot_stat FROM meta.builds ORDER BY build_id DESC LIMIT 1").fetchone()
    return bool(last) and last[0] == "success" and last[1] is not None and last[1] == _snapshot_stat(settings)


def _code_version() -> str:
    """The versions of the code a build ran with: loanwatch, dbt-core and DuckDB's adapter and library."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("loanwatch", "dbt-core", "dbt-duckdb", "duckdb"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def _snapshot_stat(settings: Settings) -> str | None:
    """The serving snapshot's size and modification time ("size mtime_ns"); None when absent."""
    try:
        stat = settings.serving_path.stat()
    except OSError:
        return None
    return f"{stat.st_size} {stat.st_mtime_ns}"


def up_to_date(settings: Settings) -> bool:
    """Whether `loanwatch build` would find nothing to do (`_current_build`); `loanwatch run`
    asks before it builds."""
    engine = open_engine(settings)
    con = connect(settings.warehouse_path)
    try:
        init_warehouse(con)
        return _current_build(con, settings, project_hash(settings, engine.fingerprint())) is not None
    finally:
        con.close()


def _run_dbt_build(settings: Settings, engine: Engine, full_refresh: bool, select, from_snapshot: bool,
                   since: int) -> DbtRun:
    # ``since``: the watermark meta.builds records for this build, given to the SQL in the
    # environment as well (macro since_batch(): no node queries meta.builds for it)
    environ = {"LOANWATCH_SINCE_BATCH": str(since)}
    # dbt unit tests check the SQL, not the data: the test suite runs them (`tests/integration`).
    args = ["--exclude-resource-type", "unit_test"] + (["--full-refresh"] if full_refresh else [])
    if select:
        # with everything upstream: a model computed from its parents as the last build left
        # them would read what that build recomputed (int_loan_days, int_servicing_*: only its
        # loans), not the whole book. A selector that already names parents (+x, 2+x, @x) or
        # intersects (a,b) is dbt's as it is.
        args += ["--select", *(s if re.match(r"[+@]|[0-9]+\+", s) or "," in s else f"+{s}" for s in select)]
    if engine.exports_published:  # the engine's tables are where incremental models start from
        return run_dbt(settings, "build", args, engine=engine, environ=environ)
    # The build writes published.duckdb: from nothing on a full refresh, otherwise from a copy
    # of the snapshot (a selection rebuilds only its models and their parents and keeps the rest), made while
    # dbt loads; dbt opens the file only when the copy is complete.
    copy: dict[str, float] = {}

    def restore() -> None:
        started = time.monotonic()
        restore_published(settings)
        copy["snapshot copy"] = time.monotonic() - started

    def wait() -> None:  # dbt's first connection waits here for the copy
        started = time.monotonic()
        restored.result()
        copy["snapshot wait"] = time.monotonic() - started

    with ThreadPoolExecutor(1, thread_name_prefix="restore-published") as pool:
        if _starts_empty(settings, full_refresh and not select, from_snapshot):
            clear_published(settings)
            restored = None
        else:
            restored = pool.submit(restore)
        run = run_dbt(settings, "build", args, before_connect=wait if restored else None, engine=engine,
                      environ=environ)
    run.phases.update(copy)
    # Close dbt's DuckDB instance: its files are complete, and published.duckdb is renamed
    # into the snapshot (or started again).
    release_dbt()
    return run


def _starts_empty(settings: Settings, everything: bool, from_snapshot: bool) -> bool:
    """Whether the build's DuckDB file starts from nothing (a build of everything, no snapshot,
    or one that cannot be read) rather than from a copy of the snapshot, on every engine."""
    return everything or not from_snapshot or not settings.serving_path.exists()


def _export(settings: Settings, engine: Engine, run: DbtRun, everything: bool, from_snapshot: bool,
            changes: bool) -> tuple[float, list[str]]:
    """An exporting engine's build: the tables readers need, copied into the build's DuckDB file.

    As on DuckDB, the file starts from nothing when the build rebuilt everything, otherwise from
    a copy of the snapshot; the published models the build ran replace their copies in it, or,
    with ``changes`` (the engine's tables were the snapshot's when the build began), get the
    changes the engine kept. Returns the seconds it took and the tables exported by their changes.
    """
    start = time.monotonic()
    if empty := _starts_empty(settings, everything, from_snapshot):
        clear_published(settings)
    else:
        restore_published(settings)
    tables = [f"{r.schema}.{r.name}" for r in run.results
              if r.resource_type == "model" and r.published and r.status == "success"]
    by_changes = engine.export(tables, settings.published_path, changes=changes and not empty)
    return time.monotonic() - start, by_changes


def _unreadable_start(run: DbtRun, settings: Settings) -> str | None:
    """Why the copy of the snapshot a build started from could not be read, when that is what
    failed the build (a model's error names the file and says it is damaged)."""
    name = settings.published_path.name
    for r in run.results:
        if r.status == "error" and name in (r.message or "") and explain_damage(r.message):
            return f"{settings.serving_path} is damaged or cut short ({r.message.strip().splitlines()[0][:160]})"
    return None


def _report_to_slack(settings: Settings, result: BuildResult, through: int, since: int) -> None:
    """The pipeline report, when a Slack webhook is configured; a failed post never fails a build."""
    if not settings.get("slack", "webhook_url"):
        return
    from loanwatch.notify.internal import pipeline_text, post_to_slack
    from loanwatch.warehouse import connect

    try:
        con = connect(settings.warehouse_path)
        try:
            rows_in, rejected = con.execute(
                "SELECT coalesce(sum(rows_accepted), 0), coalesce(sum(rows_rejected), 0) FROM meta.batches WHERE batch_id > ? AND batch_id <= ?",
                [since, through]).fetchall()[0]
        finally:
            con.close()
        models = sum(1 for r in (result.run.results if result.run else []) if r.resource_type == "model" and r.status == "success")
        post_to_slack(settings, pipeline_text(settings, result, int(rows_in), int(rejected), models))
    except Exception as exc:  # the report is a courtesy: say so, never fail the build for it
        import sys
        print(f"warning: the pipeline report to Slack failed: {exc}", file=sys.stderr)


def _write_status(settings: Settings, build_id, ok, published, data_date, message, errors, warnings) -> None:
    """<home>/last_build.json: what the last build did, for readers that must not open the
    warehouse (the dashboard shows a failed build's reasons from here)."""
    status = {
        "build_id": build_id, "status": "success" if ok else "failed", "published": published,
        "data_date": str(data_date) if data_date else None, "message": message,
        "errors": errors[:20], "warnings": warnings[:20], "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    path = settings.home / "last_build.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, path)


def _sample_keys(con, relation: str | None, engine: Engine, limit: int = 5) -> str | None:
    """Up to five distinct keys (first column, the lowest) of the failing rows a check stored (store_failures)."""
    if not relation:
        return None
    try:
        # relation_name is dbt's own quoted identifier of the audit table, not user input
        sql = f"SELECT * FROM {relation} ORDER BY 1 LIMIT 200"  # the first keys: the same on every engine
        rows = engine.query(sql, con)
    except Exception:  # the audit table may not exist when the test errored before writing it
        return None
    keys = list(dict.fromkeys(str(r[0]) for r in rows))[:limit]
    return ", ".join(keys) or None


# dbt vars that change how a build runs, not what it writes: a new value rebuilds nothing
NOT_IN_RESULTS = {"memory_limit"}


def project_hash(settings: Settings, engine_fingerprint: str = "") -> str:
    """SHA-256 of the dbt project's files and of the settings it is run with: an upgraded project,
    a changed setting (tolerance, DPD convention, defaults; not ``NOT_IN_RESULTS``) or another
    engine or server (``Engine.fingerprint``; none for DuckDB, the home's own files) forces a full
    refresh."""
    results_vars = {name: value for name, value in dbt_vars(settings).items() if name not in NOT_IN_RESULTS}
    h = hashlib.sha256(json.dumps(results_vars, sort_keys=True).encode())
    h.update(engine_fingerprint.encode())
    for path in sorted(PROJECT_DIR.rglob("*")):
        if path.is_file() and "target" not in path.parts and "logs" not in path.parts:
            h.update(str(path.relative_to(PROJECT_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _node_reason(message: str | None, engine: Engine | None = None) -> str:
    """Why a node failed, in one line: a fault the engine knows (Engine.known_fault) or the
    machine's (memory, disk: errors.explain) said as such, with what to do; otherwise the
    engine's line that says what went wrong (errors.engine_line); "no reason given" when dbt
    gave none."""
    if not message:
        return "no reason given"
    known = engine.known_fault(message) if engine else None
    machine = explain(RuntimeError(message))
    return known or (machine[0].removeprefix("loanwatch: ") if machine else engine_line(message)) or "no reason given"


def _model_error(name: str, message: str | None, engine: Engine | None = None) -> str:
    """One line for a model that failed (_node_reason)."""
    return f"model {name} failed: {_node_reason(message, engine)}"


def _record_checks(con, build_id: int, run: DbtRun, engine: Engine) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    rows = []
    for r in run.results:
        if r.resource_type == "model" and r.status == "error":
            errors.append(_model_error(r.name, r.message, engine))
        if r.resource_type not in ("test", "unit_test"):
            continue
        severity = (r.severity or "error").lower()
        status = r.status
        sample = _sample_keys(con, r.relation, engine) if status in ("fail", "warn", "error") and r.failures else None
        rows.append([build_id, r.name, r.model, severity, status, r.failures or 0, sample, r.message[:1000]])
        on = f" on {r.model}" if r.model else ""
        if status == "error":  # the check did not run to its end: no count of failing rows
            errors.append(f"check {r.name} could not run{on}: {_node_reason(r.message, engine)}")
        elif status == "fail":
            errors.append(f"check {r.name} failed ({r.failures or 0} rows){on}")
        elif status == "warn":
            warnings.append(f"check {r.name} warns ({r.failures or 0} rows){on}")
    if rows:
        con.executemany("INSERT INTO meta.dq_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())", rows)
    if run.results:
        con.executemany("INSERT INTO meta.build_nodes VALUES (?, ?, ?, ?, ?, ?)",
                        [[build_id, r.name, r.resource_type, r.model, r.status, r.seconds] for r in run.results])
    return errors, warnings
