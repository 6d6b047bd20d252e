"""tests/reference.py itself, against figures worked out by hand (no warehouse): METRICS v3 §2-3 on
the servicing loans of tests/golden/servicing (the docstring of tests/golden/test_servicing.py
derives each figure) and on the restructured loans of tests/golden/restructuring (the docstring of
tests/golden/test_restructuring.py), and §4 on the ten golden loans."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from tests import reference
from tests.conftest import GOLDEN
from tests.golden.test_restructuring import EXPECTED as RESTRUCTURED
from tests.golden.test_restructuring import FIXTURE as RESTRUCTURING
from tests.golden.test_servicing import EXPECTED, FIXTURE


def test_the_reference_follows_the_servicing_loans_by_hand():
    got = {}
    for as_of, loans in EXPECTED.items():
        figures = reference.loans_at(FIXTURE, dt.date.fromisoformat(as_of))
        for loan_id in loans:
            f = figures[loan_id]
            got[as_of, loan_id] = (f.state, f.dpd, str(f.principal_outstanding), str(f.past_due_amount),
                                   str(f.charges_past_due))
    assert got == {(as_of, loan_id): figures for as_of, loans in EXPECTED.items() for loan_id, figures in loans.items()}


def test_a_reversed_charge_or_waiver_is_left_out_and_a_credit_pays_a_later_charge():
    loans, events, data_date = reference.load(FIXTURE)
    assert data_date == dt.date(2024, 3, 31)
    assert [e.event_id for e in events["S5"]] == ["S5-P1"]  # the penalty and its reversal: neither
    assert [e.event_id for e in events["S7"]] == ["S7-P1"]
    # S2: 250 paid for 200 due, then a fee of 30 (instalment 2, due 03-05) and a penalty of 40 (the last)
    open_amounts, principal = reference.allocate(loans["S2"], events["S2"], dt.date(2024, 3, 31))
    assert principal == Decimal("200.00")
    assert [{c: str(v) for c, v in o.items() if v} for o in open_amounts] == [{}, {"penalty": "20.00"}]


def test_loans_without_servicing_events_keep_the_version_2_figures():
    """The ten golden loans have no charge or waiver: their figures are version 2's, by hand."""
    from tests.golden.test_ten_loans import EXPECTED as MONTHLY

    assert reference.overdue_monthly(GOLDEN) == [tuple(r) for r in MONTHLY]
    for as_of in ("2024-01-31", "2024-03-31", "2024-06-30"):
        figures = reference.loans_at(GOLDEN, dt.date.fromisoformat(as_of))
        assert all(f.charges_past_due == 0 for f in figures.values())
        assert all((f.dpd > 0) == (f.state == "overdue") for f in figures.values())
        assert all(f[1:] == (0, 0, 0, 0) for f in figures.values() if f.state not in reference.ACTIVE)


def test_the_reference_follows_the_restructured_loans_by_hand():
    """R1 and R5: later instalment records (effective_from), remaining and of neither shape; R2: a
    version with restructured_at and a complete schedule; R3: a correction; R4: a restructuring
    version with generated terms."""
    got, expected = {}, {}
    for loan_id, by_date in RESTRUCTURED.items():
        for as_of, figures in by_date.items():
            f = reference.loans_at(RESTRUCTURING, dt.date.fromisoformat(as_of))[loan_id]
            got[loan_id, as_of] = (f.state, f.dpd, str(f.principal_outstanding), str(f.past_due_amount))
            expected[loan_id, as_of] = figures
    assert got == expected


@pytest.fixture
def restructured_annuity(tmp_path):
    """A1: 300 at rate 0 over 3 months from 2024-01-10, so (§1) 100 due 02-10, 03-10 and 04-10.
    100 paid 02-10; 03-10 missed. A version restructured_at 2024-03-20 with `repayment: schedule`,
    and instalment records effective from 03-20, give the rest (as `loanwatch generate` writes a
    restructuring): 100 due 04-20 and 100 due 05-20. Their principals (200) are not the 300 issued
    (within 0.01 x 2), and are the 200 outstanding at the end of 03-19: a *remaining* schedule. A
    later version (06-03, status closed) repeats those terms without restructured_at: it corrects
    the restructuring, in force from 03-20 as it was, not the issue terms. Payments after: 30 on
    03-20 (the restructuring's own day: the new schedule takes it), 70 on 04-20, 100 on 06-03."""
    rest = [{"loan_id": "A1", "number": k, "due_date": due, "principal": 100, "interest": 0,
             "effective_from": "2024-03-20"} for k, due in ((1, "2024-04-20"), (2, "2024-05-20"))]
    terms = {"loan_id": "A1", "client_id": "C1", "product": "installment", "amount": 300, "interest_rate": 0,
             "issue_date": "2024-01-10"}
    loans = [
        {**terms, "repayment": "annuity", "term_months": 3, "status": "active", "updated_at": "2024-01-10T09:00:00Z"},
        {**terms, "repayment": "schedule", "restructured_at": "2024-03-20", "status": "active",
         "updated_at": "2024-03-20T09:00:00Z"},
        {**terms, "repayment": "schedule", "status": "closed", "updated_at": "2024-06-03T12:00:00Z"},
    ]
    payments = [{"payment_id": f"A1-P{k}", "loan_id": "A1", "paid_at": at, "amount": amount}
                for k, (at, amount) in enumerate([("2024-02-10T10:00:00Z", 100), ("2024-03-20T12:00:00Z", 30),
                                                  ("2024-04-20T10:00:00Z", 70), ("2024-06-03T10:00:00Z", 100)], 1)]
    (tmp_path / "loans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in loans))
    (tmp_path / "payments.jsonl").write_text("".join(json.dumps(r) + "\n" for r in payments))
    (tmp_path / "instalments.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rest))
    return tmp_path


def test_a_remaining_schedule_takes_the_events_from_its_date_and_a_correction_keeps_that_date(restructured_annuity):
    # (state, dpd, principal_outstanding, past_due_amount) by hand
    expected = {
        # the issue schedule: 02-10 paid by the 100; 300 - 100 = 200 outstanding
        "2024-02-29": ("current", 0, "200.00", "0.00"),
        # 03-10's 100 open: DPD 5, then 9 (the correction holds from 03-20 only, so not yet)
        "2024-03-15": ("overdue", 5, "200.00", "100.00"),
        "2024-03-19": ("overdue", 9, "200.00", "100.00"),
        # the remaining schedule owes 200 and takes the 30 of 03-20 (not the 100 of 02-10, which
        # would pay its first instalment a second time): 04-20 owes 70, principal 200 - 30 = 170
        "2024-03-20": ("current", 0, "170.00", "0.00"),
        # the old instalment of 04-10 no longer exists
        "2024-04-11": ("current", 0, "170.00", "0.00"),
        # 70 on 04-20 pays 04-20's instalment: 100 left
        "2024-04-30": ("current", 0, "100.00", "0.00"),
        # 05-20's 100 unpaid: DPD 11
        "2024-05-31": ("overdue", 11, "100.00", "100.00"),
        # 100 on 06-03: nothing open
        "2024-06-03": ("closed", 0, "0.00", "0.00"),
    }
    got = {}
    for as_of in expected:
        f = reference.loans_at(restructured_annuity, dt.date.fromisoformat(as_of))["A1"]
        got[as_of] = (f.state, f.dpd, str(f.principal_outstanding), str(f.past_due_amount))
    assert got == expected
    loans, events, _ = reference.load(restructured_annuity)
    # what allocate gives at a date is the schedule in force then: 04-20 owes 70 at 03-31
    open_amounts, principal = reference.allocate(loans["A1"], events["A1"], dt.date(2024, 3, 31))
    assert [o["principal"] for o in open_amounts] == [Decimal("70.00"), Decimal("100.00")]
    assert principal == Decimal("30.00")
    # the loan's terms are the latest version's
    assert loans["A1"]["status"] == "closed" and len(reference.instalments(loans["A1"])) == 2
