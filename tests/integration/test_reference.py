"""The warehouse equals an independent Python reference of METRICS §1-4, for several seeds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from loanwatch import reports
from loanwatch.generate.portfolio import generate
from loanwatch.generate.write import write_portfolio
from loanwatch.serve import open_snapshot
from tests import reference
from tests.conftest import GOLDEN, build_home


def _rows(table):
    return [tuple(str(v) if isinstance(v, D) else v for v in r) for r in table.rows]


def test_reference_agrees_with_hand_computed_golden():
    """The reference itself is checked against the hand-computed figures first."""
    from tests.golden.test_ten_loans import EXPECTED

    assert reference.overdue_monthly(GOLDEN) == [tuple(r) for r in EXPECTED]


@pytest.mark.integration
@pytest.mark.parametrize("seed", [3, 11, 2024])
def test_warehouse_equals_reference(tmp_path, seed):
    raw = tmp_path / "raw"
    write_portfolio(generate(120, seed=seed, start=dt.date(2024, 1, 1), end=dt.date(2025, 3, 31)), raw)
    settings = build_home(tmp_path / "home", raw)
    con = open_snapshot(settings)
    assert _rows(reports.overdue_monthly(con)) == reference.overdue_monthly(raw)
    lo, hi = D("1000"), D("5000")
    assert _rows(reports.overdue_monthly(con, min_amount=lo, max_amount=hi)) == reference.overdue_monthly(raw, lo, hi)
