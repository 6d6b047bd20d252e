"""The notifier's own store, <home>/notify.duckdb: one row per message with its idempotency key
(client, rule, date), and every delivery attempt. Separate from the warehouse so that sending
never waits for a build, and a build never waits for sending."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from loanwatch.config import Settings
from loanwatch.warehouse import file_lock, lock_wait

DDL = [
    """CREATE TABLE IF NOT EXISTS messages (
        message_id VARCHAR PRIMARY KEY,      -- client_id:rule:plan_date, the idempotency key
        client_id VARCHAR,
        channel VARCHAR,                     -- email | sms | call
        rule VARCHAR,
        plan_date DATE,
        recipient VARCHAR,
        client_name VARCHAR,
        language VARCHAR,
        timezone VARCHAR,
        loans VARCHAR,                       -- loan ids, space-separated
        open_amount DECIMAL(18,2),
        due_date DATE,
        expected_recovery DECIMAL(18,2),
        reason VARCHAR,
        status VARCHAR,                      -- pending | sent | failed
        created_at TIMESTAMP,
        sent_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS attempts (
        message_id VARCHAR,
        attempted_at TIMESTAMP,
        ok BOOLEAN,
        detail VARCHAR
    )""",
]


def path(settings: Settings) -> Path:
    return settings.home / "notify.duckdb"


@contextlib.contextmanager
def opened(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The outbox, under its lock: a second `notify send`, or a `notify plan` while a send runs,
    waits for it like a second writer of the warehouse does ([warehouse] lock_timeout), then
    fails with a clear message. Read-only, a missing outbox gives None."""
    wait = lock_wait(settings)
    busy = (f"{path(settings)}: the outbox is in use by {{holder}} (a `notify send`); waited {wait:g} s. "
            "Try again when it has finished (or raise [warehouse] lock_timeout).")
    with file_lock(settings.home / ".notify.lock", wait, busy):
        if read_only and not path(settings).exists():
            yield None
            return
        con = duckdb.connect(str(path(settings)), read_only=True) if read_only else connect(settings)
        try:
            yield con
        finally:
            con.close()


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The outbox for writing, created if missing (without the lock: `opened` takes it)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path(settings)))
    con.execute("SET TimeZone = 'UTC'")
    for statement in DDL:
        con.execute(statement)
    return con
