"""tests/reference.py itself, against figures worked out by hand (no warehouse): METRICS v3 §2-3 on
the servicing loans of tests/golden/servicing (the docstring of tests/golden/test_servicing.py
derives each figure), and §4 on the ten golden loans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests import reference
from tests.conftest import GOLDEN
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
