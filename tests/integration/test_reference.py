"""The warehouse equals an independent Python reference of METRICS §1-4, for several seeds: the
monthly figures, and every loan's state, DPD, principal outstanding and past-due amount at dates
through the portfolio's life, on generated portfolios with servicing events (penalties, fees,
waivers, reversed charges, recoveries after write-off) and restructurings."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest

from loanwatch import reports
from loanwatch.generate.portfolio import generate
from loanwatch.generate.write import write_portfolio
from loanwatch.reports.delinquency import loans as loans_report
from loanwatch.serve import open_snapshot
from tests import reference
from tests.conftest import GOLDEN, build_home


def _rows(table):
    return [tuple(str(v) if isinstance(v, D) else v for v in r) for r in table.rows]


def _kinds(path, field="type"):
    return {json.loads(line)[field] for line in path.read_text().splitlines()}


def test_reference_agrees_with_hand_computed_golden():
    """The reference itself is checked against the hand-computed figures first (the servicing
    loans' in tests/unit/test_reference.py)."""
    from tests.golden.test_ten_loans import EXPECTED

    assert reference.overdue_monthly(GOLDEN) == [tuple(r) for r in EXPECTED]


# the 15th and the last day of every month of the portfolio (2024-01-01 to 2025-03-31)
DATES = [d for m in range(15) for d in (dt.date(2024 + m // 12, m % 12 + 1, 15),
                                        reference.add_months(dt.date(2024, 2, 1), m) - dt.timedelta(days=1))]


@pytest.mark.integration
@pytest.mark.parametrize("seed", [3, 11, 2024])
def test_warehouse_equals_reference(tmp_path, seed):
    raw = tmp_path / "raw"
    write_portfolio(generate(200, seed=seed, start=dt.date(2024, 1, 1), end=dt.date(2025, 3, 31)), raw)
    # every kind of servicing event is there
    assert _kinds(raw / "charges.jsonl") == {"penalty", "fee", "reversal"}
    assert _kinds(raw / "adjustments.jsonl") == {"waive_penalty", "waive_interest"}
    loans, events, data_date = reference.load(raw)
    recoveries = [e for loan_id, loan in loans.items() if loan["written_off"]
                  for e in events.get(loan_id, []) if e.kind == "payment" and e.at.date() >= loan["written_off"]]
    assert recoveries
    # and restructurings: a loan with a later schedule (the generator writes remaining ones)
    assert any(len(loan["_regimes"]) > 1 for loan in loans.values())

    settings = build_home(tmp_path / "home", raw)
    con = open_snapshot(settings)
    assert _rows(reports.overdue_monthly(con)) == reference.overdue_monthly(raw)
    lo, hi = D("1000"), D("5000")
    assert _rows(reports.overdue_monthly(con, min_amount=lo, max_amount=hi)) == reference.overdue_monthly(raw, lo, hi)

    states = set()
    for day in [*DATES, data_date]:
        got = {r["loan_id"]: (r["state"], r["dpd"], r["principal_outstanding"], r["past_due_amount"], r["charges_past_due"])
               for r in loans_report(con, day).as_dicts()}
        expected = {loan_id: tuple(reference.figures_at(loan, events.get(loan_id, []), day))
                    for loan_id, loan in loans.items()}
        assert got == expected, [(day, k, got.get(k), v) for k, v in expected.items() if got.get(k) != v][:5]
        states |= {f[0] for f in expected.values()}
    assert states == {"cancelled", "not_issued", "current", "overdue", "closed", "written_off"}
    con.close()
