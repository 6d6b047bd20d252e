"""The queries behind `loanwatch report …` and the dashboard, over the serving snapshot.

Per-loan figures (state, DPD, balances) are computed once, in the dbt marts; this module only
filters them at loan grain and aggregates. The dashboard and the HTML report call these same
functions, so a figure has one definition. All values are bound as parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _table(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Table:
    cur = con.execute(sql, params)
    return Table([d[0] for d in cur.description], cur.fetchall())


def data_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    return con.execute("SELECT max(snapshot_date) FROM marts.snapshot_dates").fetchone()[0]


# Exact half-up rounding of a ratio of non-negative integers to 6 decimals, as METRICS asks:
# floor((2 a 10^6 + b) / (2 b)) / 10^6. Amounts enter as integer cents.
def _ratio6(num: str, den: str) -> str:
    return (
        f"CASE WHEN ({den}) = 0 THEN NULL ELSE CAST(CAST(((2 * ({num})::HUGEINT * 1000000 + ({den})::HUGEINT) "
        f"// (2 * ({den})::HUGEINT)) AS DECIMAL(38,0)) * CAST(0.000001 AS DECIMAL(7,6)) AS DECIMAL(18,6)) END"
    )


# The snapshot dates of METRICS §4 for an as-of date: month ends from the first issue month,
# and the as-of date itself for its own month. Rows that the build precomputed (every month end
# and the data date) come from fct_loan_snapshots; any other date is looked up in the state
# timeline (the interval that contains it), with the same DPD rule as the mart.
_LOANS_AT_DATES = """
calendar AS (
    SELECT strftime(m, '%Y-%m') AS month,
           CASE WHEN last_day(m) > $as_of THEN $as_of ELSE last_day(m) END AS snapshot_date
    FROM generate_series(
        (SELECT min(month_start) FROM marts.snapshot_dates),
        date_trunc('month', $as_of), INTERVAL 1 MONTH) AS g(m)
),
precomputed AS (
    SELECT snapshot_date FROM marts.snapshot_dates
),
loans_at_dates AS (
    SELECT c.month, c.snapshot_date, s.loan_id, s.amount, s.state, s.dpd,
           s.principal_outstanding_amount, s.past_due_amount
    FROM calendar c
    JOIN marts.fct_loan_snapshots s ON s.snapshot_date = c.snapshot_date
    WHERE c.snapshot_date IN (SELECT snapshot_date FROM precomputed)
    UNION ALL
    SELECT c.month, c.snapshot_date, st.loan_id, l.amount, st.state,
           CASE WHEN st.overdue_since_date IS NULL THEN 0
                ELSE (c.snapshot_date - st.overdue_since_date) + $due_day END,
           st.principal_outstanding_amount, st.past_due_amount
    FROM calendar c
    JOIN marts.fct_loan_states st ON st.valid_from <= c.snapshot_date AND c.snapshot_date < st.valid_to
    JOIN marts.dim_loans l ON l.loan_id = st.loan_id
    WHERE c.snapshot_date NOT IN (SELECT snapshot_date FROM precomputed)
)
"""


def _filters(min_amount, max_amount) -> tuple[str, dict[str, Any]]:
    return (
        "($min_amount IS NULL OR amount >= $min_amount) AND ($max_amount IS NULL OR amount <= $max_amount)",
        {"min_amount": min_amount, "max_amount": max_amount},
    )


def _as_of(con, as_of: dt.date | None) -> dt.date:
    chosen = as_of or data_date(con)
    if chosen is None:
        raise ValueError("the warehouse has no loans yet: nothing to report")
    return chosen


def _due_day(con) -> int:
    """The DPD convention of the build that made this snapshot (METRICS §3 option)."""
    row = con.execute("SELECT any_value(dpd_offset) FROM marts.snapshot_dates").fetchone()
    return int(row[0] or 0)


def overdue_monthly(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None,
                    min_amount: Decimal | float | None = None, max_amount: Decimal | float | None = None) -> Table:
    """METRICS §4: overdue share by month, count and amount versions, amount filter at loan grain."""
    where, params = _filters(min_amount, max_amount)
    params.update(as_of=_as_of(con, as_of), due_day=_due_day(con))
    sql = f"""
    WITH {_LOANS_AT_DATES},
    selected AS (
        SELECT * FROM loans_at_dates WHERE state IN ('current', 'overdue') AND {where}
    ),
    monthly AS (
        SELECT month,
               count(*) AS loans_active,
               count(*) FILTER (WHERE state = 'overdue') AS loans_overdue,
               sum(principal_outstanding_amount) AS principal_outstanding,
               coalesce(sum(principal_outstanding_amount) FILTER (WHERE state = 'overdue'), 0) AS principal_overdue
        FROM selected GROUP BY month
    )
    SELECT c.month,
           coalesce(m.loans_active, 0) AS loans_active,
           coalesce(m.loans_overdue, 0) AS loans_overdue,
           {_ratio6('m.loans_overdue', 'm.loans_active')} AS overdue_share,
           CAST(coalesce(m.principal_outstanding, 0) AS DECIMAL(18,2)) AS principal_outstanding,
           CAST(coalesce(m.principal_overdue, 0) AS DECIMAL(18,2)) AS principal_overdue,
           {_ratio6('round(m.principal_overdue * 100)', 'round(coalesce(m.principal_outstanding, 0) * 100)')} AS overdue_amount_share
    FROM calendar c LEFT JOIN monthly m USING (month)
    ORDER BY c.month
    """
    return _table(con, sql, params)


# Every loan at one date (METRICS §3): the state interval containing the date, with the DPD
# rule of the marts and the bucket bounds of marts.dpd_buckets.
_LOANS_AT = """
at_date AS (
    SELECT st.loan_id, st.state, st.principal_outstanding_amount, st.past_due_amount,
           CASE WHEN st.overdue_since_date IS NULL THEN 0
                ELSE ($as_of - st.overdue_since_date) + $due_day END AS dpd
    FROM marts.fct_loan_states st
    WHERE st.valid_from <= $as_of AND $as_of < st.valid_to
),
loans_at AS (
    SELECT l.loan_id, l.client_id, l.amount,
           CASE WHEN l.is_cancelled THEN 'cancelled'
                WHEN l.issue_date > $as_of THEN 'not_issued'
                ELSE coalesce(a.state, 'not_issued') END AS state,
           coalesce(a.dpd, 0) AS dpd,
           b.bucket,
           CAST(coalesce(a.principal_outstanding_amount, 0) AS DECIMAL(18,2)) AS principal_outstanding,
           CAST(coalesce(a.past_due_amount, 0) AS DECIMAL(18,2)) AS past_due_amount
    FROM marts.dim_loans l
    LEFT JOIN at_date a ON a.loan_id = l.loan_id
    LEFT JOIN marts.dpd_buckets b
        ON a.state IN ('current', 'overdue') AND a.dpd BETWEEN b.min_dpd AND b.max_dpd
)
"""


def loans(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None,
          min_amount=None, max_amount=None) -> Table:
    """One row per loan at the as-of date (METRICS §3)."""
    where, params = _filters(min_amount, max_amount)
    params.update(as_of=_as_of(con, as_of), due_day=_due_day(con))
    sql = f"""
    WITH {_LOANS_AT}
    SELECT loan_id, client_id, amount, state, dpd, bucket, principal_outstanding, past_due_amount
    FROM loans_at WHERE {where}
    ORDER BY loan_id
    """
    return _table(con, sql, params)


def summary(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> dict[str, Any]:
    """Headline figures at the as-of date: loans, active, overdue share, PAR30 (METRICS §4-5)."""
    params = {"as_of": _as_of(con, as_of), "due_day": _due_day(con)}
    sql = f"""
    WITH {_LOANS_AT},
    totals AS (
        SELECT count(*) FILTER (WHERE state <> 'cancelled') AS loans,
               count(*) FILTER (WHERE state IN ('current', 'overdue')) AS active,
               count(*) FILTER (WHERE state = 'overdue') AS overdue,
               coalesce(sum(principal_outstanding) FILTER (WHERE state IN ('current', 'overdue')), 0) AS outstanding,
               coalesce(sum(principal_outstanding) FILTER (WHERE state IN ('current', 'overdue') AND dpd > 30), 0) AS over30
        FROM loans_at
    )
    SELECT $as_of AS as_of, loans, active, overdue,
           {_ratio6('overdue', 'active')} AS overdue_share,
           CAST(outstanding AS DECIMAL(18,2)) AS principal_outstanding,
           {_ratio6('round(over30 * 100)', 'round(outstanding * 100)')} AS par30
    FROM totals
    """
    return _table(con, sql, params).as_dicts()[0]
