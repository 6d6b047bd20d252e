"""Delinquency figures (METRICS §3-5): overdue share by month, loans at a date, buckets, PAR,
roll rates, cure rates and vintages."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb

from loanwatch.reports import (
    NO_FILTER,
    LoanFilter,
    Table,
    as_of_date,
    data_date,
    dpd_sql,
    is_snapshot_date,
    ratio6,
    run_query,
)
from loanwatch.reports.rules import FLAGS, PAR_DAYS, amount_share, count_of, overdue_share, principal_of, timeline_flags


def _with_amounts(f: LoanFilter | None, min_amount, max_amount) -> LoanFilter:
    f = f or NO_FILTER
    if min_amount is not None or max_amount is not None:
        f = dataclasses.replace(
            f,
            min_amount=Decimal(str(min_amount)) if min_amount is not None else f.min_amount,
            max_amount=Decimal(str(max_amount)) if max_amount is not None else f.max_amount,
        )
    return f


# The snapshot dates of METRICS §4 for an as-of date: month ends from the first issue month,
# and the as-of date itself for its own month. Rows that the build precomputed (every month end
# and the data date) come from fct_loan_snapshots; any other date is looked up in the state
# timeline (the interval that contains it), with the same DPD rule as the mart, and the same flags.
_DPD_AT_DATE = dpd_sql('c.snapshot_date', 'st.dpd_counted_from_date')
_LOANS_AT_DATES = f"""
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
    SELECT c.month, c.snapshot_date, s.loan_id, s.state, s.dpd, s.is_active, {", ".join("s." + f for f in FLAGS)},
           s.principal_outstanding_amount, s.past_due_amount
    FROM calendar c
    JOIN marts.fct_loan_snapshots s ON s.snapshot_date = c.snapshot_date
    WHERE c.snapshot_date IN (SELECT snapshot_date FROM precomputed)
    UNION ALL
    SELECT c.month, c.snapshot_date, st.loan_id, st.state, {_DPD_AT_DATE}, st.is_active,
           {timeline_flags('st.state', _DPD_AT_DATE, 'st.is_active')},
           st.principal_outstanding_amount, st.past_due_amount
    FROM calendar c
    JOIN marts.fct_loan_states st ON st.valid_from <= c.snapshot_date AND c.snapshot_date < st.valid_to
    WHERE c.snapshot_date NOT IN (SELECT snapshot_date FROM precomputed)
)
"""


def overdue_monthly(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None,
                    min_amount: Decimal | float | None = None, max_amount: Decimal | float | None = None,
                    f: LoanFilter | None = None) -> Table:
    """METRICS §4: overdue share by month, count and amount versions; the filter selects loans first."""
    f = _with_amounts(f, min_amount, max_amount)
    where, params = f.sql("l")
    latest = data_date(con)
    as_of = as_of_date(con, as_of)
    params.update(as_of=as_of)
    if as_of == latest:
        # The usual case (every figure on the dashboard): every snapshot date was precomputed by
        # the build, and the snapshot rows carry the loan amount.
        source = """calendar AS (SELECT month FROM marts.snapshot_dates),
        active AS (
            SELECT month, loan_id, amount, state, is_overdue, principal_outstanding_amount
            FROM marts.fct_loan_snapshots WHERE is_active)"""
    else:
        source = _LOANS_AT_DATES + """,
        active AS (
            SELECT d.month, d.loan_id, l.amount, d.state, d.is_overdue, d.principal_outstanding_amount
            FROM loans_at_dates d JOIN marts.dim_loans l USING (loan_id)
            WHERE d.is_active)"""
    selected = (f"SELECT * FROM active AS l WHERE {where}" if f.amount_only
                else f"SELECT a.* FROM active a JOIN marts.dim_loans l USING (loan_id) WHERE {where}")
    sql = f"""
    WITH {source},
    selected AS ({selected}),
    monthly AS (
        SELECT month,
               count(*) AS loans_active,
               {count_of('is_overdue')} AS loans_overdue,
               sum(principal_outstanding_amount) AS principal_outstanding,
               {principal_of('is_overdue', 'principal_outstanding_amount')} AS principal_overdue
        FROM selected GROUP BY month
    )
    SELECT c.month,
           coalesce(m.loans_active, 0) AS loans_active,
           coalesce(m.loans_overdue, 0) AS loans_overdue,
           {overdue_share('m.loans_overdue', 'm.loans_active')} AS overdue_share,
           CAST(coalesce(m.principal_outstanding, 0) AS DECIMAL(38,2)) AS principal_outstanding,
           CAST(coalesce(m.principal_overdue, 0) AS DECIMAL(38,2)) AS principal_overdue,
           {amount_share('m.principal_overdue', 'coalesce(m.principal_outstanding, 0)')} AS overdue_amount_share
    FROM calendar c LEFT JOIN monthly m USING (month)
    ORDER BY c.month
    """
    return run_query(con, sql, params)


# Every loan at one date (METRICS §3): the state interval containing the date, with the DPD
# rule of the marts, the snapshot's flags and the bucket bounds of marts.dpd_buckets.
_DPD_AS_OF = dpd_sql('$as_of', 'st.dpd_counted_from_date')
LOANS_AT = f"""
at_date AS (
    SELECT st.loan_id, st.state, st.principal_outstanding_amount, st.past_due_amount, st.charges_past_due_amount,
           {_DPD_AS_OF} AS dpd, st.is_active, {timeline_flags('st.state', _DPD_AS_OF, 'st.is_active')}
    FROM marts.fct_loan_states st
    WHERE st.valid_from <= $as_of AND $as_of < st.valid_to
),
loans_at AS (
    SELECT l.*,
           CASE WHEN l.is_cancelled THEN 'cancelled'
                WHEN l.issue_date > $as_of THEN 'not_issued'
                ELSE coalesce(a.state, 'not_issued') END AS state,
           coalesce(a.dpd, 0) AS dpd,
           coalesce(a.is_active, false) AS is_active,
           {", ".join(f"coalesce(a.{flag}, false) AS {flag}" for flag in FLAGS)},
           b.bucket,
           b.sort_order AS bucket_order,
           CAST(coalesce(a.principal_outstanding_amount, 0) AS DECIMAL(38,2)) AS principal_outstanding,
           CAST(coalesce(a.past_due_amount, 0) AS DECIMAL(38,2)) AS past_due_amount,
           CAST(coalesce(a.charges_past_due_amount, 0) AS DECIMAL(38,2)) AS charges_past_due
    FROM marts.dim_loans l
    LEFT JOIN at_date a ON a.loan_id = l.loan_id
    LEFT JOIN marts.dpd_buckets b
        ON a.is_active AND a.dpd BETWEEN b.min_dpd AND b.max_dpd
)
"""


def loans(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None,
          min_amount=None, max_amount=None, f: LoanFilter | None = None) -> Table:
    """One row per loan at the as-of date (METRICS §3)."""
    where, params = _with_amounts(f, min_amount, max_amount).sql("l")
    params.update(as_of=as_of_date(con, as_of))
    sql = f"""
    WITH {LOANS_AT}
    SELECT loan_id, client_id, amount, state, dpd, bucket, principal_outstanding, past_due_amount, charges_past_due
    FROM loans_at AS l WHERE {where}
    ORDER BY loan_id
    """
    return run_query(con, sql, params)


def _loans_at(con, as_of: dt.date) -> str:
    """The loans_at CTE for a date: the precomputed snapshot rows when the build made them (all
    active loans, and loans that left the book since the previous snapshot, at month ends and the
    data date), else the state timeline. Figures over active loans are the same either way."""
    if not is_snapshot_date(con, as_of):
        return LOANS_AT
    return f"""
loans_at AS (
    SELECT l.*, s.state, s.dpd, s.is_active, {", ".join("s." + f for f in FLAGS)}, s.bucket,
           CAST(s.principal_outstanding_amount AS DECIMAL(38,2)) AS principal_outstanding,
           CAST(s.past_due_amount AS DECIMAL(38,2)) AS past_due_amount,
           CAST(s.charges_past_due_amount AS DECIMAL(38,2)) AS charges_past_due
    FROM marts.fct_loan_snapshots s JOIN marts.dim_loans l USING (loan_id)
    WHERE s.snapshot_date = $as_of AND s.is_active
)
"""


def summary(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None) -> dict[str, Any]:
    """Headline figures at the as-of date: loans, active, overdue share, principal, PAR30, NPL."""
    where, params = (f or NO_FILTER).sql("l")
    as_of = as_of_date(con, as_of)
    params.update(as_of=as_of)
    loans_issued = f"(SELECT count(*) FROM marts.dim_loans l WHERE NOT l.is_cancelled AND l.issue_date <= $as_of AND {where})"
    sql = f"""
    WITH {_loans_at(con, as_of)},
    totals AS (
        SELECT {loans_issued} AS loans,
               {count_of('is_active')} AS active,
               {count_of('is_overdue')} AS overdue,
               {principal_of('is_active')} AS outstanding,
               {principal_of('is_overdue')} AS overdue_principal,
               {principal_of('is_par30')} AS over30,
               {principal_of('is_par90')} AS over90
        FROM loans_at AS l WHERE {where}
    )
    SELECT $as_of AS as_of, loans, active, overdue,
           {overdue_share('overdue', 'active')} AS overdue_share,
           CAST(outstanding AS DECIMAL(38,2)) AS principal_outstanding,
           {amount_share('overdue_principal', 'outstanding')} AS overdue_amount_share,
           {amount_share('over30', 'outstanding')} AS par30,
           {amount_share('over90', 'outstanding')} AS npl
    FROM totals
    """
    return run_query(con, sql, params).as_dicts()[0]


def summary_table(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None) -> Table:
    """summary() as a one-row table (the registry's `summary` report)."""
    row = summary(con, as_of=as_of, f=f)
    return Table(list(row), [tuple(row.values())])


# The rows after the buckets in `buckets`: the portfolio-at-risk thresholds (rules.PAR_DAYS), and NPL.
PAR_ROWS = (*(f"PAR{x}" for x in PAR_DAYS), "NPL")


def buckets(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None) -> Table:
    """Active loans and principal by DPD bucket at the as-of date, then PAR30/60/90 and NPL
    (METRICS §5) as rows of the same shape: share = principal / all active principal."""
    where, params = (f or NO_FILTER).sql("l")
    as_of = as_of_date(con, as_of)
    params.update(as_of=as_of)
    sql = f"""
    WITH {_loans_at(con, as_of)},
    active AS (SELECT * FROM loans_at AS l WHERE is_active AND {where}),
    total AS (SELECT coalesce(sum(principal_outstanding), 0) AS principal FROM active),
    by_bucket AS (
        SELECT b.bucket AS name, b.sort_order, count(a.loan_id) AS loans,
               coalesce(sum(a.principal_outstanding), 0) AS principal
        FROM marts.dpd_buckets b LEFT JOIN active a ON a.bucket = b.bucket
        GROUP BY b.bucket, b.sort_order
    ),
    par AS (
        {" UNION ALL ".join(f"SELECT 'PAR{x}' AS name, {100 + x} AS sort_order, {count_of(f'is_par{x}')} AS loans, "
                            f"{principal_of(f'is_par{x}')} AS principal FROM active" for x in PAR_DAYS)}
    ),
    npl AS (SELECT 'NPL' AS name, 200 AS sort_order, loans, principal FROM par WHERE name = 'PAR90'),
    rows AS (SELECT * FROM by_bucket UNION ALL SELECT * FROM par UNION ALL SELECT * FROM npl)
    SELECT name AS bucket, loans, CAST(principal AS DECIMAL(38,2)) AS principal_outstanding,
           {ratio6('round(principal * 100)', 'round((SELECT principal FROM total) * 100)')} AS share
    FROM rows ORDER BY sort_order
    """
    return run_query(con, sql, params)


# The selected loans' rows of marts.fct_loan_transitions, and the cures per month among those past
# due at S(m-1): shared by roll_rates (its 'overdue -> cured' rows) and cure_rates.
_TRANSITIONS = """
transitions AS (
    SELECT t.*, fb.sort_order AS from_order
    FROM marts.fct_loan_transitions t
    JOIN marts.dpd_buckets fb ON fb.bucket = t.from_bucket
    JOIN marts.dim_loans l ON l.loan_id = t.loan_id
    WHERE {where}
)"""
_CURE = """
cure AS (
    SELECT month, 'overdue' AS from_bucket, 99 AS from_order, 'cured' AS to_bucket,
           count(*) FILTER (WHERE is_cure) AS loans,
           coalesce(sum(rolled_principal_amount) FILTER (WHERE is_cure), 0) AS principal,
           sum(principal_before_amount) AS principal_from
    FROM transitions WHERE from_bucket <> 'current' GROUP BY month
)"""


def roll_rates(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """The bucket-to-bucket transition matrix per month, long form (METRICS §5), from the loan
    transitions of marts.fct_loan_transitions.

    rate(i -> j) = principal at S(m) of loans now in j that were in i at S(m-1) / principal at
    S(m-1) of bucket i. For loans that closed or were written off the numerator is their principal
    at S(m-1) (the mart's rolled_principal_amount). The cure rate per month follows as from_bucket
    'overdue', to_bucket 'cured': the mart's cures over the principal of every loan past due at S(m-1).
    """
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    WITH {_TRANSITIONS.format(where=where)},
    bucket_totals AS (
        SELECT month, from_bucket, sum(principal_before_amount) AS principal_from FROM transitions GROUP BY 1, 2
    ),
    cells AS (
        SELECT month, from_bucket, any_value(from_order) AS from_order, to_bucket, count(*) AS loans,
               sum(rolled_principal_amount) AS principal
        FROM transitions GROUP BY month, from_bucket, to_bucket
    ),
    {_CURE},
    all_rows AS (
        SELECT c.month, c.from_bucket, c.from_order, c.to_bucket, c.loans, c.principal, t.principal_from
        FROM cells c JOIN bucket_totals t USING (month, from_bucket)
        UNION ALL
        SELECT month, from_bucket, from_order, to_bucket, loans, principal, principal_from FROM cure
    )
    SELECT a.month, a.from_bucket, a.to_bucket, a.loans,
           CAST(a.principal AS DECIMAL(38,2)) AS principal,
           CAST(a.principal_from AS DECIMAL(38,2)) AS principal_from,
           {ratio6('round(a.principal * 100)', 'round(a.principal_from * 100)')} AS rate
    FROM all_rows a
    LEFT JOIN marts.dpd_buckets tb ON tb.bucket = a.to_bucket
    ORDER BY a.month, a.from_order, coalesce(tb.sort_order, CASE a.to_bucket WHEN 'closed' THEN 10 WHEN 'written_off' THEN 11 ELSE 12 END)
    """
    return run_query(con, sql, params)


def cure_rates(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """The cure rate per month (METRICS §5): the 'overdue -> cured' rows of roll_rates, read from
    the same CTEs without computing the rest of the matrix."""
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    WITH {_TRANSITIONS.format(where=where)}, {_CURE}
    SELECT month, loans AS loans_cured, CAST(principal AS DECIMAL(38,2)) AS principal_cured,
           CAST(principal_from AS DECIMAL(38,2)) AS principal_overdue_before,
           {ratio6('round(principal * 100)', 'round(principal_from * 100)')} AS cure_rate
    FROM cure ORDER BY month
    """
    return run_query(con, sql, params)


def vintages(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """Ever-30+/60+/90+ by issue-month cohort and months on book (METRICS §5): the share of the
    cohort's amount whose loans reached DPD > X at a snapshot within k months on book
    (marts.fct_loan_milestones' months_to_dpdX <= k)."""
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    WITH cohort AS (
        SELECT l.loan_id, l.amount, m.cohort, {", ".join(f"m.months_to_dpd{x}" for x in PAR_DAYS)}
        FROM marts.dim_loans l JOIN marts.fct_loan_milestones m USING (loan_id)
        WHERE {where}
    ),
    last_month AS (SELECT max(month) AS m FROM marts.snapshot_dates),
    grid AS (
        SELECT c.cohort, k.k
        FROM (SELECT DISTINCT cohort FROM cohort) c, last_month,
             generate_series(0, date_diff('month', strptime(c.cohort, '%Y-%m'), strptime(last_month.m, '%Y-%m'))) AS k(k)
    ),
    sizes AS (SELECT cohort, count(*) AS loans, sum(amount) AS amount FROM cohort GROUP BY 1)
    SELECT g.cohort, g.k AS months_on_book, s.loans,
           CAST(s.amount AS DECIMAL(38,2)) AS amount,
           {", ".join(f"{amount_share(f'coalesce(sum(c.amount) FILTER (WHERE c.months_to_dpd{x} <= g.k), 0)', 's.amount')} AS ever{x}_share"
                      for x in PAR_DAYS)}
    FROM grid g
    JOIN sizes s USING (cohort)
    JOIN cohort c USING (cohort)
    GROUP BY g.cohort, g.k, s.loans, s.amount
    ORDER BY g.cohort, g.k
    """
    return run_query(con, sql, params)


def par_monthly(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """PAR30, PAR60, PAR90 at every month end (and the data date) (METRICS §5)."""
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    WITH active AS (
        SELECT s.month, s.principal_outstanding_amount AS principal, {", ".join("s." + f for f in FLAGS)}
        FROM marts.fct_loan_snapshots s JOIN marts.dim_loans l USING (loan_id)
        WHERE s.is_active AND {where}
    ),
    monthly AS (
        SELECT month, sum(principal) AS total,
               {", ".join(f"{principal_of(f'is_par{x}', 'principal')} AS p{x}" for x in PAR_DAYS)}
        FROM active GROUP BY month
    )
    SELECT d.month, CAST(coalesce(m.total, 0) AS DECIMAL(38,2)) AS principal_outstanding,
           {", ".join(f"{amount_share(f'm.p{x}', 'coalesce(m.total, 0)')} AS par{x}" for x in PAR_DAYS)}
    FROM marts.snapshot_dates d LEFT JOIN monthly m USING (month)
    ORDER BY d.month
    """
    return run_query(con, sql, params)
