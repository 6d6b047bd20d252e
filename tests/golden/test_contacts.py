"""The contact figures (METRICS §6) and the call fact's loan-side columns, by hand.

Six bullet loans of 100, no interest, issued 2024-05-01 for 1 month: each is due 2024-06-01, so an
unpaid one is overdue from 06-02 with DPD(D) = D - 06-01 (DPD 9 on 06-10, 58 on 07-29).
The hold-out group is drawn with share 0.5 and salt "golden7": of C1..C6 it holds C5 and C6
(md5 of the id and the salt; test_the_holdout_draw_is_the_plans checks the plan draws the same).

  L1 C1  paid 100 on 06-12            -> closed from 06-12
  L2 C2  paid 50 on 06-13, 50 on 07-30 -> overdue until 07-30 (50 past due from 06-13)
  L3 C3  never paid                    -> overdue from 06-02 on
  L4 C4  paid 100 on 05-25             -> closed before its due date
  L5 C5  (hold-out) paid 100 on 06-15  -> overdue 06-02..06-14, closed from 06-15
  L6 C6  (hold-out) never paid         -> overdue from 06-02 on
The data date is 07-30 (L2's last payment).

Agents: A1 has two versions, team north level 1 from 2024-01-01 and team south level 2 from
06-15; A2 has one record, updated 2024-12-01 (an export after every call): its calls take it.

Calls (all 10:00 UTC):
  K1 06-10 L1 A1 early     promise_to_pay 100 by 06-11 -> paid 100 on 06-12 <= 06-14: kept;
                                                         L1 at 06-17 closed: cured
  K2 06-10 L2 A1 early     promise_to_pay 100 by 06-12 -> 50 paid by 06-15 < 100: not kept;
                                                         L2 at 06-17 overdue: not cured
  K3 06-10 L3 A2 early     no_answer, talk 0           -> L3 at 06-17 overdue: not cured
  K4 06-10 L3 A2 early     refused, talk 40            -> the same loan and day as K3
  K5 05-20 L4 A2 reminder  callback, talk 60           -> L4 current at the call (DPD 0): no cure figure
  K6 06-20 -- A1 service   promise_to_pay, no amount or date: a call about no loan; C1's highest DPD
                           on 06-20 is 0 (L1 closed); nothing paid by 06-23: not kept
  K7 07-29 L3 A1 late      promise_to_pay 100 by 07-31 -> the deadline 08-03 is after the data date
                           and nothing is paid: pending; 07-29 + 7 is after the data date: no cure figure

Hold-out baseline (marts.fct_holdout_cures): calls on overdue loans with a cure figure fall on
06-10 only; the hold-out loans overdue on 06-10 are L5 and L6, both DPD 9 (bucket 1-30), and 7 days
later (06-17) L5 is closed, L6 overdue: 2 overdue, 1 cured.

report contacts --by campaign (calls about loans only, so not K6):
  early:    calls K1-K4 = 4; right party K1, K2, K4 = 3 -> 0.750000; promises 2 -> 2/3 = 0.666667;
            kept 1, pending 0 -> 1/2 = 0.500000; overdue loan-days (L1, L2, L3 on 06-10) = 3, cured 1 ->
            0.333333; hold-out 2 loans, rate 1/2 = 0.500000 on each loan-day; uplift 1/3 - 1/2 = -0.166667
  late:     K7: 1 call, 1 right party (1.000000), 1 promise (1.000000), 0 kept, 1 pending, kept rate
            null (none decided); no loan-day with a cure figure: 0, 0, null; no hold-out: 0, null, null
  reminder: K5: 1 call, 1 right party, 0 promises (0.000000), kept rate null; no cure figure
--by agent:
  A1: K1, K2, K7: 3 calls, 3 right party (1.000000), 3 promises (1.000000), kept 1, pending 1 -> 1/2;
      loan-days (L1, 06-10) cured and (L2, 06-10) not: 2, 1 -> 0.500000; hold-out 2, 0.500000; uplift 0
  A2: K3, K4, K5: 3 calls, 2 right party (0.666667), 0 promises (0.000000), kept rate null;
      loan-day (L3, 06-10): 1, 0 -> 0.000000; hold-out 2, 0.500000; uplift -0.500000
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest

from loanwatch.notify.plan import contact_plan
from loanwatch.reports.calls import ContactFilter, contacts_report
from loanwatch.serve import open_snapshot
from tests.conftest import build_home, cli

D = Decimal
SETTINGS = {"LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0.5", "LOANWATCH_NOTIFY__HOLDOUT_SALT": "golden7"}
LOANS = [{"loan_id": f"L{i}", "client_id": f"C{i}", "amount": 100, "issue_date": "2024-05-01", "term_months": 1,
          "repayment": "bullet", "updated_at": "2024-05-01T09:00:00Z"} for i in range(1, 7)]
CLIENTS = [{"client_id": f"C{i}", "name": f"Client {i}", "updated_at": "2024-04-01T00:00:00Z"} for i in range(1, 7)]
PAYMENTS = [
    {"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-06-12T12:00:00Z", "amount": 100},
    {"payment_id": "P2", "loan_id": "L2", "paid_at": "2024-06-13T12:00:00Z", "amount": 50},
    {"payment_id": "P3", "loan_id": "L2", "paid_at": "2024-07-30T12:00:00Z", "amount": 50},
    {"payment_id": "P4", "loan_id": "L4", "paid_at": "2024-05-25T12:00:00Z", "amount": 100},
    {"payment_id": "P5", "loan_id": "L5", "paid_at": "2024-06-15T12:00:00Z", "amount": 100},
]
AGENTS = [
    {"agent_id": "A1", "name": "Ana", "team": "north", "level": 1, "updated_at": "2024-01-01T00:00:00Z"},
    {"agent_id": "A1", "name": "Ana", "team": "south", "level": 2, "updated_at": "2024-06-15T00:00:00Z"},
    {"agent_id": "A2", "name": "Bea", "team": "north", "level": 0, "updated_at": "2024-12-01T00:00:00Z"},
]


def _call(call_id, day, loan, agent, campaign, outcome, **extra):
    return {"call_id": call_id, "client_id": "C" + (loan or "L1")[1:], "loan_id": loan, "agent_id": agent,
            "campaign": campaign, "called_at": f"2024-{day}T10:00:00Z", "outcome": outcome, **extra}


CALLS = [
    _call("K1", "06-10", "L1", "A1", "early", "promise_to_pay", promised_amount=100, promised_date="2024-06-11"),
    _call("K2", "06-10", "L2", "A1", "early", "promise_to_pay", promised_amount=100, promised_date="2024-06-12"),
    _call("K3", "06-10", "L3", "A2", "early", "no_answer", talk_seconds=0),
    _call("K4", "06-10", "L3", "A2", "early", "refused", talk_seconds=40),
    _call("K5", "05-20", "L4", "A2", "reminder", "callback", talk_seconds=60),
    _call("K6", "06-20", None, "A1", "service", "promise_to_pay"),
    _call("K7", "07-29", "L3", "A1", "late", "promise_to_pay", promised_amount=100, promised_date="2024-07-31"),
]


def _jsonl(path, records):
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in records))


@pytest.fixture(scope="module")
def contacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("contacts")
    raw = root / "raw"
    raw.mkdir()
    for name, records in [("loans", LOANS), ("clients", CLIENTS), ("payments", PAYMENTS), ("agents", AGENTS),
                          ("calls", CALLS)]:
        _jsonl(raw / f"{name}.jsonl", records)
    settings = build_home(root / "home", raw, settings_env=SETTINGS)
    con = open_snapshot(settings)
    yield settings, con
    con.close()


@pytest.mark.integration
def test_the_call_fact_by_hand(contacts):
    _, con = contacts
    rows = con.sql("""SELECT call_id, agent_team, agent_level, loan_state_at_call, dpd_at_call, is_right_party,
                             is_promise_kept, is_cured_7d, is_holdout
                      FROM marts.fct_calls ORDER BY call_id""").fetchall()
    assert rows == [
        ("K1", "north", 1, "overdue", 9, True, True, True, False),
        ("K2", "north", 1, "overdue", 9, True, False, False, False),
        ("K3", "north", 0, "overdue", 9, False, None, False, False),
        ("K4", "north", 0, "overdue", 9, True, None, False, False),
        ("K5", "north", 0, "current", 0, True, None, None, False),
        ("K6", "south", 2, None, 0, True, False, None, False),
        ("K7", "south", 2, "overdue", 58, True, None, None, False),
    ]
    assert con.sql("SELECT contact_date, dpd_bucket, holdout_overdue, holdout_cured FROM marts.fct_holdout_cures").fetchall() == [
        (dt.date(2024, 6, 10), "1-30", 2, 1)]


@pytest.mark.integration
def test_contacts_by_campaign_and_agent_by_hand(contacts):
    _, con = contacts
    rows = [tuple(r) for r in contacts_report(con, ContactFilter()).rows]
    assert rows == [
        ("early", 4, 3, D("0.750000"), 2, D("0.666667"), 1, 0, D("0.500000"), 3, 1, D("0.333333"), 2, D("0.500000"), D("-0.166667")),
        ("late", 1, 1, D("1.000000"), 1, D("1.000000"), 0, 1, None, 0, 0, None, 0, None, None),
        ("reminder", 1, 1, D("1.000000"), 0, D("0.000000"), 0, 0, None, 0, 0, None, 0, None, None),
    ]
    rows = [tuple(r) for r in contacts_report(con, ContactFilter(by="agent")).rows]
    assert rows == [
        ("A1", 3, 3, D("1.000000"), 3, D("1.000000"), 1, 1, D("0.500000"), 2, 1, D("0.500000"), 2, D("0.500000"), D("0.000000")),
        ("A2", 3, 2, D("0.666667"), 0, D("0.000000"), 0, 0, None, 1, 0, D("0.000000"), 2, D("0.500000"), D("-0.500000")),
    ]
    # --from/--to select calls by date: only 06-10's
    rows = [tuple(r) for r in contacts_report(con, ContactFilter(date_from=dt.date(2024, 6, 10), date_to=dt.date(2024, 6, 10))).rows]
    assert [r[:2] for r in rows] == [("early", 4)]


@pytest.mark.integration
def test_the_holdout_draw_is_the_plans(contacts):
    """The contact plan draws C5 and C6, as md5(client_id || salt) says; the dbt macro's draw is what
    fct_holdout_cures counted above (L5 and L6 of the four loans overdue on 06-10)."""
    settings, con = contacts
    expected = {f"C{i}" for i in range(1, 7) if int(hashlib.md5(f"C{i}golden7".encode()).hexdigest()[:8], 16) % 10000 < 5000}
    assert expected == {"C5", "C6"}
    plan = contact_plan(con, settings, plan_date=dt.date(2024, 6, 8), show_all=True)
    held = {r["client_id"] for r in plan.as_dicts() if r["reason"].startswith("hold-out")}
    assert held == {"C5", "C6"}


@pytest.mark.integration
def test_the_published_holdout_and_conversation_flags(contacts):
    """core.clients.is_holdout holds C5 and C6 (the build's draw; the plan draws the same with the
    settings of the moment, test_the_holdout_draw_is_the_plans); fct_calls.is_conversation is any
    talk or a right-party outcome: K3 (no_answer, talk 0) alone is not one."""
    _, con = contacts
    assert con.sql("SELECT client_id FROM core.clients WHERE is_holdout ORDER BY 1").fetchall() == [("C5",), ("C6",)]
    assert con.sql("SELECT call_id FROM marts.fct_calls WHERE NOT is_conversation").fetchall() == [("K3",)]


@pytest.mark.integration
def test_the_cure_window_and_promise_grace_are_settings(tmp_path):
    """[callcentre] cure_window_days = 3 and promise_grace_days = 0, by hand on the same calls:
    cured means current or closed on 06-13 (06-10 + 3): L1 closed on 06-12, cured; L2 (50 of 100 paid
    on 06-13) and L3 overdue; K7's 07-29 + 3 is after the data date 07-30: no figure. A promise is kept
    when paid by the end of the promised day itself: K1's 100 came on 06-12, a day after 06-11, so not
    kept; K6 (no date: its own day 06-20, nothing paid) not kept; K7's deadline (07-31) is after the
    data date: pending. The hold-out on 06-13: L5 (paid 06-15) and L6 both still overdue: 2, 0 cured."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, records in [("loans", LOANS), ("clients", CLIENTS), ("payments", PAYMENTS), ("agents", AGENTS),
                          ("calls", CALLS)]:
        _jsonl(raw / f"{name}.jsonl", records)
    settings = build_home(tmp_path / "home", raw, settings_env={
        **SETTINGS, "LOANWATCH_CALLCENTRE__CURE_WINDOW_DAYS": "3", "LOANWATCH_CALLCENTRE__PROMISE_GRACE_DAYS": "0"})
    with open_snapshot(settings) as con:
        rows = con.sql("SELECT call_id, is_promise_kept, is_cured_7d FROM marts.fct_calls ORDER BY call_id").fetchall()
        assert rows == [("K1", False, True), ("K2", False, False), ("K3", None, False), ("K4", None, False),
                        ("K5", None, None), ("K6", False, None), ("K7", None, None)]
        assert con.sql("SELECT contact_date, dpd_bucket, holdout_overdue, holdout_cured FROM marts.fct_holdout_cures").fetchall() == [
            (dt.date(2024, 6, 10), "1-30", 2, 0)]


@pytest.mark.integration
def test_report_contacts_cli(contacts):
    settings, _ = contacts
    result = cli("report", "contacts", "--by", "agent", "--format", "csv", home=settings.home)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("group,calls,right_party_contacts,right_party_rate,promises,promise_rate,promises_kept,"
                        "promises_pending,promise_kept_rate,overdue_contacted,cured_7d,cure_rate,holdout_overdue,"
                        "holdout_cure_rate,uplift")
    assert lines[2] == "A2,3,2,0.666667,0,0.000000,0,0,,1,0,0.000000,2,0.500000,-0.500000"
    bad = cli("report", "contacts", "--by", "channel", home=settings.home)
    assert bad.exit_code == 2 and "--by 'channel': use one of campaign, agent" in bad.stderr
