"""The notifier's own store, <home>/notify.duckdb: one row per message with its idempotency key
(client, rule, date), and every delivery attempt. Separate from the warehouse so that sending
never waits for a build, and a build never waits for sending."""

from __future__ import annotations

from pathlib import Path

import duckdb

from loanwatch.config import Settings

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


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path(settings)))
    con.execute("SET TimeZone = 'UTC'")
    for statement in DDL:
        con.execute(statement)
    return con
