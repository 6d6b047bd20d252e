"""The outbox as an unattended daily service: nothing pending is left behind, nothing goes twice.

A real SMTP server (aiosmtpd) and a local SMS gateway receive what is sent. Time moves by the
`now` a test gives `send` (the outbox records every time by the send's clock), never by waiting;
where a process must be stopped mid-send, the server tells the test when it holds the message.

- Retries: a 4xx or a dropped connection stays pending and a later send delivers it (backoff,
  up to max_attempts); a 5xx fails at once and is not retried.
- Contact hours: a held message goes in the client's next window, whatever its plan date; a
  newer message to the client supersedes it.
- Expiry: expire_hours after it entered the outbox, a pending message expires unsent.
- Kills: after a SIGKILL mid-send, the next `run` (nothing new) sends what was pending.
- Caps: one message per client per day whatever the number of runs or late files; one weekly
  summary per ISO week.
- Deadline: a silent server holds the outbox for at most send_deadline_seconds.
- Slack: a 429 is retried once after its Retry-After, then warned about.
- A damaged outbox names the file to move aside, and moving it keeps the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from loanwatch.config import load_settings
from loanwatch.notify import outbox
from loanwatch.notify.send import enqueue, send
from tests.conftest import GOLDEN, cli, run_cli
from tests.integration.conftest import Inbox, _port

pytestmark = pytest.mark.integration
D = dt.date(2024, 5, 31)  # C3 (UTC, email) is 30 days late: overdue_30; C4 goes to the call queue
NOON = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)
HOUR, MINUTE = dt.timedelta(hours=1), dt.timedelta(minutes=1)
C3 = "C3:overdue_30:2024-05-31"
ALL_DAY = {"LOANWATCH_NOTIFY__QUIET_START": "00:00", "LOANWATCH_NOTIFY__QUIET_END": "23:59:59"}


@pytest.fixture()
def home(notify_home, tmp_path):
    """A private copy of the golden fixture plus notify_extra, so outboxes of tests do not meet."""
    copy = tmp_path / "home"
    shutil.copytree(notify_home, copy, ignore=shutil.ignore_patterns("*.lock", "notify.duckdb*", "call_queue"))
    return copy


def settings_for(home, smtp_port=None, gateway=None, **env):
    base = {"LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0", "LOANWATCH_NOTIFY__BACKOFF_SECONDS": "3600", "LOANWATCH_NOTIFY__MAX_ATTEMPTS": "3",
            "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp_port or _port()),
            "LOANWATCH_SMS__URL": gateway.url if gateway else ""}
    return load_settings(home, environ={**base, **env})


class Refusing(Inbox):
    """An SMTP server that answers RCPT with `code` the first `times` times, then accepts."""

    def __init__(self, code: str, times: int = 1):
        super().__init__()
        self.code, self.times, self.rcpts = code, times, 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts += 1
        if self.times > 0:
            self.times -= 1
            return self.code
        envelope.rcpt_tos.append(address)
        return "250 OK"


class Holding(Inbox):
    """An SMTP server that holds the first RCPT until the test releases it, and says when it holds
    one (`holding`): the test kills the sender then, with the message not yet accepted."""

    def __init__(self):
        super().__init__()
        self.holding, self.release = threading.Event(), threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.release.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "421 4.3.0 the client went away"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@contextlib.contextmanager
def serving(handler, port=None, **options):
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=port or _port(), **options)
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()


def state(settings, message_id) -> dict:
    con = outbox.connect(settings)
    try:
        cur = con.execute("SELECT * FROM messages WHERE message_id = ?", [message_id])
        return dict(zip([c[0] for c in cur.description], cur.fetchone()))
    finally:
        con.close()


def attempts_of(settings, message_id) -> list[bool]:
    con = outbox.connect(settings)
    try:
        return [r[0] for r in con.execute(
            "SELECT ok FROM attempts WHERE message_id = ? ORDER BY attempted_at", [message_id]).fetchall()]
    finally:
        con.close()


def around(moment: dt.datetime, expected: dt.datetime) -> bool:
    """A time the send's clock recorded: the given `now` moved on by the seconds the send took."""
    return expected <= moment < expected + dt.timedelta(minutes=1)


def keys(inbox) -> list[str]:
    return [m["X-Loanwatch-Message"] for m in inbox.messages]


# ---------------------------------------------------------------- 3. messages that are never sent


@pytest.mark.parametrize("code", ["421 4.7.0 Try again later, closing connection", "450 4.2.1 Mailbox busy",
                                  "451 4.7.1 Greylisted, come back in an hour"])
def test_a_4xx_refusal_stays_pending_and_a_later_send_delivers_it(home, code):
    with serving(Refusing(code)) as server:
        settings = settings_for(home, server.port)
        first = send(settings, D, now=NOON)
        assert (first.sent, first.failed, first.retrying) == (1, 0, 1)  # the call is queued; the email waits
        assert server.messages == []
        row = state(settings, C3)
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert around(row["next_attempt_at"], dt.datetime(2024, 5, 31, 13, 0))  # backoff_seconds 3600 after it
        assert code.split()[0] in row["last_error"]
        # before the back-off is over, a send leaves it alone (another plan date changes nothing)
        early = send(settings, dt.date(2024, 5, 30), now=NOON + HOUR / 2)
        assert (early.failed, early.retrying, server.rcpts, server.messages) == (0, 0, 1, [])
        later = send(settings, D, now=NOON + HOUR + MINUTE)
        assert (later.sent, later.failed) == (1, 0)
    assert keys(server) == [C3]
    assert attempts_of(settings, C3) == [False, True]
    assert state(settings, C3)["status"] == "sent"


def test_a_5xx_refusal_fails_at_once_and_is_never_retried(home):
    with serving(Refusing("550 5.1.1 No such user", times=99)) as server:
        settings = settings_for(home, server.port)
        first = send(settings, D, now=NOON)
        assert (first.failed, first.retrying) == (1, 0)
        assert first.failures == [(C3, "mail server refused the recipient: 550 5.1.1 No such user")]
        again = send(settings, D, now=NOON + 5 * HOUR)
        assert (again.sent, again.failed, server.rcpts) == (0, 0, 1)
    assert attempts_of(settings, C3) == [False]
    listed = cli("outbox", "--status", "failed", "--format", "json", home=home)
    assert listed.exit_code == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["message_id"], row["status"], row["attempts"]) == (C3, "failed", 1)
    assert "550" in row["last_error"]


def test_passing_failures_end_after_max_attempts_across_sends(home):
    """Back-off doubles from backoff_seconds (1 h, then 2 h); the third attempt is the last."""
    with serving(Refusing("451 4.3.0 Local problem", times=99)) as server:
        settings = settings_for(home, server.port, LOANWATCH_NOTIFY__MAX_ATTEMPTS="3")
        assert send(settings, D, now=NOON).retrying == 1
        assert send(settings, D, now=NOON + HOUR + MINUTE).retrying == 1
        assert around(state(settings, C3)["next_attempt_at"], dt.datetime(2024, 5, 31, 15, 1))
        assert send(settings, D, now=NOON + 2 * HOUR).retrying == 0 and server.rcpts == 2  # not due yet
        last = send(settings, D, now=NOON + 3 * HOUR + 2 * MINUTE)
        assert last.failed == 1 and "attempt 3 of 3" in last.failures[0][1]
        assert send(settings, D, now=NOON + 6 * HOUR).failed == 0
        assert server.rcpts == 3
    row = state(settings, C3)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 3, None)


def test_a_dead_server_is_tried_again_by_the_next_send(home):
    port = _port()  # nothing listens there yet
    settings = settings_for(home, port)
    first = send(settings, D, now=NOON)
    assert (first.failed, first.retrying) == (0, 1)
    assert "connection refused" in state(settings, C3)["last_error"]
    with serving(Inbox(), port=port) as server:
        later = send(settings, D, now=NOON + HOUR + MINUTE)
    assert (later.sent, later.failed) == (1, 0) and keys(server) == [C3]


def test_a_held_message_goes_in_the_next_window_whatever_its_plan_date(home, gateway):
    settings = settings_for(home, gateway=gateway)
    # 04-08: C4 (Moscow, SMS) is reminded of L11; at 22:00 in Moscow the window is closed
    held = send(settings, dt.date(2024, 4, 8), now=dt.datetime(2024, 4, 8, 19, 0, tzinfo=dt.UTC))
    assert held.deferred == 1 and gateway.received == []
    row = state(settings, "C4:pre_due:2024-04-08")
    assert row["next_attempt_at"] == dt.datetime(2024, 4, 9, 5, 0)  # 08:00 in Moscow
    assert row["last_error"].startswith("held: outside contact hours in Europe/Moscow")
    # the next day's send (its own plan date, nothing new for C4) delivers it once the window opens
    send(settings, dt.date(2024, 4, 9), now=dt.datetime(2024, 4, 9, 4, 0, tzinfo=dt.UTC))
    assert gateway.received == []
    send(settings, dt.date(2024, 4, 9), now=dt.datetime(2024, 4, 9, 6, 0, tzinfo=dt.UTC))
    assert [r["key"] for r in gateway.received] == ["C4:pre_due:2024-04-08"]


def test_a_refused_token_or_sender_is_a_setting_to_fix_not_a_failed_message(home, gateway):
    """An SMS gateway's 401 (the token) and an SMTP 5xx to MAIL FROM ([smtp] sender) are the same
    for every message: the messages wait, pending, for the setting to be fixed, then go."""
    settings = settings_for(home, gateway=gateway)
    gateway.answer["code"] = 401
    refused = send(settings, dt.date(2024, 4, 8), now=dt.datetime(2024, 4, 8, 9, 0, tzinfo=dt.UTC))
    assert (refused.failed, refused.retrying) == (0, 1)
    row = state(settings, "C4:pre_due:2024-04-08")
    assert row["status"] == "pending" and "refused the credentials (401" in row["last_error"]
    gateway.answer["code"] = None  # the token is fixed
    send(settings, dt.date(2024, 4, 8), now=dt.datetime(2024, 4, 8, 11, 0, tzinfo=dt.UTC))
    assert [r["key"] for r in gateway.received] == ["C4:pre_due:2024-04-08"]

    class RefusingSender(Inbox):
        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            return "550 5.7.1 Sender not allowed"

    with serving(RefusingSender()) as server:
        smtp_settings = settings_for(home, server.port)
        first = send(smtp_settings, D, now=NOON)
    assert first.failed == 0 and state(smtp_settings, C3)["status"] == "pending"
    assert "refused the sender ([smtp] sender): 550" in state(smtp_settings, C3)["last_error"]


def test_a_newer_message_supersedes_a_held_one(home, gateway):
    settings = settings_for(home, gateway=gateway)
    send(settings, dt.date(2024, 4, 11), now=dt.datetime(2024, 4, 11, 19, 0, tzinfo=dt.UTC))  # held
    morning = send(settings, dt.date(2024, 4, 12), now=dt.datetime(2024, 4, 12, 6, 0, tzinfo=dt.UTC))
    assert morning.expired == 1
    assert [r["key"] for r in gateway.received] == ["C4:overdue_1:2024-04-12"]  # one message that day, the current one
    old = state(settings, "C4:overdue_1:2024-04-11")
    assert old["status"] == "expired" and old["last_error"].startswith("superseded by C4:overdue_1:2024-04-12")


def test_a_message_expires_expire_hours_after_it_entered_the_outbox(home, smtp):
    evening = dt.datetime(2024, 5, 31, 22, 0, tzinfo=dt.UTC)  # C3 is in UTC: held until 08:00
    settings = settings_for(home, smtp.port)
    assert send(settings, D, now=evening).deferred == 1
    late = send(settings, D, now=evening + dt.timedelta(hours=49))
    assert (late.sent, late.expired) == (0, 1)
    assert late.failures[0][0] == C3 and "expire_hours" in late.failures[0][1]
    assert state(settings, C3)["status"] == "expired" and smtp.messages == []
    # expire_hours = 0: it waits however long it takes
    forever = settings_for(home, smtp.port, LOANWATCH_NOTIFY__EXPIRE_HOURS="0")
    con = outbox.connect(forever)
    con.execute("UPDATE messages SET status = 'pending' WHERE message_id = ?", [C3])
    con.close()
    assert send(forever, D, now=evening + dt.timedelta(days=30, hours=-10)).sent == 1
    assert keys(smtp) == [C3]


def test_outbox_lists_stuck_messages_with_attempts_next_attempt_and_last_error(home):
    with serving(Refusing("421 4.7.0 Try again later", times=99)) as server:
        settings = settings_for(home, server.port)
        send(settings, D, now=NOON)
    table = cli("outbox", home=home, env={"COLUMNS": "250"})  # wide enough for every column
    assert table.exit_code == 0, table.stderr
    assert "Next attempt" in table.stdout and "Last error" in table.stdout and C3 in table.stdout
    pending = json.loads(cli("outbox", "--status", "pending", "-f", "json", home=home).stdout)
    assert [(r["message_id"], r["attempts"], r["next_attempt_at"][:16]) for r in pending] == [(C3, 1, "2024-05-31 13:00")]
    assert pending[0]["last_error"].startswith("mail server refused the recipient: 421")
    csv_out = cli("outbox", "--status", "sent", "-f", "csv", home=home).stdout.splitlines()
    assert csv_out[0].startswith("message_id,client_id,channel,rule,plan_date,status,attempts,next_attempt_at,last_error")
    assert [line.split(",")[0] for line in csv_out[1:]] == ["C4:call:2024-05-31"]
    assert "no messages expired" in cli("outbox", "--status", "expired", home=home).stdout
    empty = home.parent / "empty"
    assert "no messages in the outbox" in cli("outbox", home=empty).stdout
    assert not empty.exists()  # reading made nothing


def _inbox_of(folder, *sources):
    folder.mkdir()
    for source in sources:
        for f in source.glob("*.jsonl"):
            shutil.copy(f, folder)
    return folder


def _history(home) -> list[dict]:
    return json.loads(cli("runs", "--format", "json", home=home).stdout)


def test_after_a_sigkill_mid_send_the_next_run_sends_what_was_pending(tmp_path):
    """Run 1 ingests, builds and is killed while the mail server holds its email; run 2 finds
    nothing new, but the outbox's pending message is due: it sends it, once."""
    inbox = _inbox_of(tmp_path / "inbox", GOLDEN)
    home = tmp_path / "home"
    with serving(Holding()) as server:
        env = {**os.environ, **ALL_DAY, "LOANWATCH_HOME": str(home), "LOANWATCH_RUN__NOTIFY": "true",
               "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0", "LOANWATCH_SMTP__HOST": "127.0.0.1",
               "LOANWATCH_SMTP__PORT": str(server.port)}
        cmd = [sys.executable, "-c", "from loanwatch.cli import run; run()", "run", "--inbox", str(inbox), "--date", "2024-05-31"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert server.holding.wait(timeout=600), "run 1 never reached the mail server"
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        server.release.set()
        second = run_cli("--home", home, "run", "--inbox", inbox, "--date", "2024-05-31", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert run_cli("--home", home, "run", "--inbox", inbox, "--date", "2024-05-31", env=env).returncode == 0
    assert keys(server) == [C3]  # once: the killed attempt was never accepted, the third run sent nothing
    assert "nothing new since the last build; 1 message(s) pending in the outbox: sent 1" in second.stdout
    history = _history(home)
    assert [(r["run_id"], r["status"], r["build"], r["notify"]) for r in history] == [
        (3, "nothing_new", "skipped", "skipped"), (2, "nothing_new", "skipped", "ok"), (1, "interrupted", "ok", None)]


def test_a_run_killed_before_its_plan_reached_the_outbox_is_made_good(home, smtp):
    """The last run that built has no notify step (killed between build and send) and the outbox
    holds nothing: the next run, with nothing new, plans and sends the day."""
    from loanwatch.warehouse import connect

    settings = load_settings(home, environ={})
    inbox = _inbox_of(home.parent / "inbox", GOLDEN, GOLDEN.parent / "notify_extra")
    env = {**ALL_DAY, "LOANWATCH_RUN__NOTIFY": "true", "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0",
           "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port)}
    # the killed run's build: with these settings (the hold-out share is the models' too, so a
    # run with another share would build again, not find nothing new)
    assert cli("build", home=home, env=env).exit_code == 0
    with connect(settings.warehouse_path) as con:
        from loanwatch.warehouse import init_warehouse

        init_warehouse(con)
        con.execute("INSERT INTO meta.runs (run_id, started_at, status, run_date, trigger) VALUES (1, now(), 'interrupted', DATE '2024-05-31', 'cli')")
        con.execute("INSERT INTO meta.run_steps VALUES (1, 'ingest', now(), now(), 'ok', '{}', ''), (1, 'build', now(), now(), 'ok', '{}', '')")
    result = cli("run", "--inbox", inbox, "--date", "2024-05-31", home=home, env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "run 1 built but was stopped before sending" in result.stdout
    assert keys(smtp) == [C3]
    assert cli("run", "--inbox", inbox, "--date", "2024-05-31", home=home, env=env).exit_code == 0
    assert keys(smtp) == [C3]


# ---------------------------------------------------------------- 4. messages sent twice


def test_a_late_file_and_a_second_run_the_same_day_send_one_message_and_one_summary(tmp_path, smtp):
    """05-01 is a Wednesday, the weekly day. Run 1: C3 is reminded that L03 is due today, and the
    summary goes. A late file adds C3's L21, one day late on 05-01: run 2 plans overdue_1 for C3,
    held back by the daily cap, and the week's summary is not sent again."""
    inbox = _inbox_of(tmp_path / "inbox", GOLDEN)
    home = tmp_path / "home"
    env = {**ALL_DAY, "LOANWATCH_RUN__NOTIFY": "true", "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0",
           "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port),
           "LOANWATCH_RUN__WEEKLY_DAY": "wednesday", "LOANWATCH_NOTIFY__MANAGEMENT_TO": "risk@example.com"}
    first = cli("run", "--inbox", inbox, "--date", "2024-05-01", home=home, env=env)
    assert first.exit_code == 0, first.stdout + first.stderr
    (inbox / "loans_late.jsonl").write_text(json.dumps(
        {"loan_id": "L21", "client_id": "C3", "product": "cash", "amount": 200, "issue_date": "2024-03-30",
         "term_months": 1, "status": "active", "updated_at": "2024-03-30T10:00:00Z"}) + "\n")
    second = cli("run", "--inbox", inbox, "--date", "2024-05-01", home=home, env=env)
    assert second.exit_code == 0, second.stdout + second.stderr
    assert "build: ok" in second.stdout  # the late file was built, the day planned again
    to = [m["To"] for m in smtp.messages]
    assert to.count("risk@example.com") == 1
    assert [k for k in keys(smtp) if k] == ["C3:due_day:2024-05-01"]
    # the weekly step says why it sent nothing (in the run's step line and its history)
    assert "went to risk@example.com" in second.stdout and "not sent again" in second.stdout
    plan = json.loads(cli("notify", "plan", "--date", "2024-05-01", "--all", "-f", "json", home=home, env=env).stdout)
    [c3] = [r for r in plan if r["client_id"] == "C3" and r["channel"] == "email"]
    assert (c3["rule"], c3["status"]) == ("overdue_1", "suppressed")
    assert c3["reason"].startswith("daily cap: C3:due_day:2024-05-01 already in the outbox for 2024-05-01")


@pytest.mark.parametrize("per_day", [1, 2])
def test_at_most_max_messages_per_day_reach_a_client_whatever_the_plan_dates(home, smtp, per_day):
    """Two plan dates sent the same day (C3: due_day on 05-01, overdue_1 on 05-02): the second
    waits for the client's next day, unless the cap allows two."""
    settings = settings_for(home, smtp.port, LOANWATCH_NOTIFY__MAX_MESSAGES_PER_DAY=str(per_day))
    send(settings, dt.date(2024, 5, 1), now=dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC))
    assert keys(smtp) == ["C3:due_day:2024-05-01"]
    same_day = send(settings, dt.date(2024, 5, 2), now=dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC))
    if per_day == 1:
        assert same_day.deferred == 1 and len(smtp.messages) == 1
        row = state(settings, "C3:overdue_1:2024-05-02")
        assert row["next_attempt_at"] == dt.datetime(2024, 5, 2, 0, 0) and "max_messages_per_day = 1" in row["last_error"]
        send(settings, dt.date(2024, 5, 2), now=dt.datetime(2024, 5, 1, 20, 0, tzinfo=dt.UTC))
        assert len(smtp.messages) == 1
        send(settings, dt.date(2024, 5, 2), now=dt.datetime(2024, 5, 2, 9, 0, tzinfo=dt.UTC))
    assert keys(smtp) == ["C3:due_day:2024-05-01", "C3:overdue_1:2024-05-02"]


def test_the_weekly_summary_goes_once_per_iso_week(home, smtp):
    env = {"LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port)}
    for date in ("2024-04-30", "2024-04-30", "2024-05-02"):  # a Tuesday twice, then the Thursday: ISO week 18
        result = cli("notify", "weekly", "--date", date, "--to", "cfo@example.com", home=home, env=env)
        assert result.exit_code == 0, result.stderr
    assert "the weekly summary for 2024-W18 went to cfo@example.com" in result.stderr
    assert len(smtp.messages) == 1
    assert cli("notify", "weekly", "--date", "2024-05-07", "--to", "cfo@example.com", home=home, env=env).exit_code == 0
    assert cli("notify", "weekly", "--date", "2024-05-07", "--to", "coo@example.com", home=home, env=env).exit_code == 0
    assert [(m["To"], m["Subject"]) for m in smtp.messages] == [
        ("cfo@example.com", "loanwatch weekly summary, 2024-04-30"),
        ("cfo@example.com", "loanwatch weekly summary, 2024-05-07"),
        ("coo@example.com", "loanwatch weekly summary, 2024-05-07")]
    assert len({m["Message-ID"] for m in smtp.messages}) == 3


# ---------------------------------------------------------------- 10. deadline, Slack 429, damaged outbox


@contextlib.contextmanager
def silent_server():
    """A port that accepts connections (the kernel completes the handshake) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _more_emails(settings, n: int) -> None:
    """n more pending emails for D, beside C3's (the golden fixture has one a day)."""
    con = outbox.connect(settings)
    rows = [{"client_id": f"X{i}", "rule": "overdue_30", "channel": "email", "recipient": f"x{i}@example.com",
             "client_name": f"X {i}", "language": "en", "timezone": "UTC", "loans": "L03", "open_amount": 10,
             "due_date": None, "expected_recovery": None, "reason": "test", "status": "planned"} for i in range(n)]
    enqueue(con, rows, D, NOON.replace(tzinfo=None))
    con.close()


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_silent_server_holds_the_outbox_no_longer_than_the_deadline(home, channel):
    """[smtp] timeout 30 and 3 attempts: without a deadline, 90 s and more per message. With
    send_deadline_seconds = 3 every wait is cut to what is left of it; nothing is failed."""
    with silent_server() as port:
        env = {"LOANWATCH_NOTIFY__SEND_DEADLINE_SECONDS": "3", "LOANWATCH_NOTIFY__BACKOFF_SECONDS": "0.1",
               "LOANWATCH_SMTP__TIMEOUT": "30"}
        if channel == "email":
            settings = settings_for(home, port, **env)
            _more_emails(settings, 3)
            day, moment, first = D, NOON, C3
        else:
            settings = settings_for(home, **env, LOANWATCH_SMS__URL=f"http://127.0.0.1:{port}/sms")
            day, moment, first = dt.date(2024, 4, 11), dt.datetime(2024, 4, 11, 9, 0, tzinfo=dt.UTC), "C4:overdue_1:2024-04-11"
        started = time.monotonic()
        result = send(settings, day, now=moment)
        took = time.monotonic() - started
    assert took < 25, f"the send held the outbox {took:.0f} s"
    assert result.failed == 0
    row = state(settings, first)
    assert row["status"] == "pending" and row["attempts"] >= 1 and "no answer in time" in row["last_error"]
    if channel == "email":
        others = [state(settings, f"X{i}:overdue_30:2024-05-31") for i in range(3)]
        assert all(r["status"] == "pending" and r["attempts"] == 0 and r["last_error"].startswith("not tried") for r in others)


@pytest.fixture()
def slack():
    """A local stand-in for Slack's incoming webhook: it answers from `answers` (status,
    headers, body) in turn, then 200 ok, and keeps each post with when it came."""
    posts, answers = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append((time.monotonic(), json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            status, headers, body = answers.pop(0) if answers else (200, {}, "ok")
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.posts, server.answers = posts, answers
    server.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXXXXXXXXXX"
    yield server
    server.shutdown()


def test_a_slack_429_is_posted_again_after_its_retry_after(tmp_path, slack):
    from loanwatch.notify.internal import post_to_slack

    slack.answers.append((429, {"Retry-After": "1"}, "rate_limited"))
    settings = load_settings(tmp_path, environ={"LOANWATCH_SLACK__WEBHOOK_URL": slack.url})
    assert post_to_slack(settings, "build 7: success") is True
    assert [p[1]["text"] for p in slack.posts] == ["build 7: success"] * 2
    assert slack.posts[1][0] - slack.posts[0][0] >= 0.9  # it waited for Retry-After


@pytest.mark.parametrize("retry_after, posts", [("1", 2), ("3600", 1)])
def test_a_slack_429_that_persists_is_warned_about(tmp_path, slack, capsys, retry_after, posts):
    from loanwatch.notify.internal import tell_slack

    slack.answers.extend([(429, {"Retry-After": retry_after}, "rate_limited")] * 2)
    settings = load_settings(tmp_path, environ={"LOANWATCH_SLACK__WEBHOOK_URL": slack.url})
    tell_slack(settings, "loanwatch run 3: failed")
    err = capsys.readouterr().err
    assert len(slack.posts) == posts
    assert err.startswith("warning: telling Slack failed:") and "429" in err
    assert ("again after waiting 1 s" in err) if posts == 2 else ("asks to wait 3600 s" in err)
    assert "XXXXXXXXXXXX" not in err


def _sent_outbox(home, smtp) -> None:
    settings = settings_for(home, smtp.port)
    assert send(settings, D, now=NOON).sent == 2
    return settings


def test_a_damaged_outbox_names_the_file_to_move_aside(home, smtp):
    _sent_outbox(home, smtp)
    path = home / "notify.duckdb"
    with open(path, "r+b") as fh:
        fh.write(b"\0" * 64)  # the header gone
    env = {**ALL_DAY, "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port)}
    for command in (["notify", "send", "--date", "2024-05-31"], ["outbox"]):
        result = cli(*command, home=home, env=env)
        assert result.exit_code == 1
        line = " ".join(result.stderr.split())
        assert f"mv {path} {path}.damaged" in line and "keeps the sent history" in line, line
        assert "--home" not in line and "new home" not in line
    path.rename(path.with_name("notify.duckdb.damaged"))
    assert cli("outbox", home=home).exit_code == 0


def test_a_damaged_outbox_log_is_moved_aside_and_the_history_kept(home, smtp):
    settings = _sent_outbox(home, smtp)
    con = duckdb.connect(str(outbox.path(settings)))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")  # the next write stays in the log
    con.execute("UPDATE messages SET last_error = 'in the log only' WHERE message_id = ?", [C3])
    con.close()
    wal = home / "notify.duckdb.wal"
    data = bytearray(wal.read_bytes())
    data[10:40] = b"\xff" * 30
    wal.write_bytes(bytes(data))
    result = cli("outbox", home=home)
    assert result.exit_code == 1
    line = " ".join(result.stderr.split())
    assert f"mv {wal} {wal}.damaged" in line and "with its sent history" in line, line
    wal.rename(wal.with_name("notify.duckdb.wal.damaged"))
    sent = json.loads(cli("outbox", "--status", "sent", "-f", "json", home=home).stdout)
    assert sorted(r["message_id"] for r in sent) == [C3, "C4:call:2024-05-31"]


def test_the_default_schedule_reaches_every_clients_contact_hours():
    """A default install delivers: within any day, the default schedule starts a run inside the
    default contact hours of a client in UTC, in Mexico City and in Moscow."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    from loanwatch.config import DEFAULTS
    from loanwatch.notify.send import in_contact_hours

    settings = load_settings("/nonexistent", environ={})
    start = dt.datetime(2024, 6, 3, tzinfo=ZoneInfo(DEFAULTS["schedule"]["timezone"]))
    times = croniter(DEFAULTS["schedule"]["cron"], start)
    day = [times.get_next(dt.datetime) for _ in range(48)]
    day = [t for t in day if t < start + dt.timedelta(days=1)]
    for zone in ("UTC", "America/Mexico_City", "Europe/Moscow"):
        assert any(in_contact_hours(zone, t, settings) for t in day), zone


def test_the_weekly_summary_is_keyed_by_the_runs_week_not_the_data_date(home, smtp):
    """`run` gives no --date: the week is the run's day's, not the data date's (which moves as
    files arrive within a day, and stays put in a week without files): two runs on one Monday
    send one summary, the next Monday's sends the next week's, however old the data."""
    from loanwatch.notify.internal import weekly_due, weekly_summary

    settings = settings_for(home, smtp.port, LOANWATCH_NOTIFY__MANAGEMENT_TO="cfo@example.com")
    monday = dt.date(2024, 6, 3)
    assert weekly_due(settings, monday)
    assert weekly_summary(settings, None, today=monday)[2] == ""
    assert "not sent again" in weekly_summary(settings, None, today=monday + dt.timedelta(days=1))[2]
    assert not weekly_due(settings, monday)
    assert weekly_summary(settings, None, today=monday + dt.timedelta(days=7))[2] == ""
    assert len(smtp.messages) == 2
