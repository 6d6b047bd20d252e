"""One DPD convention, one name (METRICS §3 option `dpd_counts_due_day`): with it on, every output
that shows a DPD or a bucket agrees (issue: one definition per figure). The convention is applied
once, in marts.fct_loan_states.dpd_counted_from_date; reports, lookup, the contact plan and the
weekly summary only subtract."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from loanwatch import reports
from loanwatch.config import load_settings
from loanwatch.notify.plan import contact_plan
from loanwatch.serve import open_snapshot
from tests.conftest import GOLDEN, build_home, cli

pytestmark = pytest.mark.integration

# 2024-05-31 is a month end (precomputed snapshot rows); 2024-05-15 and 2024-04-11 are not
# (looked up in the state timeline).
DATES = ["2024-04-11", "2024-05-15", "2024-05-31"]
BUCKETS = [("current", 0, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("91-180", 91, 180), ("181+", 181, 10**9)]


def bucket_of(dpd: int) -> str:
    return next(name for name, low, high in BUCKETS if low <= dpd <= high)


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("dpd_on"), GOLDEN, settings_env={"LOANWATCH_WAREHOUSE__DPD_COUNTS_DUE_DAY": "true"})


def _loans(home, day):
    return {r["loan_id"]: r for r in json.loads(cli("report", "loans", "--as-of", day, "-f", "json", home=home).stdout)}


@pytest.mark.parametrize("day", DATES)
def test_report_loans_and_buckets_count_the_due_day(golden, counted, day):
    off, on = _loans(golden.home, day), _loans(counted.home, day)
    assert off.keys() == on.keys()
    overdue = [k for k, r in off.items() if r["state"] == "overdue"]
    assert overdue, "the fixture has overdue loans at each date"
    for loan_id, r in on.items():
        # one day more for every overdue loan, nothing else changes
        assert r["dpd"] == off[loan_id]["dpd"] + (1 if loan_id in overdue else 0), loan_id
        assert (r["state"], r["principal_outstanding"], r["past_due_amount"]) == (
            off[loan_id]["state"], off[loan_id]["principal_outstanding"], off[loan_id]["past_due_amount"])
        if r["state"] in ("current", "overdue"):
            assert r["bucket"] == bucket_of(r["dpd"]), loan_id
    # the bucket table counts the same loans the loan table puts in each bucket
    table = json.loads(cli("report", "buckets", "--as-of", day, "-f", "json", home=counted.home).stdout)
    by_bucket = {row["bucket"]: row["loans"] for row in table if row["bucket"] in dict((b, 0) for b, _, _ in BUCKETS)}
    expected = {b: sum(1 for r in on.values() if r["bucket"] == b) for b, _, _ in BUCKETS}
    assert {b: by_bucket.get(b, 0) for b in expected} == expected


def test_lookup_history_and_risk_read_the_same_dpd(counted):
    on = _loans(counted.home, "2024-05-31")
    con = open_snapshot(counted)
    try:
        for loan_id, r in on.items():
            history = reports.loan_detail(con, loan_id)["dpd history"].as_dicts()
            at = [h for h in history if str(h["snapshot_date"]) == "2024-05-31"]
            if at:
                assert (at[0]["dpd"], at[0]["bucket"]) == (r["dpd"], r["bucket"]), loan_id
    finally:
        con.close()


@pytest.mark.parametrize("day", DATES)
def test_the_contact_plan_uses_the_same_dpd(counted, day):
    on = _loans(counted.home, day)
    settings = load_settings(counted.home, environ={"LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0",
                                                    "LOANWATCH_NOTIFY__OVERDUE_DAYS": ",".join(str(n) for n in range(1, 200))})
    con = open_snapshot(counted)
    try:
        rows = contact_plan(con, settings, dt.date.fromisoformat(day), show_all=True).as_dicts()
    finally:
        con.close()
    rules = [r for r in rows if r["rule"].startswith("overdue_")]
    assert rules, "with every day a reminder day, each overdue client gets one"
    for r in rules:
        n = int(r["rule"].split("_")[1])
        # the rule's day count is the DPD of one of the client's loans in report loans
        assert n in {on[k]["dpd"] for k in r["loans"].split()}, r


def test_the_weekly_new_defaults_pass_90_days_one_day_earlier(golden, counted):
    """L04 is overdue since 2024-04-10 (its instalment of that day is never paid). DPD passes 90
    (reaches 91) on 04-10 + 91 = 07-10 by default, and a day earlier, 07-09, when the due day
    counts: the week to 07-09 has one new default more with the option on, and the week to 07-10
    (both days inside it) the same count. The dates are projections (data date 2024-06-30)."""
    def new_defaults(settings, day):
        con = open_snapshot(settings)
        try:
            rows = {r[0]: r[1] for r in reports.weekly(con, dt.date.fromisoformat(day)).rows}
        finally:
            con.close()
        return rows["new_defaults"]

    assert new_defaults(counted, "2024-07-09") == new_defaults(golden, "2024-07-09") + 1
    assert new_defaults(counted, "2024-07-10") == new_defaults(golden, "2024-07-10")


MONTH_ENDS = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]


def _json(home, *args):
    return json.loads(cli("report", *args, "-f", "json", home=home).stdout)


def test_vintages_risk_and_roll_rates_agree_with_report_loans(golden, counted):
    """The marts behind vintages, risk (ever-60+) and roll rates (fct_loan_milestones,
    fct_loan_transitions) agree with `report loans` at every month end, with the option on. And the
    option matters here: L03 is 30 days past due on 03-31 by default and 31 with it, so it reaches
    30+ two months earlier and rolls from current into 31-60 in March."""
    at = {day: _loans(counted.home, day) for day in MONTH_ENDS}
    active = ("current", "overdue")
    # roll rates: each loan active at the previous month end, from its bucket then to where it is now
    got = {(r["month"], r["from_bucket"], r["to_bucket"]): r["loans"] for r in _json(counted.home, "roll-rates")
           if r["from_bucket"] != "overdue"}
    expected: dict[tuple[str, str, str], int] = {}
    for before, now in zip(MONTH_ENDS, MONTH_ENDS[1:]):
        for loan_id, r in at[before].items():
            if r["state"] in active:
                after = at[now][loan_id]
                key = (now[:7], r["bucket"], after["bucket"] if after["state"] in active else after["state"])
                expected[key] = expected.get(key, 0) + 1
    assert got == expected
    assert got[("2024-03", "current", "31-60")] == 1  # L03 (current on 02-29), with the option
    # vintages: the loans of a cohort past 30 / 60 / 90 days at any month end within k months
    issued = {r["loan_id"]: r for r in _json(counted.home, "loans", "--as-of", MONTH_ENDS[-1])}
    cohorts: dict[str, list[str]] = {}
    for loan_id in issued:
        month = next((day[:7] for day in MONTH_ENDS if at[day][loan_id]["state"] not in ("not_issued", "cancelled")), None)
        if month is not None and issued[loan_id]["state"] != "cancelled":
            cohorts.setdefault(month, []).append(loan_id)
    for row in _json(counted.home, "vintages"):
        ends = [d for d in MONTH_ENDS if row["cohort"] <= d[:7]][: row["months_on_book"] + 1]
        loans = cohorts[row["cohort"]]
        for x in (30, 60, 90):
            reached = sum(float(issued[k]["amount"]) for k in loans
                          if any(at[d][k]["state"] in active and at[d][k]["dpd"] > x for d in ends))
            total = sum(float(issued[k]["amount"]) for k in loans)
            assert abs(row[f"ever{x}_share"] - reached / total) < 1e-6, (row, x)
    # risk: ever-60+ loans, over the risk-score bands, are the loans past 60 days at a month end
    ever60 = {k for d in MONTH_ENDS for k, r in at[d].items() if r["state"] in active and r["dpd"] > 60}
    bands = [r for r in _json(counted.home, "risk") if r["score"] == "risk_score"]
    assert round(sum(r["ever60_share"] * r["loans"] for r in bands)) == len(ever60) > 0
    # and the option is what moved L03: by default it is 30+ only from May
    off_vintage = {(r["cohort"], r["months_on_book"]): r["ever30_share"] for r in _json(golden.home, "vintages")}
    on_vintage = {(r["cohort"], r["months_on_book"]): r["ever30_share"] for r in _json(counted.home, "vintages")}
    assert off_vintage != on_vintage
