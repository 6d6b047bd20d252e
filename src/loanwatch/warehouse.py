"""The warehouse file: connections, the schemas and tables loanwatch owns, and the writer lock.

DuckDB allows one writing process or many reading processes, never both. Every command that
writes takes ``writer_lock`` first, so a second writer waits a bounded time and then fails with
a clear message instead of a DuckDB lock error; readers use the serving snapshot (``serve``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from loanwatch.config import Settings
from loanwatch.errors import Problem
from loanwatch.ingest.contract import ENTITIES, staging_ddl

SCHEMA_VERSION = 2  # 2: staging rows no longer carry record_hash (content is compared where keys meet)


class NoWarehouse(Problem, LookupError):
    """Nothing ingested into this home yet."""


class WarehouseBusy(Problem, RuntimeError):
    """Another loanwatch process holds the writer lock."""


def connect(path: Path, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    # Contract: timestamps without an offset are UTC, and a payment's day is its UTC date.
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
    return con


def _size(text: str) -> str:
    """A memory size such as 3GB or 512MB (checked: it is written into a SET statement)."""
    import re

    value = str(text).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise ValueError(f"[warehouse] memory_limit {value!r}: use a size such as 3GB or 512MB")
    return value


@contextlib.contextmanager
def file_lock(path: Path, wait: float, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, waiting at most ``wait`` seconds for it.

    ``busy`` is the message when the wait runs out; ``{holder}`` in it names the holding process.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    deadline = time.monotonic() + wait
    held = False
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    raise WarehouseBusy(busy.format(holder=fh.read().strip() or "another process")) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        if held:  # a waiter that gave up leaves the holder's name in place
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def lock_wait(settings: Settings, timeout: float | None = None) -> float:
    return float(settings.get("warehouse", "lock_timeout") if timeout is None else timeout)


_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def writer_lock(settings: Settings, timeout: float | None = None) -> Iterator[None]:
    """Hold the single-writer lock of this warehouse folder for the duration of the block.

    Re-entrant within a process: `loanwatch run` holds it for the whole day's cycle while its
    steps (ingest, build) take it again."""
    path = (settings.home / ".writer.lock").resolve()
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    wait = lock_wait(settings, timeout)
    busy = (f"{settings.home}: the warehouse is being written by {{holder}}; waited {wait:g} s. "
            "Try again when it has finished (or raise [warehouse] lock_timeout).")
    with file_lock(path, wait, busy):
        _HELD[path] = 1
        try:
            yield
        finally:
            _HELD.pop(path, None)


DDL = [
    "CREATE SCHEMA IF NOT EXISTS staging",
    "CREATE SCHEMA IF NOT EXISTS core",
    "CREATE SCHEMA IF NOT EXISTS marts",
    "CREATE SCHEMA IF NOT EXISTS meta",
    "CREATE TABLE IF NOT EXISTS meta.schema_version (version INTEGER, applied_at TIMESTAMP)",
    "CREATE SEQUENCE IF NOT EXISTS meta.batch_ids START 1",
    # This ledger's identity: another engine's server records which ledger its batches came from.
    "CREATE TABLE IF NOT EXISTS meta.ledger (ledger_id VARCHAR, created_at TIMESTAMP)",
    # One row per file load attempt that changed the warehouse: its counts and its fate.
    """CREATE TABLE IF NOT EXISTS meta.batches (
        batch_id BIGINT PRIMARY KEY,
        entity VARCHAR,
        file_path VARCHAR,
        file_name VARCHAR,
        content_hash VARCHAR,
        size_bytes BIGINT,
        rows_read BIGINT,
        rows_accepted BIGINT,
        rows_duplicate BIGINT,
        rows_rejected BIGINT,
        status VARCHAR,          -- loaded | partial | rejected
        message VARCHAR,
        ingested_at TIMESTAMP
    )""",
    # Quarantine: every row (or whole file) that was not loaded, with the reason.
    """CREATE TABLE IF NOT EXISTS meta.rejects (
        batch_id BIGINT,
        entity VARCHAR,
        file_name VARCHAR,
        line_no BIGINT,
        field VARCHAR,
        reason VARCHAR,
        raw VARCHAR
    )""",
    # History of builds and of every data-quality check of every build.
    """CREATE TABLE IF NOT EXISTS meta.builds (
        build_id BIGINT PRIMARY KEY,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        status VARCHAR,
        full_refresh BOOLEAN,
        through_batch_id BIGINT,
        data_date DATE,
        published BOOLEAN,
        message VARCHAR
    )""",
    # The dbt project the build ran: a changed project means a full refresh (schemas may differ).
    # the source mapping a file was loaded through (the same content through another mapping loads again)
    "ALTER TABLE meta.batches ADD COLUMN IF NOT EXISTS mapping_hash VARCHAR",
    "ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS project_hash VARCHAR",
    "ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS since_batch_id BIGINT",
    # The serving snapshot a build published, as the file system saw it then ("size mtime_ns"):
    # a build with nothing new does nothing only while that file is still the same.
    "ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS snapshot_stat VARCHAR",
    # ... and the code that built it (loanwatch, dbt, the engine's library): an upgrade builds again
    "ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS code_version VARCHAR",
    """CREATE TABLE IF NOT EXISTS meta.dq_results (
        build_id BIGINT,
        check_name VARCHAR,
        model VARCHAR,
        severity VARCHAR,
        status VARCHAR,
        failing_rows BIGINT,
        sample_keys VARCHAR,
        message VARCHAR,
        checked_at TIMESTAMP
    )""",
    # Every dbt node a build ran (models, checks, unit tests) and how long it took: where a
    # build's time goes (`make bench` reads it). Beside them, resource_type 'phase': the build's
    # phases; 'export': another engine's export (node 'export', its seconds) and each table it
    # exported by its changes (node 'export changes', the table in `model`, no seconds).
    """CREATE TABLE IF NOT EXISTS meta.build_nodes (
        build_id BIGINT,
        node VARCHAR,
        resource_type VARCHAR,
        model VARCHAR,
        status VARCHAR,
        seconds DOUBLE
    )""",
    # `loanwatch run`: every day's cycle and each of its steps (ingest, build, notify, weekly).
    """CREATE TABLE IF NOT EXISTS meta.runs (
        run_id BIGINT PRIMARY KEY,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        status VARCHAR,          -- running | success | nothing_new | quarantined | failed | interrupted
        exit_code INTEGER,
        run_date DATE,
        trigger VARCHAR,         -- cli | schedule | dagster
        message VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS meta.run_steps (
        run_id BIGINT,
        step VARCHAR,            -- ingest | build | notify | weekly
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        status VARCHAR,          -- ok | quarantined | skipped | failed
        counts VARCHAR,          -- JSON: files, rows, build_id, sent, ...
        message VARCHAR
    )""",
]


def init_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create or upgrade every table loanwatch owns. Idempotent."""
    for statement in DDL:
        con.execute(statement)
    for entity in ENTITIES.values():
        for statement in staging_ddl(entity):
            con.execute(statement)
    con.execute("INSERT INTO meta.ledger SELECT uuid()::VARCHAR, now() WHERE NOT EXISTS (SELECT 1 FROM meta.ledger)")
    current = con.execute("SELECT max(version) FROM meta.schema_version").fetchone()[0]
    if current is not None and current < 2:
        for entity in ENTITIES.values():
            con.execute(f"ALTER TABLE {entity.table} DROP COLUMN IF EXISTS record_hash")
    if current is None or current < SCHEMA_VERSION:
        con.execute("INSERT INTO meta.schema_version VALUES (?, now())", [SCHEMA_VERSION])


@contextlib.contextmanager
def open_writer(settings: Settings, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Lock, open the warehouse for writing and make sure its tables exist."""
    with writer_lock(settings, timeout):
        con = connect(settings.warehouse_path, memory_limit=settings.get("warehouse", "memory_limit"))
        try:
            init_warehouse(con)
            yield con
        finally:
            con.close()


@contextlib.contextmanager
def read_warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, read-only, for the commands that read its manifest and history (batches,
    rejects, check, runs): they wait for a writer (ingest, build, run) as a second writer does,
    up to [warehouse] lock_timeout, then say the warehouse is busy (one line, exit 1).

    While it reads (milliseconds) it holds the writer lock, so a writer never meets this reader's
    open file when it opens the warehouse again. A home whose lock file cannot be written (a
    read-only copy, a full disk) is read without it; a process outside loanwatch's lock (a duckdb
    shell) holding the file is waited for in the same way.
    """
    import errno
    import time

    if not settings.warehouse_path.exists():
        raise NoWarehouse(f"{settings.home}: no warehouse yet; run `loanwatch ingest` and `loanwatch build`")
    wait = lock_wait(settings)
    deadline = time.monotonic() + wait
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(writer_lock(settings))
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT):
                raise
        while True:
            try:
                con = connect(settings.warehouse_path, read_only=True)
                break
            except duckdb.ConnectionException:
                con = connect(settings.warehouse_path)  # this process has it open already (a library caller)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise  # a damaged file or a full disk: the CLI's guard names it
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(f"{settings.home}: the warehouse is busy (another process has "
                                        f"{settings.warehouse_path.name} open); waited {wait:g} s. "
                                        "Try again when it has finished (or raise [warehouse] lock_timeout).") from None
                time.sleep(0.2)
        try:
            yield con
        finally:
            con.close()
