"""The notifier's own store, <home>/notify.duckdb: one row per message with its idempotency key
(client, rule, date), its delivery state (attempts, next attempt, last error), every delivery
attempt, and the weekly summaries sent. Separate from the warehouse so that sending never waits
for a build, and a build never waits for sending."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb

from loanwatch.config import Settings
from loanwatch.errors import Problem, is_damage
from loanwatch.output import Shown
from loanwatch.reports import Table
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
        status VARCHAR,                      -- pending | sent | failed | expired
        created_at TIMESTAMP,                -- UTC, when it entered the outbox (expire_hours counts from it)
        sent_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS attempts (
        message_id VARCHAR,
        attempted_at TIMESTAMP,
        ok BOOLEAN,
        detail VARCHAR
    )""",
    # Delivery state, added to outboxes made before it existed (ADD COLUMN fills old rows):
    # failed attempts so far, the next attempt not before (UTC), why it has not gone (yet).
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS attempts INTEGER DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMP",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS last_error VARCHAR",
    # One weekly summary per ISO week and recipient, however many runs fall on the weekly day.
    """CREATE TABLE IF NOT EXISTS summaries (
        summary_id VARCHAR PRIMARY KEY,      -- weekly:<ISO year>-W<week>:<recipient>
        week VARCHAR,
        recipient VARCHAR,
        sent_at TIMESTAMP
    )""",
]


def path(settings: Settings) -> Path:
    return settings.home / "notify.duckdb"


class OutboxDamaged(Problem):
    """The outbox file (or its write-ahead log) cannot be read; the message says which file to
    move aside, keeping the sent history where it can be kept."""


def damaged_advice(settings: Settings, detail: str) -> str:
    """What to do with a damaged outbox. A new home would lose the warehouse and the sent history
    (the idempotency keys, the caps); moving the one damaged file aside keeps everything else."""
    main = path(settings)
    wal = main.with_name(main.name + ".wal")
    head = f"the outbox is damaged or cut short ({detail.splitlines()[0][:160]}): "
    if ".wal" in detail.lower() and wal.exists():
        return head + (f"move its log aside (mv {wal} {wal}.damaged) and run again: the outbox opens as of its last "
                       "checkpoint, with its sent history; a message sent after that may go once more, with the "
                       "same Message-ID")
    return head + (f"move it aside (mv {main} {main}.damaged" + (f"; mv {wal} {wal}.damaged" if wal.exists() else "")
                   + ") and run again, or put back a copy of it: the next send starts a new, empty outbox, and the "
                   "moved file keeps the sent history for the record (today's messages may go again, with the same "
                   "Message-ID)")


def _is_outbox_damage(settings: Settings, exc: BaseException, opening: bool) -> bool:
    text = str(exc)
    if not isinstance(exc, duckdb.Error) or not is_damage(text):
        return False
    # while opening, any damage is the outbox's; later, only an error that names its file
    return opening or path(settings).name in text


@contextlib.contextmanager
def opened(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The outbox, under its lock: a second `notify send`, or a `notify plan` while a send runs,
    waits for it like a second writer of the warehouse does ([warehouse] lock_timeout), then
    fails with a clear message. Read-only, a missing outbox gives None. A damaged outbox is one
    line saying which file to move aside (never "start a new home")."""
    wait = lock_wait(settings)
    busy = (f"{path(settings)}: the outbox is in use by {{holder}} (a `notify send`); waited {wait:g} s. "
            "Try again when it has finished (or raise [warehouse] lock_timeout).")
    with file_lock(settings.home / ".notify.lock", wait, busy):
        if read_only and not path(settings).exists():
            yield None
            return
        try:
            con = duckdb.connect(str(path(settings)), read_only=True) if read_only else connect(settings)
        except duckdb.Error as exc:
            if _is_outbox_damage(settings, exc, opening=True):
                raise OutboxDamaged(damaged_advice(settings, str(exc))) from None
            raise
        try:
            yield con
        except duckdb.Error as exc:
            if _is_outbox_damage(settings, exc, opening=False):
                raise OutboxDamaged(damaged_advice(settings, str(exc))) from None
            raise
        finally:
            con.close()


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The outbox for writing, created (or brought up to date) if needed; without the lock:
    `opened` takes it."""
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path(settings)))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for statement in DDL:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """A moment as the outbox stores it: UTC, without a zone (its TIMESTAMP columns)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def pending_due(settings: Settings, now: dt.datetime | None = None) -> int:
    """Messages a send would act on now: pending, and either due (no next attempt, or its time has
    come) or old enough to expire. 0 when there is no outbox. `loanwatch run` sends when this is
    not 0, even with nothing new to build."""
    if not path(settings).exists():
        return 0
    moment = utc_naive(now or dt.datetime.now(dt.UTC))
    hours = float(settings.get("notify", "expire_hours") or 0)
    # with expire_hours 0 nothing expires: a cutoff before any message
    cutoff = moment - dt.timedelta(hours=hours) if hours > 0 else dt.datetime(1, 1, 1)
    with opened(settings) as con:
        return con.execute(
            """SELECT count(*) FROM messages
               WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ? OR created_at < ?)""",
            [moment, cutoff]).fetchall()[0][0]


STATUSES = ("pending", "failed", "sent", "expired")
COLUMNS = ["message_id", "client_id", "channel", "rule", "plan_date", "status", "attempts", "next_attempt_at",
           "last_error", "created_at", "sent_at", "recipient"]
# `loanwatch outbox` for a person: what is stuck and why first; csv and json keep every column.
SHOWN = (
    Shown("message_id", "text", "Message"), Shown("channel", "text", "Channel"), Shown("status", "text", "Status"),
    Shown("attempts", "count", "Attempts"), Shown("next_attempt_at", "text", "Next attempt (UTC)"),
    Shown("last_error", "text", "Last error"), Shown("created_at", "text", "In the outbox since (UTC)"),
    Shown("sent_at", "text", "Sent (UTC)"),
)


def listing(settings: Settings, status: str = "all") -> Table:
    """The outbox's messages with their delivery state, the unsent first (pending, then failed,
    then expired), newest plan first. `status` is one of STATUSES or 'all'."""
    if status != "all" and status not in STATUSES:
        from loanwatch.errors import UsageProblem

        raise UsageProblem(f"--status {status!r}: use one of {', '.join(STATUSES)} or all")
    if not path(settings).exists():  # nothing sent yet: make nothing (not even the lock file)
        return Table(COLUMNS, [])
    with opened(settings, read_only=True) as con:
        if con is None:
            return Table(COLUMNS, [])
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'messages'").fetchall()}
        # an outbox written before delivery state was kept has no such columns: they are empty
        picked = ", ".join(c if c in have else f"NULL AS {c}" for c in COLUMNS)
        rows = con.execute(
            f"""SELECT {picked} FROM messages
                WHERE $status = 'all' OR status = $status
                ORDER BY CASE status WHEN 'pending' THEN 0 WHEN 'failed' THEN 1 WHEN 'expired' THEN 2 ELSE 3 END,
                         plan_date DESC, message_id""", {"status": status}).fetchall()
    return Table(COLUMNS, [tuple(_stamp(v) for v in r) for r in rows])


def _stamp(value):
    """Timestamps to the second for people and programs alike (the outbox keeps microseconds)."""
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat(sep=" ")
    return value
