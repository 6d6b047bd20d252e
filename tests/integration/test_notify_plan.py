"""The contact plan: every rule, suppression and cap, on the golden fixture plus a few calls.

Extra data (tests/golden/notify_extra): a dispute call by C1 on 03-01; seven unanswered calls on
L08 (C4) from 04-05 to 04-11; a conversation on L04 (C4) on 05-28; C2 gets a phone from 02-01;
C4 takes L11 (300, issued 03-11, one instalment due 04-11, never paid). Hold-out share 0 unless
a test says otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

import pytest

from loanwatch.config import load_settings
from loanwatch.notify import outbox
from loanwatch.notify.plan import contact_plan
from loanwatch.serve import open_snapshot
from tests.conftest import GOLDEN

EXTRA = GOLDEN.parent / "notify_extra"
pytestmark = pytest.mark.integration


@pytest.fixture()
def home(notify_home):
    return notify_home


def plan(home, day, holdout="0", show_all=True, capacity=None, outbox_con=None, **env):
    settings = load_settings(home, environ={"LOANWATCH_NOTIFY__HOLDOUT_SHARE": holdout, **env})
    con = open_snapshot(settings)
    try:
        t = contact_plan(con, settings, dt.date.fromisoformat(day), capacity, show_all, outbox_con)
    finally:
        con.close()
    return [{k: (str(v) if v is not None and k in ("open_amount", "expected_recovery") else v)
             for k, v in r.items()} for r in t.as_dicts()]


def row(rows, client, channel):
    found = [r for r in rows if r["client_id"] == client and r["channel"] == channel]
    assert len(found) == 1, (client, channel, rows)
    return found[0]


def test_one_message_per_client_for_the_highest_rule_and_call_caps(home):
    rows = plan(home, "2024-04-11")
    # C4: L04 one day late (overdue_1) and L11 due today (due_day): one message, the higher rule
    m = row(rows, "C4", "sms")
    assert (m["rule"], m["status"], m["loans"], m["open_amount"]) == ("overdue_1", "planned", "L04 L11", "800.00")
    assert m["recipient"] == "+79990001122" and m["timezone"] == "Europe/Moscow"
    # C4's only call candidate, L08 (37 days), had 7 attempts in 04-05..04-11
    c = row(rows, "C4", "call")
    assert c["status"] == "suppressed"
    assert c["reason"] == "L08: 7 call attempts in the last 7 days (cap 7)"


def test_pre_due_reminder_suppressed_by_an_open_dispute(home):
    rows = plan(home, "2024-03-28")
    m = row(rows, "C1", "email")  # L01's second instalment, 340.02, due 03-31
    assert (m["rule"], m["status"]) == ("pre_due", "suppressed")
    assert m["reason"] == "open dispute: a call with outcome dispute in the last 60 days"
    # without --all only what will happen is listed: C4's call for L08 (23 days); C3 has no phone
    planned = plan(home, "2024-03-28", show_all=False)
    assert [(r["client_id"], r["channel"]) for r in planned] == [("C4", "call")]
    assert row(rows, "C3", "call")["reason"] == "no phone"


def test_calls_ranked_by_expected_recovery_within_capacity(home):
    # At 04-30: C2's L06 is 15 days late (bucket 1-30, past due 2080 - 1000 = 1080); C4's L08 is
    # 56 days late (31-60, 400), L04 20 (1-30, 500), L11 19 (1-30, 300). p(cure) per bucket from
    # the calls before: 1-30 has none, so (0 + 1) / (0 + 2) = 0.5; 31-60 has the 7 calls on L08,
    # none cured 7 days later, so 1 / 9. C2: 0.5 x 1080 = 540.00; C4: 400 / 9 + 0.5 x 800 = 444.44.
    rows = plan(home, "2024-04-30", capacity=1)
    first, second = row(rows, "C2", "call"), row(rows, "C4", "call")
    assert (first["status"], first["expected_recovery"]) == ("planned", "540.00")
    assert first["reason"].startswith("rank 1: expected recovery 540.00 = L06 1-30 p(cure) 0.5 from 0 calls x past due 1080.00")
    assert (second["status"], second["expected_recovery"]) == ("suppressed", "444.44")
    assert second["reason"] == "beyond the call capacity of 1 (rank 2 of 2)"
    assert row(plan(home, "2024-04-30", capacity=2), "C4", "call")["status"] == "planned"


def test_no_calls_within_7_days_after_a_conversation(home):
    rows = plan(home, "2024-05-31")
    c = row(rows, "C4", "call")  # L04 spoke on 05-28; L11 (50 days) may still be called
    assert (c["status"], c["loans"], c["open_amount"]) == ("planned", "L11", "300.00")
    assert c["reason"].endswith("; not called: L04: a conversation on 2024-05-28, no calls within 7 days after one")
    m = row(rows, "C3", "email")  # L03 is 30 days late
    assert (m["rule"], m["status"], m["reason"]) == ("overdue_30", "planned", "30 days past due, 300.00 past due")


def test_do_not_contact(home):
    rows = plan(home, "2024-07-17")
    m = [r for r in rows if r["client_id"] == "C5"][0]  # L10's first 200.00 falls due 07-20
    assert (m["rule"], m["status"], m["reason"], m["open_amount"]) == ("pre_due", "suppressed", "do_not_contact", "200.00")


def test_weekly_message_cap_counts_what_was_sent(home, tmp_path):
    settings = load_settings(home, environ={})
    con = outbox.connect(settings)
    try:
        for day in ["2024-05-26", "2024-05-27", "2024-05-28"]:
            con.execute("INSERT INTO messages (message_id, client_id, channel, rule, plan_date, status) VALUES (?, 'C3', 'email', 'x', ?, 'sent')",
                        [f"C3:x:{day}", day])
        rows = plan(home, "2024-05-31", outbox_con=con)
        assert row(rows, "C3", "email")["reason"] == "weekly cap: 3 messages sent in the last 7 days"
        rows = plan(home, "2024-05-31", outbox_con=con, LOANWATCH_NOTIFY__MAX_MESSAGES_PER_WEEK="4")
        assert row(rows, "C3", "email")["status"] == "planned"
    finally:
        con.execute("DELETE FROM messages")
        con.close()


def test_the_hold_out_is_never_contacted(home):
    rows = plan(home, "2024-04-30", holdout="1.0", capacity=5)
    assert rows and all(r["status"] == "suppressed" and r["reason"].startswith("hold-out group") for r in rows)
    # a half share: exactly the clients whose hash falls in the hold-out are suppressed for it
    rows = plan(home, "2024-04-30", holdout="0.5", capacity=5)
    for r in rows:
        bucket = int(hashlib.md5((r["client_id"] + "loanwatch").encode()).hexdigest()[:8], 16) % 10000
        assert (bucket < 5000) == r["reason"].startswith("hold-out group"), r
        if bucket < 5000:
            assert r["status"] == "suppressed"


def test_nothing_for_what_is_paid_or_not_yet_due(home):
    # 03-17: L05's second 250 falls due 03-20 but was prepaid on 03-01: no reminder for C1.
    # L01's second instalment (03-31) is not yet within the pre-due window; L04 (due 04-10) not due.
    rows = plan(home, "2024-03-17")
    assert [r for r in rows if r["client_id"] == "C1"] == []
    assert [r for r in rows if r["client_id"] == "C4" and r["channel"] != "call"] == []
    # 02-29: L01's first instalment is due and was paid that day: no due-day message either
    assert [r for r in plan(home, "2024-02-29") if r["client_id"] == "C1"] == []


def test_the_plan_is_readable_at_100_columns(golden):
    """`notify plan` for a person: the key columns first, text wrapped, nothing cut to zero width;
    --format csv keeps every column for programs."""
    from tests.conftest import cli

    rows = list(csv.DictReader(io.StringIO(cli("notify", "plan", "--all", "-f", "csv", home=golden.home).stdout)))
    assert rows, "the golden plan has contacts"
    for width in (100, 160):
        text = cli("notify", "plan", "--all", home=golden.home, env={"COLUMNS": str(width)}).stdout
        assert all(len(line) <= width for line in text.splitlines()), width
        header = " ".join(line for line in text.splitlines()[:4])
        for title in ("Client", "Name", "Channel", "Rule", "Status", "Open amount"):
            assert all(word in header for word in title.split()), (width, title)  # a title may wrap
        for row in rows:
            assert row["client_id"] in text and row["rule"] in text


def test_a_loan_with_two_rules_is_one_loan_and_one_day_is_singular(tmp_path):
    """L1 (200.00, two instalments of 100.00 due 03-01 and 03-31, nothing paid): on 03-31 its
    first instalment is 30 days past due (overdue_30) and its second is due today (due_day). The
    client's one message takes the higher rule and names L1 once, not "L1 L1 (2 loans)"; its open
    amount is both instalments, 200.00. On 03-02 L1 is 1 day past due: "1 day", not "1 days".
    L2 (C2) is paid on 03-31, which makes 03-31 the data date."""
    import json

    from tests.conftest import build_home

    raw = tmp_path / "raw"
    raw.mkdir()
    clients = [{"client_id": c, "name": c, "email": f"{c.lower()}@example.com", "updated_at": "2024-01-01T00:00:00Z"}
               for c in ("C1", "C2")]
    loans = [{"loan_id": "L1", "client_id": "C1", "amount": 200, "issue_date": "2024-01-15", "updated_at": "2024-01-15T00:00:00Z",
              "schedule": [{"due_date": "2024-03-01", "principal": 100}, {"due_date": "2024-03-31", "principal": 100}]},
             {"loan_id": "L2", "client_id": "C2", "amount": 50, "issue_date": "2024-01-15", "updated_at": "2024-01-15T00:00:00Z",
              "schedule": [{"due_date": "2024-03-31", "principal": 50}]}]
    payments = [{"payment_id": "P2", "loan_id": "L2", "paid_at": "2024-03-31T09:00:00Z", "amount": 50}]
    for name, rows in (("clients", clients), ("loans", loans), ("payments", payments)):
        (raw / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = build_home(tmp_path / "home", raw)
    rows = plan(settings.home, "2024-03-31")
    m = row(rows, "C1", "email")
    assert (m["rule"], m["loans"], m["open_amount"]) == ("overdue_30", "L1", "200.00")
    assert m["reason"] == "30 days past due, 200.00 past due"
    one = row(plan(settings.home, "2024-03-02"), "C1", "email")
    assert (one["rule"], one["reason"]) == ("overdue_1", "1 day past due, 100.00 past due")
