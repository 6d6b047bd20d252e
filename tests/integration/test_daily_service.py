"""Ten days of `loanwatch run`, as a scheduler would start it, with what a year of cron meets:
files arriving late, half-written, twice under other names, broken; a SIGKILL in each step once
(ingest, build, notify); the SMTP server down for a day. At the end the warehouse equals a clean
load of the good files, and every message due was delivered exactly once."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from loanwatch.generate.portfolio import generate
from loanwatch.generate.write import write_portfolio
from tests.conftest import assert_no_traceback, build_home, cli
from tests.engine_checks import published_rows
from tests.integration.conftest import Inbox, _port

pytestmark = pytest.mark.integration

LOANWATCH = [sys.executable, "-c", "from loanwatch.cli import run; run()"]
TABLES = {
    "marts.fct_loan_states": "loan_id, valid_from",
    "marts.fct_loan_snapshots": "snapshot_date, loan_id",
    "marts.fct_payment_allocations": "payment_id",
    "marts.fct_calls": "call_id",
    "core.loan_versions": "loan_id, valid_from",
    "core.client_versions": "client_id, valid_from",
}


class Smtp:
    """A local SMTP server on a fixed port that can be taken down for a day and brought back."""

    def __init__(self):
        self.inbox, self.port, self.controller = Inbox(), _port(), None

    def up(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self):
        self.controller.stop()
        self.controller = None


def _run(home: Path, inbox: Path, env: dict, kill_after: str | None = None) -> subprocess.CompletedProcess | None:
    """One `loanwatch run`; with kill_after, SIGKILL it once it has done that much: "start" (its
    ingest is writing: the warehouse's WAL exists), or a step's line ("ingest", "build")."""
    cmd = [*LOANWATCH, "--home", str(home), "run", "--inbox", str(inbox)]
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    if kill_after is None:
        done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=600)
        assert_no_traceback(done.stdout, done.stderr)
        assert done.returncode in (0, 3), done.stdout + done.stderr
        return done
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wal = home / "warehouse.duckdb.wal"
    if kill_after == "start":
        while proc.poll() is None and not wal.exists():
            time.sleep(0.005)
    else:
        for line in proc.stdout:  # the run prints each step's line when the step ends
            if line.startswith(f"{kill_after}:"):
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended ({proc.returncode}) before the kill landed"
    return None


def _outbox(home: Path) -> list[tuple]:
    con = duckdb.connect(str(home / "notify.duckdb"), read_only=True)
    try:
        return con.execute("SELECT message_id, channel, status FROM messages ORDER BY message_id").fetchall()
    finally:
        con.close()


def test_ten_days_equal_a_clean_load_and_every_message_goes_once(tmp_path, gateway):
    raw, parts = tmp_path / "raw", tmp_path / "parts"
    write_portfolio(generate(250, seed=31, start=dt.date(2024, 1, 1), end=dt.date(2024, 5, 31)), raw)
    assert cli("split", raw, "--parts", "10", "--out", parts).exit_code == 0
    part = [parts / f"part_{k:02d}" for k in range(1, 11)]
    good = tmp_path / "good"  # every good file, as a clean load takes them
    for p in part:
        shutil.copytree(p, good / p.name)

    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    smtp = Smtp()
    smtp.up()
    env = {"LOANWATCH_RUN__NOTIFY": "true", "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port),
           "LOANWATCH_SMS__URL": gateway.url, "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0",
           # every hour of the day is a contact hour, and the daily cap is off: the ten "days" run
           # within minutes of each other here (both rules have tests of their own)
           "LOANWATCH_NOTIFY__QUIET_START": "00:00", "LOANWATCH_NOTIFY__QUIET_END": "23:59:59.999999",
           "LOANWATCH_NOTIFY__MAX_MESSAGES_PER_DAY": "0"}

    def arrive(k: int):
        """Part k's files, under names of their own (a writer's names are unique: each part has a
        payments.jsonl)."""
        for f in sorted(part[k].iterdir()):
            shutil.copy(f, inbox / f.name.replace(".jsonl", f"_p{k + 1:02d}.jsonl"))

    try:
        arrive(0)
        _run(home, inbox, env)                                # day 1
        arrive(1)
        _run(home, inbox, env, kill_after="start")            # day 2: killed while it ingests
        _run(home, inbox, env)                                # ... and run again
        _run(home, inbox, env)                                # day 3: part 3 is late, nothing new
        arrive(2)
        arrive(3)
        _run(home, inbox, env, kill_after="ingest")           # day 4: killed while it builds
        _run(home, inbox, env)
        arrive(4)
        payments = inbox / "payments_p05.jsonl"
        text = payments.read_text()
        payments.write_text(text[: len(text) // 2 + 7])       # day 5: the payments file half-written
        _run(home, inbox, env)
        payments.write_text(text)                             # day 6: finished, and part 6
        arrive(5)
        smtp.inbox.delay = 0.5                                # a slow mail server: the kill lands mid-send
        _run(home, inbox, env, kill_after="build")            # killed while it sends
        smtp.inbox.delay = 0.0
        _run(home, inbox, env)
        arrive(6)                                       # day 7: part 7, part 2 again, a broken file
        (inbox / "resent").mkdir()
        for f in part[1].iterdir():
            shutil.copy(f, inbox / "resent" / f"again_{f.name}")
        (inbox / "payments_broken.jsonl").write_text("this is not json\n{\"payment_id\": \n")
        _run(home, inbox, env)
        arrive(7)
        smtp.down()                                           # day 8: the mail server is down
        _run(home, inbox, env)
        down_day = [m for m in _outbox(home) if m[1] == "email" and m[2] == "pending"]
        smtp.up()                                             # day 9: back; a day has passed
        con = duckdb.connect(str(home / "notify.duckdb"))
        con.execute("UPDATE messages SET next_attempt_at = now() - INTERVAL 1 MINUTE WHERE status = 'pending'")
        con.close()
        arrive(8)
        _run(home, inbox, env)
        arrive(9)
        _run(home, inbox, env)                                # day 10
    finally:
        if smtp.controller:
            smtp.down()

    clean = tmp_path / "clean"
    build_home(clean, *sorted(good.iterdir()))
    assert published_rows(home, TABLES) == published_rows(clean, TABLES)

    # every message went once: no key twice at the mail server or the SMS gateway, none left
    # pending or failed, and the ones the server was down for went the next day
    emailed = [m["X-Loanwatch-Message"] for m in smtp.inbox.messages]
    texted = [r["key"] for r in gateway.received]
    assert len(emailed) == len(set(emailed)) and len(texted) == len(set(texted))
    outbox = _outbox(home)
    assert {status for _, _, status in outbox} <= {"sent", "expired"}, [m for m in outbox if m[2] not in ("sent", "expired")]
    sent_emails = {key for key, channel, status in outbox if channel == "email" and status == "sent"}
    assert sent_emails == set(emailed) and len(emailed) > 10
    assert down_day and {key for key, *_ in down_day} <= set(emailed)
