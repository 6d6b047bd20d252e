"""The transition matrix, its powers, the rounding and the LGD window of METRICS §9-§10, without a
build: books of transition weights made up here, and marts of a few rows in memory."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from fractions import Fraction

import duckdb
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from loanwatch.reports import provisions as pv

STATES = ("current", "1-30", "31-60", "61-90", "default", "closed")
MONTHS = tuple((f"2024-{m:02d}", dt.date(2024, m, 28)) for m in range(2, 13))


def _book(weights: dict[str, list[list[int]]]) -> pv.Book:
    return pv.Book("USD", STATES, frozenset({4, 5}), MONTHS, weights)


# a month's weights: any non-negative integers, in any cell, the rows of default and closed too
# (active loans past 90 days that cured are moves out of default: observed, never estimated)
month_weights = st.lists(st.lists(st.integers(0, 10 ** 12), min_size=6, max_size=6), min_size=6, max_size=6)


@given(st.dictionaries(st.sampled_from([m for m, _ in MONTHS]), month_weights, max_size=6),
       st.integers(1, 24), st.sampled_from([d for _, d in MONTHS]))
def test_every_row_sums_to_one_and_default_and_closed_absorb(weights, window, day):
    p = pv.estimate(_book(weights), day, window)
    exact = p.exact()
    for i, row in enumerate(exact):
        assert sum(row) == 1, STATES[i]
        assert all(0 <= x <= 1 for x in row)
    assert exact[4] == [0, 0, 0, 0, 1, 0] and exact[5] == [0, 0, 0, 0, 0, 1]
    for state in p.unweighted:  # a state with no weight stays where it is, and is named
        i = STATES.index(state)
        assert exact[i] == [int(i == j) for j in range(6)]
    assert set(p.unweighted) == {STATES[i] for i in range(4) if not sum(p.pooled[i])}
    # the powers keep every row a distribution: the PD is a probability that only grows
    cpd = np.cumsum(pv.marginal_pd(p.array(), 4, 24), axis=0)
    assert np.allclose(np.linalg.matrix_power(p.array(), 24).sum(axis=1), 1, atol=1e-9)
    assert (np.diff(cpd, axis=0) >= -1e-12).all() and (cpd <= 1 + 1e-9).all()
    assert np.allclose(cpd[:, 4], 1) and np.allclose(cpd[:, 5], 0)


def test_a_state_with_no_weight_is_kept_at_one_and_named():
    weights = {"2024-03": [[50, 50, 0, 0, 0, 0], [0, 0, 30, 0, 10, 0], [0] * 6, [0] * 6, [7, 0, 0, 0, 3, 0], [0] * 6]}
    p = pv.estimate(_book(weights), dt.date(2024, 12, 31), 12)
    assert p.unweighted == ["31-60", "61-90"]
    assert p.probability(2, 2) == p.probability(3, 3) == 1 and p.probability(2, 0) == 0
    assert p.probability(4, 0) == 0 and p.probability(4, 4) == 1  # cures out of default are not estimated
    assert p.probability(1, 2) == Fraction(3, 4)
    assert p.notes(12) == [
        # the window counts calendar months (the book's), whether or not the currency has weight in them
        "the transition matrix rests on 11 months (2024-02 to 2024-12), fewer than the 12 of [provisions] "
        "pd_window_months: the data is shorter",
        "no weight in the window for 31-60, 61-90: kept at 1 on the diagonal (its loans are projected to stay, with a PD of 0)"]


def test_the_window_is_the_latest_months_ending_by_the_day_fewer_when_shorter():
    book = _book({})
    assert [m for m, _ in book.window(dt.date(2024, 6, 28), 3)] == ["2024-04", "2024-05", "2024-06"]
    assert [m for m, _ in book.window(dt.date(2024, 6, 27), 3)] == ["2024-03", "2024-04", "2024-05"]
    assert [m for m, _ in book.window(dt.date(2024, 3, 1), 12)] == ["2024-02"]
    assert book.window(dt.date(2024, 2, 1), 12) == []
    p = pv.estimate(book, dt.date(2024, 2, 1), 12)
    assert p.months == () and p.unweighted == list(STATES[:4]) and p.exact() == [[int(i == j) for j in range(6)] for i in range(6)]
    assert "the transition matrix is the identity" in p.notes(12)[0]


def test_pooled_weights_not_a_mean_of_monthly_matrices():
    """A6: a loan-month is one observation: 90 of 100 in one month and 0 of 10 in another is 90/110."""
    weights = {"2024-02": [[10, 90, 0, 0, 0, 0]] + [[0] * 6] * 5, "2024-03": [[10, 0, 0, 0, 0, 0]] + [[0] * 6] * 5}
    assert pv.estimate(_book(weights), dt.date(2024, 3, 28), 12).probability(0, 1) == Fraction(90, 110)


def test_marginal_pd_is_the_default_column_of_the_powers():
    p = np.array([[0.5, 0.3, 0, 0, 0.1, 0.1], [0.2, 0.2, 0.3, 0, 0.2, 0.1], [0.1, 0, 0.2, 0.5, 0.2, 0],
                  [0, 0, 0, 0.4, 0.6, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]])
    mpd = pv.marginal_pd(p, 4, 36)
    for t in (1, 2, 12, 36):
        assert np.allclose(mpd[:t].sum(axis=0), np.linalg.matrix_power(p, t)[:, 4], atol=1e-12)


def test_half_up_rounds_the_exact_value_away_from_zero_at_ties():
    assert pv.half_up(Fraction(1, 128), 6) == Decimal("0.007813")  # 0.0078125: METRICS' own example
    assert pv.half_up(Fraction(-1, 128), 6) == Decimal("-0.007813")
    assert pv.half_up(Fraction(20945, 2), 2) == Decimal("10472.50")
    assert pv.half_up(0, 6) == Decimal("0.000000") and str(pv.half_up(0, 6)) == "0.000000"
    assert pv.half_up(Fraction(-1, 10 ** 9), 6) == Decimal("0.000000") and str(pv.half_up(Fraction(-1, 10 ** 9), 6)) == "0.000000"
    assert pv.half_up(0.1, 2) == Decimal("0.10") and pv.half_up(460.336900935, 2) == Decimal("460.34")
    assert pv.half_up(Decimal("2.675"), 2) == Decimal("2.68")  # float 2.675 is below the tie; Decimal is not


def _marts(write_offs, recoveries, currency="USD") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.dim_loans (loan_id VARCHAR, currency VARCHAR)")
    con.execute("CREATE TABLE marts.fct_loan_write_offs (loan_id VARCHAR, written_off_date DATE, principal_written_off_amount DECIMAL(18,2))")
    con.execute("CREATE TABLE marts.fct_loan_recoveries (payment_id VARCHAR, loan_id VARCHAR, written_off_date DATE, paid_date DATE, recovery_amount DECIMAL(18,2))")
    for loan_id, day, amount in write_offs:
        con.execute("INSERT INTO marts.dim_loans VALUES (?, ?)", [loan_id, currency])
        con.execute("INSERT INTO marts.fct_loan_write_offs VALUES (?, ?, ?)", [loan_id, day, amount])
    for k, (loan_id, day, amount) in enumerate(recoveries):
        wo = next(d for i, d, _ in write_offs if i == loan_id)
        con.execute("INSERT INTO marts.fct_loan_recoveries VALUES (?, ?, ?, ?, ?)", [f"R{k}", loan_id, wo, day, amount])
    return con


def _settings(**values) -> pv.ProvisionSettings:
    return dataclasses.replace(pv.ProvisionSettings.of(None), **values)


def test_lgd_counts_a_recovery_on_the_last_day_of_its_window():
    """A24: within L months of the write-off, both ends inclusive: written off 2024-01-31 with 1000,
    L = 1: the window ends add_months(01-31, 1) = 02-29 (clamped). 100 on 01-31 and 200 on 02-29
    count, 400 on 03-01 does not: LGD = 1 − 300/1000 = 0.7 at D = 03-31 (cutoff add_months(03-31, −1)
    = 02-29, on or after the write-off). At D = 02-29 the cutoff 01-29 is before it: no loan, the
    fallback."""
    con = _marts([("W1", dt.date(2024, 1, 31), Decimal("1000.00"))],
                 [("W1", dt.date(2024, 1, 31), Decimal("100.00")), ("W1", dt.date(2024, 2, 29), Decimal("200.00")),
                  ("W1", dt.date(2024, 3, 1), Decimal("400.00"))])
    s = _settings(lgd_min_loans=1, lgd_window_months=1, lgd=Decimal("0.45"))
    lgd = pv.loss_given_default(con, dt.date(2024, 3, 31), "USD", s)
    assert (lgd.value, lgd.recovered, lgd.cutoff, lgd.from_data) == (Fraction(7, 10), Decimal("300.00"), dt.date(2024, 2, 29), True)
    early = pv.loss_given_default(con, dt.date(2024, 2, 29), "USD", s)
    assert (early.value, early.loans, early.from_data) == (Fraction(9, 20), 0, False)
    # recoveries beyond the amount written off: floored at 0; a cohort with nothing on the book: the fallback
    assert pv.loss_given_default(_marts([("W1", dt.date(2024, 1, 31), Decimal("10.00"))], [("W1", dt.date(2024, 2, 1), Decimal("11.00"))]),
                                 dt.date(2024, 3, 31), "USD", s).value == 0
    empty = pv.loss_given_default(_marts([("W1", dt.date(2024, 1, 31), Decimal("0.00"))], []), dt.date(2024, 3, 31), "USD", s)
    assert (empty.value, empty.loans, empty.from_data) == (Fraction(9, 20), 1, False)
    assert empty.note(s) == "LGD 0.450000 = [provisions] lgd: no principal on the book at the write-off of the 1 loan written off up to 2024-02-29"
    # other currencies are not this book's
    assert pv.loss_given_default(con, dt.date(2024, 3, 31), "MXN", s).from_data is False


def test_a_full_window_is_said_with_its_months_and_weights():
    """A matrix on a full window says its months and what weighs a move ([provisions] pd_weight);
    a shorter one says it has fewer (above), a weight-less one nothing more."""
    weights = {m: [[9, 1, 0, 0, 0, 0], [2, 6, 1, 0, 1, 0], [0] * 6, [0] * 6, [0] * 6, [0] * 6] for m, _ in MONTHS}
    p = pv.estimate(_book(weights), dt.date(2024, 12, 31), 3)
    assert p.notes(3, "balance")[0] == ("the transition matrix rests on 3 months (2024-10 to 2024-12), weighted by each "
                                        "loan's principal at the month's start ([provisions] pd_weight)")
    assert p.notes(3, "count")[0].endswith("weighted by loan counts ([provisions] pd_weight)")
    assert not any("rests on" in note for note in p.notes(3))
