"""`loanwatch run` (the day's cycle and its history) and `loanwatch schedule`."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import duckdb

from tests.conftest import GOLDEN, OVER_SCHEDULED, PAYMENT, assert_no_traceback, cli, run_cli


def _runs(home, *run_id) -> list[dict]:
    result = cli("runs", *map(str, run_id), "--format", "json", home=home)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _sent(home) -> int:
    path = home / "notify.duckdb"
    if not path.exists():
        return 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM messages WHERE status = 'sent'").fetchall()[0][0]
    finally:
        con.close()


def test_run_on_an_inbox_fed_in_steps_records_each_case(tmp_path, smtp, gateway):
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    env = {"LOANWATCH_RUN__NOTIFY": "true", "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port),
           "LOANWATCH_RUN__WEEKLY_DAY": "friday", "LOANWATCH_NOTIFY__MANAGEMENT_TO": "risk@example.com"}

    # 1. nothing in the inbox, nothing ever loaded: nothing to do, exit 0
    first = cli("run", "--inbox", inbox, home=home, env=env)
    assert first.exit_code == 0, first.stderr
    assert "nothing new" in first.stdout + first.stderr

    # 2. new files: loaded, built, the day's messages sent; 2024-06-28 is a Friday: the summary too
    for f in GOLDEN.iterdir():
        shutil.copy(f, inbox)
    second = cli("run", "--inbox", inbox, "--date", "2024-06-28", home=home, env=env)
    assert second.exit_code == 0, second.stdout + second.stderr
    sent = _sent(home)
    assert sent > 0
    assert any(m["To"] == "risk@example.com" for m in smtp.messages)

    # 3. the same files again: nothing new, nothing built or sent (told as JSON events this time)
    # a Saturday: not the weekly day, whatever day the suite runs on
    third = cli("run", "--inbox", inbox, "--date", "2024-06-29", home=home, env={**env, "LOANWATCH_LOG_FORMAT": "json"})
    assert third.exit_code == 0
    events = [json.loads(line) for line in third.stdout.splitlines()]  # every line is one JSON object
    assert [(e["event"], e.get("step"), e["status"]) for e in events] == [
        ("run_step", "ingest", "ok"), ("run_step", "build", "skipped"), ("run_step", "notify", "skipped"),
        ("run_step", "weekly", "skipped"), ("run_finished", None, "nothing_new")]
    assert events[0]["files_seen_before"] == 6 and events[1]["message"] == "nothing new"

    # 4. a bad file: its bad row quarantined, the rest loaded and built; exit 3
    (inbox / "payments_2.jsonl").write_text(
        json.dumps({"payment_id": "P90", "loan_id": "L01", "paid_at": "2024-07-06T10:00:00Z", "amount": 5}) + "\n"
        + '{"payment_id": "P91", "loan_id": "L01", "paid_at": "not a date", "amount": 5}\n')
    fourth = cli("run", "--inbox", inbox, "--no-notify", home=home, env=env)
    assert fourth.exit_code == 3, fourth.stdout + fourth.stderr
    assert "quarantined" in fourth.stdout

    # 5. a build that fails its checks: exit 4, and nothing is sent
    (inbox / "loans_bad.jsonl").write_text(json.dumps(OVER_SCHEDULED) + "\n")
    (inbox / "payments_bad.jsonl").write_text(json.dumps(PAYMENT) + "\n")
    before = len(smtp.messages)
    slack = {**env, "LOANWATCH_SLACK__WEBHOOK_URL": gateway.url}  # a local stand-in for Slack's webhook
    fifth = cli("run", "--inbox", inbox, home=home, env=slack)
    assert fifth.exit_code == 4, fifth.stdout + fifth.stderr
    assert "build failed" in fifth.stderr
    assert len(smtp.messages) == before and _sent(home) == sent
    # Slack hears of it twice: the build's pipeline report, then the run's failure
    posts = [r["body"]["text"] for r in gateway.received]
    assert len(posts) == 2 and posts[0].startswith("loanwatch build 3: failed")
    assert posts[1].startswith("loanwatch run 5: failed (exit 4): build failed, nothing sent")

    history = _runs(home)
    assert [r["run_id"] for r in history] == [5, 4, 3, 2, 1]
    assert [r["status"] for r in history] == ["failed", "quarantined", "nothing_new", "success", "nothing_new"]
    assert [r["exit_code"] for r in history] == [4, 3, 0, 0, 0]
    assert [(r["ingest"], r["build"], r["notify"], r["weekly"]) for r in history] == [
        ("ok", "failed", "skipped", "skipped"),
        ("quarantined", "ok", "skipped", "skipped"),
        ("ok", "skipped", "skipped", "skipped"),
        ("ok", "ok", "ok", "ok"),
        ("ok", "skipped", "skipped", "skipped"),
    ]
    steps = {run_id: {s["step"]: s for s in _runs(home, run_id)} for run_id in (2, 4, 5)}
    assert steps[2]["ingest"]["counts"] == "files new 6, rows accepted 40"
    assert steps[2]["notify"]["counts"].startswith("plan date 2024-06-28") and f"sent {sent}" in steps[2]["notify"]["counts"]
    assert steps[2]["weekly"]["counts"] == "to risk@example.com"
    assert "rows rejected 1" in steps[4]["ingest"]["counts"] and steps[4]["notify"]["message"] == "--no-notify"
    assert "check_principal_outstanding_within_amount" in steps[5]["build"]["message"]
    assert steps[5]["notify"]["message"] == steps[5]["weekly"]["message"] == "the build failed"
    # the last good data stays published: reports still answer
    assert cli("report", "summary", home=home).exit_code == 0


def test_run_without_an_inbox_says_what_to_set(tmp_path):
    result = cli("run", home=tmp_path)
    assert result.exit_code == 2
    assert "[run] inbox" in result.stderr
    result = cli("run", "--inbox", tmp_path / "nowhere", home=tmp_path)
    assert result.exit_code == 2 and "no such folder" in result.stderr


def test_schedule_starts_a_run_keeps_going_and_stops_on_sigterm(tmp_path):
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    log = tmp_path / "schedule.log"
    cmd = [sys.executable, "-c", "from loanwatch.cli import run; run()", "--home", str(home),
           "schedule", "--cron", "* * * * * */2", "--inbox", str(inbox)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 60
            while "run finished" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "run finished with exit code 0" in log.read_text(), log.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert_no_traceback(text, what="loanwatch schedule")
    assert text.rstrip().endswith("schedule: stopped")
    history = _runs(home)
    assert history and all(r["trigger"] == "schedule" and r["status"] == "nothing_new" for r in history)


def test_log_format_json_gives_one_object_per_ingest_event(tmp_path):
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    for name in ("clients", "loans", "payments"):
        shutil.copy(GOLDEN / f"{name}.jsonl", inbox)
    (inbox / "payments_bad.jsonl").write_text('{"payment_id": "P91", "loan_id": "L01", "paid_at": "not a date", "amount": 5}\n')
    result = cli("--log-format", "json", "ingest", inbox, home=home)
    assert result.exit_code == 3
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is one JSON object
    loaded = {e["file"].rsplit("/", 1)[-1]: e for e in events if e["event"] == "file_loaded"}
    assert loaded["loans.jsonl"]["accepted"] == 13 and loaded["loans.jsonl"]["level"] == "info"
    assert loaded["payments_bad.jsonl"]["rejected"] == 1
    quarantined = [e for e in events if e["event"] == "row_quarantined"]
    assert len(quarantined) == 1 and quarantined[0]["level"] == "warning" and "paid_at" in quarantined[0]["reason"]
    assert all(e["ts"].endswith("+00:00") for e in events)


    result = cli("--log-format", "json", "ingest", tmp_path / "nowhere", home=home)
    assert result.exit_code == 2 and result.stdout == ""
    assert json.loads(result.stderr)["level"] == "error" and "no such file" in json.loads(result.stderr)["message"]


def test_the_demo_loads_every_part_and_its_figures_end_today(tmp_path):
    """`loanwatch demo` (what `make demo` runs): each part loads rows and builds, the data date is
    today (generate ends at today), and the summary line has figures."""
    import re

    result = run_cli("--home", tmp_path / "home", "demo", "--clients", "300", "--parts", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = [int(n.replace(",", "")) for n in re.findall(r"part \d/2: ([\d,]+) rows loaded", result.stdout)]
    assert len(loaded) == 2 and all(n > 0 for n in loaded), result.stdout
    assert "build 2: success" in result.stdout
    # the servicing events it generated are named (contract v3)
    counts = re.search(r"servicing events: ([\d,]+) charges .*, ([\d,]+) waivers, ([\d,]+) restructured loans",
                       result.stdout.replace("\n", " "))
    assert counts and int(counts[1].replace(",", "")) > 0, result.stdout
    today = dt.datetime.now(dt.UTC).date()
    assert f"as of {today}: loans " in result.stdout or f"as of {today - dt.timedelta(days=1)}: loans " in result.stdout
