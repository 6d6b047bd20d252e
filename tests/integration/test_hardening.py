"""Hardening (issue 20), the classes that need a built warehouse: reversals of the wrong payment,
--as-of far beyond the data date, damaged files, one bad message among many, the outbox lock,
and the dashboard stopped by SIGTERM. Every CLI run goes through the traceback guard."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal as D

import pytest

from loanwatch.config import load_settings
from loanwatch.notify import outbox
from loanwatch.notify.send import Undeliverable, _dry_run, email_address, sms_number
from tests.conftest import GOLDEN, assert_no_traceback, build_home, cli, run_cli
from tests.integration.conftest import _port

pytestmark = pytest.mark.integration


# --- 6. reversals of the wrong payment ----------------------------------------------------------

def _reversal_fixture(folder):
    folder.mkdir(parents=True)
    (folder / "clients.jsonl").write_text(json.dumps({"client_id": "C1", "name": "Ana", "updated_at": "2024-01-01T00:00:00Z"}) + "\n")
    loan = {"client_id": "C1", "amount": 300, "issue_date": "2024-01-10", "term_months": 3, "updated_at": "2024-01-10T00:00:00Z"}
    (folder / "loans.jsonl").write_text("".join(json.dumps({"loan_id": i, **loan}) + "\n" for i in ("A", "B")))
    first = [
        {"payment_id": "PA1", "loan_id": "A", "paid_at": "2024-02-10T10:00:00Z", "amount": 100},
        {"payment_id": "PA2", "loan_id": "A", "paid_at": "2024-03-10T10:00:00Z", "amount": 100},
        {"payment_id": "PB1", "loan_id": "B", "paid_at": "2024-02-10T10:00:00Z", "amount": 100},
    ]
    later = [
        # filed on loan B, naming loan A's payment: not applied
        {"payment_id": "R1", "loan_id": "B", "paid_at": "2024-02-20T10:00:00Z", "amount": 100, "type": "reversal", "reverses": "PA1"},
        # a reversal of a reversal: not applied
        {"payment_id": "R2", "loan_id": "B", "paid_at": "2024-02-25T10:00:00Z", "amount": 100, "type": "reversal", "reverses": "R1"},
        # the right loan, a different amount: voids the whole payment, and a warning names it
        {"payment_id": "R3", "loan_id": "B", "paid_at": "2024-03-15T10:00:00Z", "amount": 60, "type": "reversal", "reverses": "PB1"},
    ]
    return first, later


# By hand at the data date 2024-03-15: A paid 100 + 100 of instalments of 100 due 02-10 and 03-10:
# current, 100 outstanding. B's only payment is voided: instalments due 02-10 and 03-10 unpaid,
# overdue since 02-10, DPD = 03-15 - 02-10 = 34 (bucket 31-60), 300 outstanding, 200 past due.
EXPECTED_LOANS = [
    ("A", "C1", D("300.00"), "current", 0, "current", D("100.00"), D("0.00")),
    ("B", "C1", D("300.00"), "overdue", 34, "31-60", D("300.00"), D("200.00")),
]


def _loans(home):
    """`report loans`' pinned columns (contract v3 added charges_past_due after them: none here)."""
    result = cli("report", "loans", "-f", "json", home=home)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(r.pop("charges_past_due") == 0 for r in rows)
    return [tuple(D(str(v)) if k in ("amount", "principal_outstanding", "past_due_amount") else v for k, v in r.items())
            for r in rows]


def _checks(home):
    result = cli("check", "-f", "json", home=home)
    return {r["check"]: r for r in json.loads(result.stdout)}


@pytest.mark.parametrize("incremental", [False, True])
def test_a_reversal_undoes_only_a_payment_of_its_own_loan(tmp_path, incremental):
    first, later = _reversal_fixture(tmp_path / "raw")
    if incremental:  # the reversals arrive after a build: the same figures as one build
        (tmp_path / "raw" / "payments_1.jsonl").write_text("".join(json.dumps(p) + "\n" for p in first))
        settings = build_home(tmp_path / "home", tmp_path / "raw")
        (tmp_path / "later").mkdir()
        (tmp_path / "later" / "payments_2.jsonl").write_text("".join(json.dumps(p) + "\n" for p in later))
        assert cli("ingest", tmp_path / "later", home=settings.home).exit_code == 0
        assert cli("build", home=settings.home).exit_code == 0
    else:
        (tmp_path / "raw" / "payments.jsonl").write_text("".join(json.dumps(p) + "\n" for p in first + later))
        settings = build_home(tmp_path / "home", tmp_path / "raw")
    assert _loans(settings.home) == EXPECTED_LOANS
    checks = _checks(settings.home)
    assert (checks["warn_reversals_not_applied"]["status"], checks["warn_reversals_not_applied"]["failing_rows"]) == ("warn", 2)
    assert (checks["warn_reversal_amount_differs"]["status"], checks["warn_reversal_amount_differs"]["failing_rows"]) == ("warn", 1)
    rows = json.loads(cli("check", "--rows", "warn_reversals_not_applied", "-f", "json", home=settings.home).stdout)
    assert sorted((r["payment_id"], r["reason"]) for r in rows) == [
        ("R1", "names a payment of loan A"), ("R2", "names a reversal, not a payment")]


# --- 8. --as-of far beyond the data date ----------------------------------------------------------

@pytest.mark.parametrize("report", ["overdue-monthly", "loans", "buckets", "regions", "risk"])
def test_as_of_after_the_data_date_is_a_projection_and_bounded(golden, report):
    # the golden data date is 2024-06-30
    far = cli("report", report, "--as-of", "5000-01-01", home=golden.home)
    assert far.exit_code == 2
    assert "--as-of 5000-01-01 is more than 366 days after the data date 2024-06-30" in far.stderr
    assert cli("report", report, "--as-of", "9999-12-31", home=golden.home).exit_code == 2
    near = cli("report", report, "--as-of", "2024-09-30", "-f", "csv", home=golden.home)
    assert near.exit_code == 0
    assert "warning: --as-of 2024-09-30 is after the data date 2024-06-30: the figures are a projection" in near.stderr
    assert cli("report", report, "--as-of", "2024-06-30", home=golden.home).stderr == ""


@pytest.mark.parametrize("verb", ["plan", "weekly", "send"])
def test_notify_dates_far_beyond_the_data_date_are_bounded_too(golden, verb):
    far = cli("notify", verb, "--date", "9999-12-31", home=golden.home)
    assert far.exit_code == 2
    assert "--date 9999-12-31 is more than 366 days after the data date 2024-06-30" in far.stderr


def test_the_projection_horizon_is_a_setting(golden, tmp_path):
    html = tmp_path / "r.html"
    assert cli("report", "html", "--out", html, "--as-of", "2025-12-31", home=golden.home).exit_code == 2
    ok = cli("report", "html", "--out", html, "--as-of", "2025-12-31", home=golden.home,
             env={"LOANWATCH_REPORTS__PROJECTION_HORIZON_DAYS": "730"})
    assert ok.exit_code == 0 and "is a projection" not in ok.stderr and "projection" in ok.stderr


# --- 9. damaged files -------------------------------------------------------------------------------

def test_a_damaged_snapshot_is_named_and_the_next_build_rebuilds_from_the_warehouse(golden, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(golden.home, home, ignore=shutil.ignore_patterns("*.lock"))
    before = cli("report", "overdue-monthly", "-f", "csv", home=home).stdout
    for damage in ("truncate", "garbage"):
        path = home / "serving.duckdb"
        if damage == "truncate":
            os.truncate(path, path.stat().st_size // 3)
        else:
            path.write_bytes(os.urandom(4096))
        report = cli("report", "loans", home=home)
        assert report.exit_code == 1
        assert f"{path} is damaged or cut short" in report.stderr
        assert "run `loanwatch build` to publish it again from the warehouse" in report.stderr
        rebuilt = cli("build", home=home)
        assert rebuilt.exit_code == 0, rebuilt.stderr
        assert "rebuilt everything from the warehouse instead of starting from it" in rebuilt.stderr
        assert cli("report", "overdue-monthly", "-f", "csv", home=home).stdout == before


def test_a_build_out_of_memory_says_so_with_the_setting_and_nothing_of_dbt(golden, tmp_path):
    """DuckDB's memory limit far too low: each model that fails says the machine's fault and the
    setting in one line; dbt's own error report (colours, DuckDB's SET advice) stays in its log."""
    home = tmp_path / "home"
    shutil.copytree(golden.home, home, ignore=shutil.ignore_patterns("*.lock"))
    failed = cli("build", "--full-refresh", home=home, env={"LOANWATCH_WAREHOUSE__MEMORY_LIMIT": "1MB"})
    assert failed.exit_code == 1
    out = failed.stdout + failed.stderr
    assert "failed: the machine ran out of memory; free memory, or give loanwatch more ([warehouse] memory_limit)" in out
    assert "Out of Memory Error" not in out and "SET threads" not in out and "\x1b[" not in out
    assert "Out of Memory Error" in (home / ".dbt" / "logs" / "dbt.log").read_text()
    rebuilt = cli("build", home=home)  # with the memory it needs: built, as before
    assert rebuilt.exit_code == 0, rebuilt.stderr


def test_a_damaged_warehouse_is_named_for_every_writer(golden, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(golden.home, home, ignore=shutil.ignore_patterns("*.lock"))
    os.truncate(home / "warehouse.duckdb", 50_000)
    for args in (["build"], ["ingest", GOLDEN], ["batches"], ["rejects"]):
        result = cli(*args, home=home)
        assert result.exit_code == 1, args
        assert f"{home / 'warehouse.duckdb'} is damaged or cut short" in result.stderr
        assert "restore warehouse.duckdb from a copy" in result.stderr


# --- 2. one bad message never stops the others ----------------------------------------------------

@pytest.mark.parametrize("address, why", [
    ("a@b.com\nBcc: x@y.com", "contains a control character"),
    ("a@b.com\r\nSubject: spam", "contains a control character"),
    ("not an address", "is not a valid address"),
    ("a@b.com, c@d.com", "is not a valid address"),
    ("", "no email address"),
])
def test_an_invalid_or_injecting_address_is_refused_by_the_parser(address, why):
    with pytest.raises(Undeliverable, match=why):
        email_address(address)


def test_display_names_cannot_inject_headers():
    parsed = email_address("ana@example.com", "Ana\r\nBcc: x@y.com")
    assert str(parsed) == '"Ana Bcc: x@y.com" <ana@example.com>'
    assert parsed.addr_spec == "ana@example.com"
    for bad in ("+1 555\n0100", "call me", ""):
        with pytest.raises(Undeliverable):
            sms_number(bad)


@pytest.fixture()
def home(notify_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(notify_home, copy, ignore=shutil.ignore_patterns("*.lock", "notify.duckdb*", "call_queue"))
    return copy


@pytest.fixture()
def servers(smtp, gateway):
    """The SMTP server and SMS gateway of test_notify_send; the gateway refuses one number (400)."""
    gateway.refuse.add("+10000000000")
    env = {"LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0", "LOANWATCH_NOTIFY__BACKOFF_SECONDS": "0.01",
           "LOANWATCH_NOTIFY__QUIET_START": "00:00", "LOANWATCH_NOTIFY__QUIET_END": "23:59:59",
           "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port), "LOANWATCH_SMS__URL": gateway.url}
    return env, smtp.messages, gateway.received


BAD_MESSAGES = [
    ("X1", "email", "a@b.com\nBcc: x@y.com"),   # header injection
    ("X2", "email", "not an address"),
    ("X3", "sms", "+10000000000"),              # the gateway answers 400 for this number
    ("X4", "sms", "call\x1b[2J me"),            # not a number (and a terminal escape)
    ("X5", "sms", "+79990009999"),              # a good one among the bad
]


def _pending(settings, day: dt.date):
    con = outbox.connect(settings)
    con.executemany(
        """INSERT INTO messages (message_id, client_id, channel, rule, plan_date, recipient, client_name, language,
                                 timezone, loans, open_amount, due_date, expected_recovery, reason, status, created_at)
           VALUES (?, ?, ?, 'overdue_1', ?, ?, 'X', 'en', 'UTC', 'L01', 10, NULL, NULL, 'test', 'pending', now())""",
        [[f"{c}:overdue_1:{day}", c, channel, day, to] for c, channel, to in BAD_MESSAGES])
    con.close()


def test_each_message_is_delivered_or_failed_on_its_own(home, servers):
    env, mails, texts = servers
    day = dt.date(2024, 5, 31)
    settings = load_settings(home, environ=env)
    _pending(settings, day)
    result = run_cli("--home", home, "notify", "send", "--date", day, env=env)
    assert result.returncode == 1, result.stderr
    # the plan's own email (C3) and the good SMS went out; the four bad ones failed, each with why
    assert [m["To"].addresses[0].addr_spec for m in mails] == ["omer@example.com"]
    assert [t["body"]["to"] for t in texts] == ["+79990009999"]
    assert "\x1b" not in result.stderr
    for key, reason in (("X1", "contains a control character"), ("X2", "is not a valid address"),
                        ("X3", "SMS gateway refused the message (400"), ("X4", "is not a phone number")):
        assert f"failed {key}:overdue_1:2024-05-31: " in result.stderr and reason in result.stderr
    con = outbox.connect(settings)
    status = dict(con.execute("SELECT client_id, status FROM messages").fetchall())
    tries = dict(con.execute("SELECT message_id, count(*) FROM attempts GROUP BY 1").fetchall())
    con.close()
    assert {k: status[k] for k in ("X1", "X2", "X3", "X4", "X5", "C3")} == {
        "X1": "failed", "X2": "failed", "X3": "failed", "X4": "failed", "X5": "sent", "C3": "sent"}
    assert tries["X3:overdue_1:2024-05-31"] == 1  # a 4xx is final: not retried
    # a rerun sends nothing again and fails nothing again
    again = run_cli("--home", home, "notify", "send", "--date", day, env=env)
    assert again.returncode == 0 and len(mails) == 1 and len(texts) == 1


def test_a_dry_run_renders_the_good_messages_and_names_the_bad(tmp_path, home, servers):
    env, _, _ = servers
    settings = load_settings(home, environ=env)
    plan = [{"status": "planned", "client_id": c, "rule": "overdue_1", "channel": ch, "recipient": to,
             "client_name": "N\r\nBcc: z@z.com", "language": "en", "loans": "L01", "open_amount": D("10"),
             "due_date": None, "expected_recovery": None, "reason": "t", "timezone": "UTC"}
            for c, ch, to in BAD_MESSAGES + [("OK", "email", "ok@example.com")]]
    from loanwatch.notify.send import SendResult

    result = _dry_run(plan, dt.date(2024, 5, 31), tmp_path / "review", settings, SendResult(dt.date(2024, 5, 31)))
    assert sorted(p.name for p in result.written) == ["OK_overdue_1_2024-05-31.eml", "X3_overdue_1_2024-05-31.txt",
                                                     "X5_overdue_1_2024-05-31.txt"]
    assert sorted(k for k, _ in result.failures) == ["X1:overdue_1:2024-05-31", "X2:overdue_1:2024-05-31",
                                                     "X4:overdue_1:2024-05-31"]
    import email
    from email import policy

    eml = email.message_from_bytes((tmp_path / "review" / "OK_overdue_1_2024-05-31.eml").read_bytes(), policy=policy.default)
    # the display name's line break did not become a header
    assert eml["Bcc"] is None and eml["To"] == '"N Bcc: z@z.com" <ok@example.com>'


def test_a_second_send_or_a_plan_waits_for_the_outbox_then_says_so(home, servers):
    env, _, _ = servers
    env = {**env, "LOANWATCH_WAREHOUSE__LOCK_TIMEOUT": "1"}
    settings = load_settings(home, environ=env)
    with outbox.opened(settings):  # a send in progress holds the outbox
        for args in (["notify", "send"], ["notify", "plan"]):
            result = run_cli("--home", home, *args, env=env)
            assert result.returncode == 1, result.stderr
            assert "the outbox is in use by pid" in result.stderr and "waited 1 s" in result.stderr
    assert run_cli("--home", home, "notify", "plan", env=env).returncode == 0


# --- 11. the dashboard stops with its command -------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_dashboard_server_stops_when_its_command_is_terminated(golden, sig):
    from loanwatch.dashboard import wait_until_ready

    port = _port()
    proc = subprocess.Popen([sys.executable, "-c", "from loanwatch.cli import run; run()", "--home", str(golden.home),
                             "dashboard", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until_ready(f"http://127.0.0.1:{port}", timeout=90)
        [server] = _children(proc.pid)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert_no_traceback(out, err)
        assert proc.returncode == 0
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{server}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(f"/proc/{server}") or "Z" in open(f"/proc/{server}/stat").read().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
