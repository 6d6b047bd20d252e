"""Restructuring and correction (contract v3, METRICS v3 §2: the terms in force at D are those of
the latest restructuring on or before D), by hand. Five loans of client C1
(tests/golden/restructuring/).

  R1 cash 300, instalment records 100 due 02-01, 03-01, 04-01; 100 paid 02-01. Instalment 2 is
     missed: DPD 14 at 03-15, 18 at 03-19. Records with effective_from 2024-03-20 reschedule what is
     outstanding (200) as 100 due 04-20 and 100 due 05-20: a *remaining* schedule (its principals
     add up to the principal outstanding the day before): from 03-20 the loan is current with
     200.00; 100 paid 04-20 leaves 100.00; at 05-31 DPD 11, past due 100.00.
  R2 installment 400 over 4 (100 due the 10th, 02-10 .. 05-10); 100 paid 02-10, then 03-10 missed:
     DPD 5 at 03-15, 25 at 04-04. A version restructured_at 2024-04-05 with a *complete* schedule
     (it lists the instalment already paid, as Fineract writes a rescheduled loan): 100 due 02-10,
     150 due 05-10 and 06-10. Every event is allocated against it from the start: the payment of
     02-10 pays its first instalment, so from 04-05 the loan is current with 300.00 (the old
     instalment of 04-10 no longer exists); at 05-31 DPD 21, past due 150.00.
  R3 cash 200 over 2 (100 due 02-15, 03-15); a later version (03-01) WITHOUT restructured_at gives 4
     months (50 due the 15th): a correction, in force at every date. 50 paid 02-15 pays the first
     instalment: current at 02-29 with 150.00; DPD 4 at 03-19 (03-15 unpaid).
  R4 the same loan, but the version of 03-01 has restructured_at 2024-03-01: before it the first
     terms hold, so at 02-29 instalment 1 (100) is 50 short: DPD 14, past due 50.00; from 03-01 the
     4-month terms (complete: 200 as issued), and at 03-15 the loan is current; DPD 4 at 03-19.
  R5 like R1, but the later records add up to 250 (neither the 300 issued nor the 200 outstanding):
     warn_restructured_schedules names it; from 03-20 the principal outstanding is that schedule's
     250.00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import build_home, snapshot

FIXTURE = Path(__file__).parent / "restructuring"

# loan: {date: (state, dpd, principal_outstanding, past_due_amount)}
EXPECTED = {
    "R1": {"2024-02-29": ("current", 0, "200.00", "0.00"), "2024-03-15": ("overdue", 14, "200.00", "100.00"),
           "2024-03-19": ("overdue", 18, "200.00", "100.00"), "2024-03-20": ("current", 0, "200.00", "0.00"),
           "2024-04-30": ("current", 0, "100.00", "0.00"), "2024-05-31": ("overdue", 11, "100.00", "100.00")},
    "R2": {"2024-03-15": ("overdue", 5, "300.00", "100.00"), "2024-04-04": ("overdue", 25, "300.00", "100.00"),
           "2024-04-05": ("current", 0, "300.00", "0.00"), "2024-04-10": ("current", 0, "300.00", "0.00"),
           "2024-05-31": ("overdue", 21, "300.00", "150.00")},
    "R3": {"2024-02-29": ("current", 0, "150.00", "0.00"), "2024-03-15": ("current", 0, "150.00", "0.00"),
           "2024-03-19": ("overdue", 4, "150.00", "50.00")},
    "R4": {"2024-02-29": ("overdue", 14, "150.00", "50.00"), "2024-03-15": ("current", 0, "150.00", "0.00"),
           "2024-03-19": ("overdue", 4, "150.00", "50.00")},
    "R5": {"2024-03-19": ("overdue", 18, "200.00", "100.00"), "2024-03-20": ("current", 0, "250.00", "0.00")},
}


@pytest.fixture(scope="module")
def restructured(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("restructuring"), FIXTURE)


@pytest.fixture(scope="module")
def con(restructured):
    with snapshot(restructured) as c:
        yield c


@pytest.mark.parametrize("loan_id", sorted(EXPECTED))
def test_terms_in_force_from_their_date(con, loan_id):
    from loanwatch.reports.delinquency import loans

    for as_of, (state, dpd, principal, past_due) in EXPECTED[loan_id].items():
        row = {r["loan_id"]: r for r in loans(con, dt.date.fromisoformat(as_of)).as_dicts()}[loan_id]
        got = (row["state"], row["dpd"], row["principal_outstanding"], row["past_due_amount"])
        assert got == (state, dpd, Decimal(principal), Decimal(past_due)), (loan_id, as_of)


def test_the_schedule_shown_is_the_latest(con):
    rows = con.execute("""SELECT loan_id, instalment_number, due_date, principal_amount, paid_on_date
                          FROM marts.fct_instalments WHERE loan_id IN ('R1', 'R2') ORDER BY 1, 2""").fetchall()
    day, d = dt.date, Decimal
    assert rows == [
        ("R1", 1, day(2024, 4, 20), d("100.00"), day(2024, 4, 20)),
        ("R1", 2, day(2024, 5, 20), d("100.00"), None),
        ("R2", 1, day(2024, 2, 10), d("100.00"), day(2024, 2, 10)),
        ("R2", 2, day(2024, 5, 10), d("150.00"), None),
        ("R2", 3, day(2024, 6, 10), d("150.00"), None),
    ]


def test_payments_keep_the_allocation_of_their_day(con):
    """R1's payment of 02-01 was allocated by the schedule then in force (its instalment 1); R1's
    payment of 04-20 by the restructured one: each appears once."""
    rows = con.execute("""SELECT payment_id, principal_amount, credit_amount FROM marts.fct_payment_allocations
                          WHERE loan_id = 'R1' ORDER BY 1""").fetchall()
    assert rows == [("R1-P1", Decimal("100.00"), Decimal("0.00")), ("R1-P2", Decimal("100.00"), Decimal("0.00"))]


def test_a_schedule_that_adds_up_to_neither_is_named(restructured):
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(restructured) as wh:
        failing = dict(wh.execute("""
            SELECT check_name, failing_rows FROM meta.dq_results
            WHERE build_id = (SELECT max(build_id) FROM meta.builds)""").fetchall())
        rows = wh.execute("SELECT loan_id, principal_total, principal_outstanding_before FROM dq.warn_restructured_schedules").fetchall()
    assert failing["warn_restructured_schedules"] == 1
    assert rows == [("R5", Decimal("250.00"), Decimal("200.00"))]
    # R1's later records and R2's restructured version are a schedule, not a problem
    assert failing["warn_instalment_records"] == 0
    assert failing["check_schedule_principal_sums_to_amount"] == 0
