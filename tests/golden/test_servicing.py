"""Loans as servicing systems record them (contract v3, METRICS v3 §2-§3), by hand.

Eight loans of client C1 (tests/golden/servicing/), each showing one rule; the data date is
2024-03-31 (S3's last payment). "Open" is what an instalment still owes after every event.

  S1 cash 300 interest-free, 3 × 100 due 02-10, 03-10, 04-10. A penalty of 10 on instalment 1
     (02-15), then 105 paid on 02-20: penalty first (allocation_order penalty, fee, interest,
     principal), 95 to principal, so instalment 1 still owes 5: overdue since 02-10, DPD 19 at
     02-29, past due 5.00, principal 205.00 (version 2's rule, blind to the penalty, had it paid and
     the loan current). 5 more on 03-05 closes it: current at 03-06 with 200.00; instalment 2 is
     overdue at 03-31 (DPD 21, past due 100.00).
  S2 cash 200 (100 due 02-05, 03-05). 250 paid 02-01: both instalments, and a credit of 50. A fee of
     30 on 02-10 (due that day: instalment 2, the first due on or after it) is paid at once from the
     credit (20 left); a penalty of 40 on 03-10 (due after every instalment: the last) takes the
     remaining 20 and leaves 20 open on instalment 2, due 03-05: closed until then, overdue at 03-31
     with DPD 26, past due 20.00, all of it charges, and no principal.
  S3 installment 1000 at 12 % over 3 (interest 10.00, 6.70, 3.37; principal 330.02, 333.32, 336.66;
     due 02-29, 03-31, 04-30). An interest waiver of 15.00 on 02-01 takes instalment 1's 10.00 and
     5.00 of instalment 2's 6.70. 330.02 on 02-29 closes instalment 1, 335.02 on 03-31 instalment 2
     (1.70 interest, 333.32 principal): current at 03-31 with 336.66 (version 2: 665.04 paid against
     680.04 due, overdue). At 05-31: DPD 31, past due 340.03.
  S4 cash 100 due 02-01. A fee waiver of 5 with no fee to waive (ignored: warn_waivers_beyond_open),
     a principal waiver of 30 on 01-20 (principal 70.00 at 01-31), 70 paid on 02-01: closed.
  S5 cash 100 due 02-01, paid 02-03 (DPD 1 on 02-02); a penalty of 25 on 02-05, reversed on 02-10:
     void from the start, so closed from 02-03 on.
  S6 bnpl 100, instalment records of 50 principal + 5 fee due 02-15 and 03-15; 55 paid 02-15
     (5 fee, 50 principal). At 03-31: DPD 16, past due 55.00 of which 5.00 fee, principal 50.00.
  S7 cash 100 due 02-01. A principal waiver of 40 (01-10), reversed (01-20): void. 60 paid 02-01
     leaves 40 open: DPD 28 at 02-29, 59 at 03-31.
  S8 cash 200 (100 due 02-10, 03-10), 100 paid 02-05: current at 02-29. A fee of 10 charged 03-05 on
     instalment 1, already paid and past due: it owes again, so at 03-31 the loan is overdue since
     02-10, DPD 50 (a jump from 0: check_dpd_consistent_over_time allows it at a charge), past due
     110.00 of which 10.00 fee, principal 100.00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import build_home, snapshot

FIXTURE = Path(__file__).parent / "servicing"

# (loan, state, dpd, principal_outstanding, past_due_amount, charges_past_due) at each date
EXPECTED = {
    "2024-01-31": {
        "S4": ("current", 0, "70.00", "0.00", "0.00"),
        "S7": ("current", 0, "100.00", "0.00", "0.00"),
    },
    "2024-02-07": {
        "S2": ("closed", 0, "0.00", "0.00", "0.00"),
        "S4": ("closed", 0, "0.00", "0.00", "0.00"),
        "S5": ("closed", 0, "0.00", "0.00", "0.00"),
        "S7": ("overdue", 6, "40.00", "40.00", "0.00"),
    },
    "2024-02-29": {
        "S1": ("overdue", 19, "205.00", "5.00", "0.00"),
        "S2": ("closed", 0, "0.00", "0.00", "0.00"),
        "S3": ("current", 0, "669.98", "0.00", "0.00"),
        "S6": ("current", 0, "50.00", "0.00", "0.00"),
        "S7": ("overdue", 28, "40.00", "40.00", "0.00"),
        "S8": ("current", 0, "100.00", "0.00", "0.00"),
    },
    "2024-03-06": {
        "S1": ("current", 0, "200.00", "0.00", "0.00"),
    },
    "2024-03-31": {
        "S1": ("overdue", 21, "200.00", "100.00", "0.00"),
        "S2": ("overdue", 26, "0.00", "20.00", "20.00"),
        "S3": ("current", 0, "336.66", "0.00", "0.00"),
        "S4": ("closed", 0, "0.00", "0.00", "0.00"),
        "S5": ("closed", 0, "0.00", "0.00", "0.00"),
        "S6": ("overdue", 16, "50.00", "55.00", "5.00"),
        "S7": ("overdue", 59, "40.00", "40.00", "0.00"),
        "S8": ("overdue", 50, "100.00", "110.00", "10.00"),
    },
    "2024-05-31": {
        "S3": ("overdue", 31, "336.66", "340.03", "0.00"),
    },
}


@pytest.fixture(scope="module")
def servicing(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("servicing"), FIXTURE)


@pytest.fixture(scope="module")
def con(servicing):
    with snapshot(servicing) as c:
        yield c


@pytest.mark.parametrize("as_of", sorted(EXPECTED))
def test_loan_figures_by_hand(con, as_of):
    from loanwatch.reports.delinquency import loans

    rows = {r["loan_id"]: r for r in loans(con, dt.date.fromisoformat(as_of)).as_dicts()}
    for loan_id, (state, dpd, principal, past_due, charges) in EXPECTED[as_of].items():
        row = rows[loan_id]
        got = (row["state"], row["dpd"], row["principal_outstanding"], row["past_due_amount"], row["charges_past_due"])
        assert got == (state, dpd, Decimal(principal), Decimal(past_due), Decimal(charges)), (as_of, loan_id)


def test_report_loans_keeps_its_columns_and_adds_charges_past_due(con):
    from loanwatch.reports.delinquency import loans

    assert loans(con, dt.date(2024, 3, 31)).columns == [
        "loan_id", "client_id", "amount", "state", "dpd", "bucket", "principal_outstanding", "past_due_amount",
        "charges_past_due"]


def test_payments_allocated_by_component(con):
    rows = con.execute("""
        SELECT payment_id, penalty_amount, fee_amount, interest_amount, principal_amount, credit_amount
        FROM marts.fct_payment_allocations WHERE loan_id IN ('S1', 'S2', 'S3', 'S6') ORDER BY payment_id""").fetchall()
    d = Decimal
    assert rows == [
        ("S1-P1", d("10.00"), d("0.00"), d("0.00"), d("95.00"), d("0.00")),
        ("S1-P2", d("0.00"), d("0.00"), d("0.00"), d("5.00"), d("0.00")),
        ("S2-P1", d("0.00"), d("0.00"), d("0.00"), d("200.00"), d("50.00")),
        ("S3-P1", d("0.00"), d("0.00"), d("0.00"), d("330.02"), d("0.00")),
        ("S3-P2", d("0.00"), d("0.00"), d("1.70"), d("333.32"), d("0.00")),
        ("S6-P1", d("0.00"), d("5.00"), d("0.00"), d("50.00"), d("0.00")),
    ]


def test_instalments_paid_charged_and_waived(con):
    rows = con.execute("""
        SELECT loan_id, instalment_number, paid_on_date, allocated_amount, charged_amount, waived_amount
        FROM marts.fct_instalments WHERE loan_id IN ('S1', 'S2', 'S3', 'S4') ORDER BY 1, 2""").fetchall()
    d, day = Decimal, dt.date
    assert rows == [
        # S1's first instalment is paid when its penalty and principal are: on 03-05
        ("S1", 1, day(2024, 3, 5), d("110.00"), d("10.00"), d("0.00")),
        ("S1", 2, None, d("0.00"), d("0.00"), d("0.00")),
        ("S1", 3, None, d("0.00"), d("0.00"), d("0.00")),
        # S2's second, paid on 02-01, owes again after the penalty of 03-10
        ("S2", 1, day(2024, 2, 1), d("100.00"), d("0.00"), d("0.00")),
        ("S2", 2, None, d("150.00"), d("70.00"), d("0.00")),
        ("S3", 1, day(2024, 2, 29), d("330.02"), d("0.00"), d("10.00")),
        ("S3", 2, day(2024, 3, 31), d("335.02"), d("0.00"), d("5.00")),
        ("S3", 3, None, d("0.00"), d("0.00"), d("0.00")),
        ("S4", 1, day(2024, 2, 1), d("70.00"), d("0.00"), d("30.00")),
    ]


def test_a_reversed_charge_never_happened(con):
    rows = con.execute("""
        SELECT valid_from, state, closed_date FROM marts.fct_loan_states WHERE loan_id = 'S5' ORDER BY valid_from""").fetchall()
    day = dt.date
    assert rows == [(day(2024, 1, 1), "current", None), (day(2024, 2, 2), "overdue", None),
                    (day(2024, 2, 3), "closed", day(2024, 2, 3))]


def test_checks_name_the_waiver_beyond_what_was_open(servicing):
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(servicing) as wh:
        results = dict(wh.execute("""
            SELECT check_name, failing_rows FROM meta.dq_results
            WHERE build_id = (SELECT max(build_id) FROM meta.builds)""").fetchall())
    assert results["warn_waivers_beyond_open"] == 1
    assert results["warn_interest_rate_looks_like_percent"] == 0
    assert results["warn_servicing_reversals_not_applied"] == 0
