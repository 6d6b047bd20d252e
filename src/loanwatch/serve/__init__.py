"""The read-only serving snapshot that reports and the dashboard read.

DuckDB allows one writer process or many readers, never both. A build writes what readers need
(schemas core and marts) to its own file, ``published.duckdb``: an incremental build starts from a
copy of the snapshot (``restore_published``, made while dbt starts), a full one from nothing.
After a successful build the meta tables are copied into that file, and the file is renamed over
``serving.duckdb`` in one atomic step (``publish``). A reader that has the old file open keeps
reading it; the next open sees the new one. A build that fails its checks never publishes, and
the next build starts again from the snapshot.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb

from loanwatch.config import Settings
from loanwatch.errors import EXIT_NO_DATA, Problem, damaged, environmental


class NoSnapshot(Problem, RuntimeError):
    """The serving snapshot cannot be read (damaged, cut short)."""


class NotPublished(NoSnapshot):
    """Nothing has been published yet: nothing to report (exit 6)."""

    code = EXIT_NO_DATA


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, build_id: int) -> Path:
    """Put the meta tables into the published database, then rename it over the snapshot.

    The snapshot's copy of the build's row (``build_id``, still 'running' in the warehouse until
    this returns) says 'success', published. Nothing else may have the published file open
    (dbt's DuckDB instance is closed first: ``transform.release_dbt``): after the rename it is
    the snapshot, which nothing writes.
    """
    source = settings.published_path
    target = settings.serving_path
    with _published(con, source):
        con.execute("CREATE SCHEMA IF NOT EXISTS published.meta")
        meta = con.execute(
            """SELECT table_name FROM duckdb_tables()
               WHERE database_name = current_database() AND schema_name = 'meta' ORDER BY 1"""
        ).fetchall()
        for (table,) in meta:
            # Names come from the engine's own catalog of our schema; quoted all the same.
            con.execute(f'CREATE OR REPLACE TABLE published.meta."{table}" AS SELECT * FROM meta."{table}"')
        con.execute("UPDATE published.meta.builds SET status = 'success', published = true WHERE build_id = ?",
                    [build_id])
        # Everything is in the file itself, with no pending WAL.
        con.execute("CHECKPOINT published")
    if _wal(source).exists():
        raise RuntimeError(f"{source} still has a write-ahead log after its checkpoint: not published")
    with open(source, "rb") as fh:  # durable before it becomes the snapshot
        os.fsync(fh.fileno())
    os.replace(source, target)
    _fsync_dir(target.parent)
    return target


def restore_published(settings: Settings) -> None:
    """Make ``published.duckdb`` a copy of the snapshot: where an incremental build starts.

    A failed or interrupted build leaves its own published file (and maybe a write-ahead log)
    behind; the copy replaces both, so every build starts from the last good one. The copy
    takes as long as the snapshot is large (about 1.6-2 s for 1.4 GB at L): ``loanwatch build``
    makes it in a thread while dbt loads and parses, and dbt opens the file only after it.
    """
    target = settings.published_path
    for leftover in (target, _wal(target)):
        leftover.unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    copy_durably(settings.serving_path, tmp)
    os.replace(tmp, target)


def clear_published(settings: Settings) -> None:
    """Remove the published database before a full refresh: it starts from nothing."""
    target = settings.published_path
    for leftover in (target, _wal(target), target.with_name(target.name + ".tmp")):
        leftover.unlink(missing_ok=True)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _fsync_dir(path: Path) -> None:
    """Make a rename in this folder durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def copy_durably(source: Path, target: Path, chunk: int = 32 << 20) -> None:
    """Copy a file and make the copy durable (on disk) before returning.

    The copy bypasses the page cache (``O_DIRECT``) where the file system allows it: right after
    a build, a cached copy of a large file has to find that much free cache and then flush it,
    and took 3-5 s at L for a 1.5 GB file; written directly from one reused buffer it takes
    about 1.2-1.5 s. Where ``O_DIRECT`` is missing or refused (tmpfs, a device with larger
    alignment), a plain copy and fsync. ``chunk`` is a multiple of 4 KiB.
    """
    try:
        _copy_direct(source, target, chunk)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        _copy_cached(source, target)


def _copy_direct(source: Path, target: Path, chunk: int) -> None:
    if not hasattr(os, "O_DIRECT"):
        raise OSError(errno.EINVAL, "no O_DIRECT on this platform")
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    buffer = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT requires
    view = memoryview(buffer)
    try:
        with open(source, "rb", buffering=0) as src:
            size = os.fstat(src.fileno()).st_size
            offset = 0
            while offset < size:
                n = _fill(src, view)
                if not n:
                    break
                # O_DIRECT writes whole 4 KiB pages; a short last chunk is padded, then cut back
                padded = -(-n // 4096) * 4096
                if padded != n:
                    view[n:padded] = bytes(padded - n)
                with view[:padded] as part:
                    written = os.pwrite(out, part, offset)
                if written != padded:
                    raise OSError(errno.EIO, f"{target}: short write at byte {offset}")
                offset += n
            os.ftruncate(out, size)
        os.fsync(out)
    finally:
        os.close(out)
        view.release()
        buffer.close()


def _fill(src, view: memoryview) -> int:
    """Read until the buffer is full or the file ends (so every write but the last is whole)."""
    n = 0
    while n < len(view):
        with view[n:] as rest:
            got = src.readinto(rest)
        if not got:
            break
        n += got
    return n


def _copy_cached(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    with open(target, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def _published(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[None]:
    """The published database attached as `published`, and detached afterwards (it is about to
    be renamed: no connection of this process may keep it). Attaching fails if this instance has
    it attached already, as dbt's would if it were still open."""
    con.execute("ATTACH ? AS published", [str(path)])
    try:
        yield
    finally:
        con.execute("DETACH published")


def open_snapshot(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the snapshot published now.

    DuckDB caches database instances by path within a process: connecting to serving.duckdb
    again while an older connection lives would return the old, renamed-over file. A fresh
    in-memory instance that attaches the file always opens the current one.
    """
    path = settings.serving_path
    if not path.exists():
        raise NotPublished(
            f"{settings.home}: no published data yet. Run `loanwatch ingest FILES` and then `loanwatch build`."
        )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute("ATTACH ? AS snapshot (READ_ONLY)", [str(path)])
        con.execute("USE snapshot")
        con.execute("SELECT count(*) FROM marts.snapshot_dates").fetchall()
    except duckdb.Error as exc:
        con.close()
        if environmental(exc):
            raise
        raise NoSnapshot(damaged(path, str(exc))) from None
    return con


def unreadable_snapshot(settings: Settings) -> str | None:
    """Why the serving snapshot cannot be read (damaged, cut short), or None when it can be or
    there is none: a build then starts from the warehouse instead of from it."""
    if not settings.serving_path.exists():
        return None
    try:
        open_snapshot(settings).close()
    except NoSnapshot as exc:
        return str(exc).split(": run `loanwatch build`")[0]
    return None
