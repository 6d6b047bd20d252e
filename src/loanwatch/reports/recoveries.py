"""Recoveries and the recovery rate by write-off cohort (METRICS §5), at an as-of date.

The marts hold each write-off (fct_loan_write_offs: the day, its month, the principal outstanding
the day before, the written-off amount) and each recovery (fct_loan_recoveries: an effective
payment of a written-off loan on or after its write-off date). What depends on the as-of date D is
here: the loans written off on or before D that the filters select, grouped by the month of their
write-off (the cohort), and their recoveries paid on or before D ("to date").

- ``--period cohort``: one row per cohort, then ``(all)``: loans, written-off amount, recoveries to
  D, recovery rate = recoveries / written-off amount.
- ``--period month``: one row per cohort and calendar month, from the cohort's month to D's (or the
  data date's, when D is after it: no later payment is known), then ``(all)`` per month: the
  month's recoveries, the recoveries to the end of that month and the rate on them, so that a
  cohort's last row is its row of ``--period cohort`` and its rows draw its recovery curve.

Amounts sum exactly in decimal; the rate is the exact quotient of integer cents rounded half-up to
6 decimals (``ratio6``), null when nothing was on the book at the write-offs. It exceeds 1 when the
recoveries (whole payments: interest and fees too) exceed the principal written off.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from loanwatch.reports import NO_FILTER, LoanFilter, as_of_date, data_date, ratio6, run_query
from loanwatch.reports.table import Noted

PERIODS = ("cohort", "month")
ALL = "(all)"

_RATE = ratio6("CAST(recovered * 100 AS HUGEINT)", "CAST(written_off * 100 AS HUGEINT)")

# The write-offs on or before $as_of of the loans the filter selects ({where} over dim_loans as l).
_WRITTEN = """
written AS (
    SELECT w.loan_id, w.month AS cohort, w.principal_written_off_amount AS amount
    FROM marts.fct_loan_write_offs w JOIN marts.dim_loans l USING (loan_id)
    WHERE w.written_off_date <= $as_of AND {where}
)"""

_BY_COHORT = f"""
WITH {_WRITTEN},
recovered AS (
    SELECT r.loan_id, sum(r.recovery_amount) AS amount
    FROM marts.fct_loan_recoveries r SEMI JOIN written USING (loan_id)
    WHERE r.paid_date <= $as_of GROUP BY r.loan_id
),
per_loan AS (
    SELECT w.cohort, w.amount AS written_off, coalesce(r.amount, 0) AS recovered
    FROM written w LEFT JOIN recovered r USING (loan_id)
),
cohorts AS (
    SELECT cohort, 0 AS is_total, count(*) AS loans, sum(written_off) AS written_off, sum(recovered) AS recovered
    FROM per_loan GROUP BY cohort
    UNION ALL
    SELECT '{ALL}', 1, count(*), sum(written_off), sum(recovered) FROM per_loan HAVING count(*) > 0
)
SELECT cohort, loans, CAST(written_off AS DECIMAL(38,2)) AS written_off_amount,
       CAST(recovered AS DECIMAL(38,2)) AS recovered, {_RATE} AS recovery_rate
FROM cohorts ORDER BY is_total, cohort
"""

# Every month of every cohort from its own to $last_month (a curve has a point each month, nothing
# recovered or not); recovered: to the end of the month, the running sum of the months' recoveries.
_BY_MONTH = f"""
WITH {_WRITTEN},
cohorts AS (
    SELECT cohort, count(*) AS loans, sum(amount) AS written_off FROM written GROUP BY cohort
),
grid AS (
    SELECT c.cohort, c.loans, c.written_off, strftime(g.month_start, '%Y-%m') AS month,
           date_diff('month', CAST(c.cohort || '-01' AS DATE), CAST(g.month_start AS DATE)) AS months_since
    FROM cohorts c, LATERAL (
        SELECT unnest(generate_series(CAST(c.cohort || '-01' AS DATE), CAST($last_month AS DATE), INTERVAL 1 MONTH))
               AS month_start) g
),
monthly AS (
    SELECT w.cohort, r.month, sum(r.recovery_amount) AS amount
    FROM marts.fct_loan_recoveries r JOIN written w USING (loan_id)
    WHERE r.paid_date <= $as_of GROUP BY w.cohort, r.month
),
cells AS (
    SELECT g.cohort, g.month, g.months_since, g.loans, g.written_off, coalesce(m.amount, 0) AS in_month,
           sum(coalesce(m.amount, 0)) OVER (PARTITION BY g.cohort ORDER BY g.month) AS recovered
    FROM grid g LEFT JOIN monthly m USING (cohort, month)
),
rows AS (
    SELECT cohort, 0 AS is_total, month, months_since, loans, written_off, in_month, recovered FROM cells
    UNION ALL   -- every cohort written off by the month's end is in that month's grid
    SELECT '{ALL}', 1, month, NULL, sum(loans), sum(written_off), sum(in_month), sum(recovered)
    FROM cells GROUP BY month
)
SELECT cohort, month, months_since AS months_since_write_off, CAST(loans AS BIGINT) AS loans,
       CAST(written_off AS DECIMAL(38,2)) AS written_off_amount, CAST(in_month AS DECIMAL(38,2)) AS recovered_in_month,
       CAST(recovered AS DECIMAL(38,2)) AS recovered, {_RATE} AS recovery_rate
FROM rows ORDER BY is_total, cohort, month
"""


def recoveries(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None,
               period: str = "cohort") -> Noted:
    """`report recoveries` (METRICS §5): the loans the filters select written off on or before the
    as-of date (default the data date), by the month of their write-off (cohort), with their
    written-off amount and their recoveries paid on or before it; the recovery rate = recoveries /
    written-off amount (6 decimals, half-up; null when that amount is 0). period cohort: one row
    per cohort, then (all); month: one row per cohort and month from the cohort's to the as-of
    date's (the data date's when later), recovered_in_month and recovered (to the month's end) with
    the rate on the latter, then (all) per month (the cohorts written off by then)."""
    if period not in PERIODS:
        raise ValueError(f"--period {period!r}: use one of {', '.join(PERIODS)}")
    day = as_of_date(con, as_of)
    where, params = (f or NO_FILTER).sql("l")
    params["as_of"] = day
    if period == "cohort":
        table = run_query(con, _BY_COHORT.format(where=where), params)
        return Noted(table.columns, table.rows)
    latest = data_date(con)
    last = min(day, latest) if latest is not None else day
    params["last_month"] = last.replace(day=1)
    notes = []
    if last < day:
        notes.append(f"the months end at the data date {latest}: no recovery after it is known")
    table = run_query(con, _BY_MONTH.format(where=where), params)
    return Noted(table.columns, table.rows, notes)
