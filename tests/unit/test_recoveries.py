"""Recoveries by write-off cohort (METRICS §5) without a build: marts of a few rows in memory, the
figures by hand. The golden provisions book checks them after a real build
(tests/golden/test_recoveries.py); here, several cohorts, a month with nothing recovered, a cohort
with nothing written off, a rate above 1, half-up rounding and the currency of a filter.

Loans in USD (the data date 2024-04-30):
  A amount 1200, written off 2024-01-15 with 1000.00; recoveries 200 on 01-20 and 300 on 03-05.
  B amount 600, written off 01-31 with 500.00; 100 on 02-01.
  C amount 300, written off 02-20 with 0.00 (nothing on the book); 50 on 02-25.
  D amount 400, written off 03-20 with 200.00; 150 on 03-25 and 100 on 04-02.
In EUR: E written off 02-10 with 700.00, 70 on 03-01. In GBP: F written off 04-10 with 20000.00,
0.01 on 04-11: the rate 1/2,000,000 = 0.0000005, half-up 0.000001 (half-even would give 0).

At 04-30, by cohort (USD):
  2024-01  A, B  1500.00  200 + 300 + 100 = 600.00  0.400000
  2024-02  C        0.00                     50.00  null (nothing written off)
  2024-03  D      200.00          150 + 100 = 250.00  1.250000 (recoveries beyond the principal)
  (all)    4     1700.00                    900.00  900/1700 = 0.529411… → 0.529412
By month: 2024-01 200 (0.133333), 02 100 → 300 (0.200000), 03 300 → 600 (0.400000), 04 0 → 600;
2024-02's C 50 then nothing (null rates); 2024-03's D 150 (0.750000) then 100 → 250 (1.250000).
(all) per month: 01 2 loans 1500.00, 200 → 200 (0.133333); 02 3 loans 1500.00, 100 + 50 → 350
(0.233333); 03 4 loans 1700.00, 300 + 150 → 800 (0.470588); 04 100 → 900 (0.529412).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from loanwatch.reports import LoanFilter
from loanwatch.reports.recoveries import recoveries

LOANS = [  # loan, currency, amount, written off on, written off amount, recoveries (day, amount)
    ("A", "USD", 1200, "2024-01-15", "1000.00", [("2024-01-20", "200.00"), ("2024-03-05", "300.00")]),
    ("B", "USD", 600, "2024-01-31", "500.00", [("2024-02-01", "100.00")]),
    ("C", "USD", 300, "2024-02-20", "0.00", [("2024-02-25", "50.00")]),
    ("D", "USD", 400, "2024-03-20", "200.00", [("2024-03-25", "150.00"), ("2024-04-02", "100.00")]),
    ("E", "EUR", 900, "2024-02-10", "700.00", [("2024-03-01", "70.00")]),
    ("F", "GBP", 25000, "2024-04-10", "20000.00", [("2024-04-11", "0.01")]),
]
USD = LoanFilter(currency="USD")


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("""CREATE TABLE marts.dim_loans (loan_id VARCHAR, amount DECIMAL(18,2), product VARCHAR, region VARCHAR,
                   merchant_id VARCHAR, merchant_name VARCHAR, issue_date DATE, currency VARCHAR, is_cancelled BOOLEAN)""")
    con.execute("CREATE TABLE marts.fct_loan_write_offs (loan_id VARCHAR, written_off_date DATE, month VARCHAR, "
                "principal_written_off_amount DECIMAL(18,2))")
    con.execute("CREATE TABLE marts.fct_loan_recoveries (payment_id VARCHAR, loan_id VARCHAR, written_off_date DATE, "
                "paid_date DATE, month VARCHAR, recovery_amount DECIMAL(18,2))")
    con.execute("CREATE TABLE marts.data_date AS SELECT DATE '2024-04-30' AS data_date")
    for loan_id, currency, amount, day, written_off, paid in LOANS:
        con.execute("INSERT INTO marts.dim_loans VALUES (?, ?, 'cash', NULL, NULL, NULL, DATE '2024-01-01', ?, false)",
                    [loan_id, amount, currency])
        con.execute("INSERT INTO marts.fct_loan_write_offs VALUES (?, ?, ?, ?)", [loan_id, day, day[:7], written_off])
        for k, (paid_on, recovered) in enumerate(paid):
            con.execute("INSERT INTO marts.fct_loan_recoveries VALUES (?, ?, ?, ?, ?, ?)",
                        [f"{loan_id}{k}", loan_id, day, paid_on, paid_on[:7], recovered])
    yield con
    con.close()


def rows(table) -> list[tuple]:
    return [tuple(None if v is None else str(v) for v in r) for r in table.rows]


def test_by_cohort_by_hand(con):
    table = recoveries(con, f=USD)
    assert table.columns == ["cohort", "loans", "written_off_amount", "recovered", "recovery_rate"]
    assert rows(table) == [("2024-01", "2", "1500.00", "600.00", "0.400000"), ("2024-02", "1", "0.00", "50.00", None),
                           ("2024-03", "1", "200.00", "250.00", "1.250000"), ("(all)", "4", "1700.00", "900.00", "0.529412")]
    assert table.notes == []


def test_to_the_as_of_date(con):
    # 03-15: D (03-20) not written off yet, A's 300 of 03-05 counted, nothing later
    assert rows(recoveries(con, as_of=dt.date(2024, 3, 15), f=USD)) == [
        ("2024-01", "2", "1500.00", "600.00", "0.400000"), ("2024-02", "1", "0.00", "50.00", None),
        ("(all)", "3", "1500.00", "650.00", "0.433333")]
    # 03-04: A's 300 of 03-05 not yet
    assert rows(recoveries(con, as_of=dt.date(2024, 3, 4), f=USD))[0] == ("2024-01", "2", "1500.00", "300.00", "0.200000")
    assert recoveries(con, as_of=dt.date(2024, 1, 14), f=USD).rows == []


def test_by_month_by_hand(con):
    table = recoveries(con, f=USD, period="month")
    assert table.columns == ["cohort", "month", "months_since_write_off", "loans", "written_off_amount",
                             "recovered_in_month", "recovered", "recovery_rate"]
    assert rows(table) == [
        ("2024-01", "2024-01", "0", "2", "1500.00", "200.00", "200.00", "0.133333"),
        ("2024-01", "2024-02", "1", "2", "1500.00", "100.00", "300.00", "0.200000"),
        ("2024-01", "2024-03", "2", "2", "1500.00", "300.00", "600.00", "0.400000"),
        ("2024-01", "2024-04", "3", "2", "1500.00", "0.00", "600.00", "0.400000"),
        ("2024-02", "2024-02", "0", "1", "0.00", "50.00", "50.00", None),
        ("2024-02", "2024-03", "1", "1", "0.00", "0.00", "50.00", None),
        ("2024-02", "2024-04", "2", "1", "0.00", "0.00", "50.00", None),
        ("2024-03", "2024-03", "0", "1", "200.00", "150.00", "150.00", "0.750000"),
        ("2024-03", "2024-04", "1", "1", "200.00", "100.00", "250.00", "1.250000"),
        ("(all)", "2024-01", None, "2", "1500.00", "200.00", "200.00", "0.133333"),
        ("(all)", "2024-02", None, "3", "1500.00", "150.00", "350.00", "0.233333"),
        ("(all)", "2024-03", None, "4", "1700.00", "450.00", "800.00", "0.470588"),
        ("(all)", "2024-04", None, "4", "1700.00", "100.00", "900.00", "0.529412")]
    # each cohort's last month is its row by cohort
    by_cohort = {r[0]: r[1:] for r in rows(recoveries(con, f=USD))}
    last = {r[0]: (r[3], r[4], r[6], r[7]) for r in rows(table)}
    assert last == by_cohort


def test_by_month_to_the_as_of_date_and_not_past_the_data_date(con):
    table = recoveries(con, as_of=dt.date(2024, 3, 15), f=USD, period="month")
    assert [r[:2] for r in table.rows] == [("2024-01", "2024-01"), ("2024-01", "2024-02"), ("2024-01", "2024-03"),
                                           ("2024-02", "2024-02"), ("2024-02", "2024-03"),
                                           ("(all)", "2024-01"), ("(all)", "2024-02"), ("(all)", "2024-03")]
    assert table.rows[2][5:] == (Decimal("300.00"), Decimal("600.00"), Decimal("0.400000"))
    # a projection: the months stop at the data date's, and the note says so
    later = recoveries(con, as_of=dt.date(2024, 7, 31), f=USD, period="month")
    assert later.rows == recoveries(con, f=USD, period="month").rows
    assert later.notes == ["the months end at the data date 2024-04-30: no recovery after it is known"]


def test_a_filter_and_a_currency_choose_the_loans_and_the_rate_rounds_half_up(con):
    assert rows(recoveries(con, f=LoanFilter(currency="USD", min_amount=Decimal(500)))) == [
        ("2024-01", "2", "1500.00", "600.00", "0.400000"), ("(all)", "2", "1500.00", "600.00", "0.400000")]
    assert rows(recoveries(con, f=LoanFilter(currency="EUR"))) == [
        ("2024-02", "1", "700.00", "70.00", "0.100000"), ("(all)", "1", "700.00", "70.00", "0.100000")]
    assert rows(recoveries(con, f=LoanFilter(currency="GBP")))[0] == ("2024-04", "1", "20000.00", "0.01", "0.000001")


def test_another_period_is_refused(con):
    with pytest.raises(ValueError, match="--period 'week': use one of cohort, month"):
        recoveries(con, period="week")
