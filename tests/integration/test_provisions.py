"""Provisions and the forecast (METRICS §9-§10) on a generated portfolio and on two currencies: what
must hold whatever the figures (tests/golden/test_provisions.py has them by hand)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loanwatch.config import load_settings
from loanwatch.reports import LoanFilter, data_date
from loanwatch.reports import provisions as pv
from loanwatch.serve import open_snapshot

pytestmark = pytest.mark.integration
HALF = Decimal("0.0000005")


@pytest.fixture(scope="module")
def small(small_home):
    con = open_snapshot(small_home)
    yield small_home, con
    con.close()


@pytest.mark.parametrize("weight", ["balance", "count"])
def test_every_row_of_the_matrix_sums_to_one_and_default_and_closed_absorb(small, weight):
    settings, con = small
    s = load_settings(settings.home, environ={"LOANWATCH_PROVISIONS__PD_WEIGHT": weight})
    # the portfolio starts in January 2024: at 2024-09-30 eight months (Feb to Sep), later the twelve of the window
    for day, months in ((None, 12), (dt.date(2024, 9, 30), 8), (dt.date(2025, 3, 17), 12)):
        table = pv.transition_matrix(con, as_of=day, settings=s)
        rows = table.as_dicts()
        assert len(rows) == 36 and {r["months"] for r in rows} == {months}
        states = [r["from_state"] for r in rows[::6]]
        assert states == ["current", "1-30", "31-60", "61-90", "default", "closed"]
        for state in states:
            mine = [r for r in rows if r["from_state"] == state]
            assert [r["to_state"] for r in mine] == states
            # rounded to 6 decimals each: the sum is 1 within half a unit of the last place per cell
            assert abs(sum(r["probability"] for r in mine) - 1) <= 6 * HALF, (day, state)
        for state in ("default", "closed"):
            assert [(r["probability"], r["weight"]) for r in rows if r["from_state"] == state] == [
                (Decimal(int(state == to)), None) for to in states]
        if weight == "count":
            assert all(isinstance(r["weight"], int) for r in rows if r["weight"] is not None)


def test_fewer_months_at_an_early_as_of_date_said_so(small):
    settings, con = small
    first = con.execute("SELECT min(snapshot_date) FROM marts.snapshot_dates").fetchone()[0]  # 2024-01-31
    for k, day in enumerate([first, dt.date(2024, 2, 29), dt.date(2024, 4, 30)]):
        table = pv.transition_matrix(con, as_of=day, settings=settings)
        months = [0, 1, 3][k]
        assert {r[4] for r in table.rows} == {months}
        assert (f"rests on {months} month" if months else "is the identity") in " ".join(table.notes)
    backtest = pv.forecast_backtest(con, as_of=dt.date(2024, 3, 31), settings=settings)
    assert sorted({r[0] for r in backtest.rows}) == ["2024-02", "2024-03"]
    assert backtest.notes[0] == "2 months to test, fewer than the 6 of [provisions] backtest_months: the data is shorter"


def test_groups_add_up_to_all_whatever_the_grouping_and_method(small):
    settings, con = small
    totals = set()
    for method in ("ifrs9", "cecl"):
        for by in ("stage", "product", "bucket"):
            table = pv.provisions(con, by=by, method=method, settings=settings)
            *groups, everything = table.rows
            assert everything[0] == "(all)"
            assert sum(g[1] for g in groups) == everything[1] and sum(g[2] for g in groups) == everything[2]
            # each group's ECL rounded on its own: within a cent per group of the rounded total
            assert abs(sum(g[3] for g in groups) - everything[3]) <= Decimal("0.01") * len(groups)
            assert all(g[4] is None or 0 <= g[4] <= 1 for g in table.rows)
            totals.add((method, everything[1], everything[2]))
            if by == "stage":
                assert [g[0] for g in groups] == ["1", "2", "3"]
    assert len({t[1:] for t in totals}) == 1
    ifrs9 = pv.provisions(con, settings=settings).rows
    cecl = pv.provisions(con, method="cecl", settings=settings).rows
    assert cecl[0][3] >= ifrs9[0][3] and cecl[1:3] == ifrs9[1:3]  # only stage 1 changes: lifetime ≥ 12 months
    # a filter selects loans, not the matrix or LGD: the product's row of --by product is --product's (all)
    product = pv.provisions(con, by="product", settings=settings).rows[0]
    alone = pv.provisions(con, f=LoanFilter(product=product[0]), settings=settings).rows[-1]
    assert alone[1:] == product[1:]


def test_forecast_shares_sum_to_one_and_the_backtest_error_is_half_the_absolute_errors(small):
    settings, con = small
    table = pv.forecast(con, months=12, settings=settings)
    months = sorted({r[0] for r in table.rows})
    assert len(months) == 12 and months[0] == "2025-07"  # the data date is 2025-06-30, a month end
    for month in months:
        mine = [r for r in table.rows if r[0] == month]
        assert abs(sum(r[2] for r in mine) - 1) <= 6 * HALF
    backtest = pv.forecast_backtest(con, settings=settings)
    months = sorted({r[0] for r in backtest.rows})
    assert months == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    for month in months:
        *states, everything = [r for r in backtest.rows if r[0] == month]
        assert everything[1:4] == ("(all)", None, None)
        assert abs(sum(r[3] for r in states) - 1) <= 6 * HALF and abs(sum(r[2] for r in states) - 1) <= 6 * HALF
        assert abs(sum(abs(r[4]) for r in states) / 2 - everything[4]) <= 4 * HALF


def test_a_projection_uses_the_data_up_to_the_data_date(small):
    settings, con = small
    latest = data_date(con)
    later = pv.transition_matrix(con, as_of=latest + dt.timedelta(days=92), settings=settings)
    assert later.rows == pv.transition_matrix(con, settings=settings).rows
    assert f"use the data up to the data date {latest}" in later.notes[0]


def test_each_currency_estimates_on_its_own_loans(two_currencies):
    """Two MXN loans beside the golden USD ones (tests/integration/test_currency.py): X1 (2000, issued
    05-15, first instalment unpaid on 06-15) is MXN's only move, current at 05-31 to 1-30 at 06-30;
    X2 is issued in July, the partial month (data date 07-10), which is never a transition month."""
    with open_snapshot(two_currencies) as con:
        mxn = {(r[0], r[1]): r for r in pv.transition_matrix(con, f=LoanFilter(currency="MXN"), settings=two_currencies).rows}
        assert mxn[("current", "1-30")][2:4] == (Decimal("1.000000"), Decimal("2000.00"))
        assert sum(r[3] or 0 for r in mxn.values()) == Decimal("2000.00")
        assert {r[0] for r in mxn.values() if r[5] == "no weight: kept at 1"} == {"1-30", "31-60", "61-90"}
        usd = pv.transition_matrix(con, f=LoanFilter(currency="USD"), settings=two_currencies).rows
        assert sum(r[3] or 0 for r in usd) == con.execute(
            "SELECT sum(weight_amount) FROM marts.fct_state_transitions WHERE currency = 'USD'").fetchone()[0]
        # with no currency given: the one holding the most principal (MXN), as every report picks
        everything = pv.provisions(con, settings=two_currencies).rows[-1]
        assert everything[:3] == ("(all)", 2, Decimal("3000.00"))
        assert pv.provisions(con, f=LoanFilter(currency="USD"), settings=two_currencies).rows[-1][:3] == (
            "(all)", 3, Decimal("1200.00"))
