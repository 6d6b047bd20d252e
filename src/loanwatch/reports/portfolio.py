"""Portfolio figures (METRICS §5): disbursed, revenue and collection efficiency, regions, risk and
fraud-score impact, product and merchant preference, repeat borrowing, client profit."""

from __future__ import annotations

import datetime as dt

import duckdb

from loanwatch.reports import NO_FILTER, LoanFilter, Table, as_of_date, ratio6, run_query
from loanwatch.reports.delinquency import LOANS_AT
from loanwatch.reports.rules import amount_share, count_of, overdue_share, principal_of


def disbursed(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """Loans and amount disbursed per issue month (non-cancelled loans)."""
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    SELECT strftime(l.issue_date, '%Y-%m') AS month, count(*) AS loans,
           CAST(sum(l.amount) AS DECIMAL(38,2)) AS amount
    FROM marts.dim_loans l WHERE NOT l.is_cancelled AND {where}
    GROUP BY 1 ORDER BY 1
    """
    return run_query(con, sql, params)


def revenue(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
    """Per month: interest collected (interest allocated by the payments of the month) and
    collection efficiency (what has been paid against the instalments due in the month / what
    was due in it)."""
    where, params = (f or NO_FILTER).sql("l")
    sql = f"""
    WITH selected AS (SELECT loan_id FROM marts.dim_loans l WHERE NOT l.is_cancelled AND {where}),
    interest AS (
        SELECT strftime(p.paid_date, '%Y-%m') AS month, sum(p.interest_amount) AS interest
        FROM marts.fct_payment_allocations p SEMI JOIN selected USING (loan_id) GROUP BY 1
    ),
    dues AS (
        SELECT strftime(i.due_date, '%Y-%m') AS month, sum(i.due_amount) AS due, sum(i.allocated_amount) AS collected
        FROM marts.fct_instalments i SEMI JOIN selected USING (loan_id)
        WHERE i.due_date <= (SELECT max(snapshot_date) FROM marts.snapshot_dates)
        GROUP BY 1
    )
    SELECT month,
           CAST(coalesce(i.interest, 0) AS DECIMAL(38,2)) AS interest_revenue,
           CAST(coalesce(d.due, 0) AS DECIMAL(38,2)) AS due_amount,
           CAST(coalesce(d.collected, 0) AS DECIMAL(38,2)) AS collected_amount,
           {ratio6('round(d.collected * 100)', 'round(d.due * 100)')} AS collection_efficiency
    FROM interest i FULL JOIN dues d USING (month)
    ORDER BY month
    """
    return run_query(con, sql, params)


def regions(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None) -> Table:
    """Per client region at the as-of date: loans, active loans, principal outstanding, overdue share."""
    where, params = (f or NO_FILTER).sql("l")
    params.update(as_of=as_of_date(con, as_of))
    sql = f"""
    WITH {LOANS_AT}
    SELECT coalesce(l.region, '(unknown)') AS region,
           count(*) FILTER (WHERE state NOT IN ('cancelled', 'not_issued')) AS loans,
           {count_of('is_active')} AS active,
           {count_of('is_overdue')} AS overdue,
           CAST(coalesce(sum(principal_outstanding), 0) AS DECIMAL(38,2)) AS principal_outstanding,
           CAST({principal_of('is_overdue')} AS DECIMAL(38,2)) AS principal_overdue,
           {overdue_share()} AS overdue_share,
           {amount_share(principal_of('is_overdue'), 'coalesce(sum(principal_outstanding), 0)')} AS overdue_amount_share
    FROM loans_at AS l WHERE {where}
    GROUP BY 1
    HAVING count(*) FILTER (WHERE state NOT IN ('cancelled', 'not_issued')) > 0
    ORDER BY principal_outstanding DESC, region
    """
    return run_query(con, sql, params)


def risk(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None) -> Table:
    """By risk-score band and by fraud-score band (bands of 0.2): loans, overdue share at the
    as-of date, ever-60+ share of loans, and write-off rate (share of loans written off by then)."""
    where, params = (f or NO_FILTER).sql("l")
    params.update(as_of=as_of_date(con, as_of))
    sql = f"""
    WITH {LOANS_AT},
    issued AS (
        SELECT l.*, m.first_dpd60_date IS NOT NULL AS was_dpd60
        FROM loans_at AS l LEFT JOIN marts.fct_loan_milestones m USING (loan_id)
        WHERE l.state NOT IN ('cancelled', 'not_issued') AND {where}
    ),
    banded AS (
        SELECT 'risk_score' AS score, risk_score AS value, * EXCLUDE (risk_score, fraud_score) FROM issued
        UNION ALL
        SELECT 'fraud_score', fraud_score, * EXCLUDE (risk_score, fraud_score) FROM issued
    )
    SELECT score,
           CASE WHEN value IS NULL THEN '(none)'
                ELSE format('{{:.1f}}-{{:.1f}}', least(floor(value * 5), 4) / 5, least(floor(value * 5), 4) / 5 + 0.2) END AS band,
           count(*) AS loans,
           {overdue_share()} AS overdue_share,
           {ratio6("count(*) FILTER (WHERE was_dpd60)", "count(*)")} AS ever60_share,
           {ratio6("count(*) FILTER (WHERE state = 'written_off')", "count(*)")} AS write_off_rate
    FROM banded GROUP BY 1, 2 ORDER BY 1 DESC, 2
    """
    return run_query(con, sql, params)


def products(con: duckdb.DuckDBPyConnection, view: str = "terms", as_of: dt.date | None = None,
             f: LoanFilter | None = None, top: int = 20) -> Table:
    """Term preference (loans and amount by product and term) or merchant preference (top
    merchants by loans, with amount and overdue share at the as-of date)."""
    where, params = (f or NO_FILTER).sql("l")
    if view == "terms":
        sql = f"""
        SELECT coalesce(l.product, '(none)') AS product,
               CASE WHEN l.term_months IS NULL THEN 'schedule' ELSE CAST(l.term_months AS VARCHAR) END AS term,
               count(*) AS loans, CAST(sum(l.amount) AS DECIMAL(38,2)) AS amount,
               {ratio6('count(*)', '(SELECT count(*) FROM marts.dim_loans l WHERE NOT l.is_cancelled AND ' + where + ')')} AS share_of_loans
        FROM marts.dim_loans l WHERE NOT l.is_cancelled AND {where}
        GROUP BY 1, 2 ORDER BY loans DESC, 1, 2
        """
        return run_query(con, sql, params)
    if view != "merchants":
        raise ValueError("view: terms or merchants")
    params.update(as_of=as_of_date(con, as_of), top=top)
    sql = f"""
    WITH {LOANS_AT}
    SELECT l.merchant_id, any_value(l.merchant_name) AS merchant_name,
           count(*) AS loans, CAST(sum(l.amount) AS DECIMAL(38,2)) AS amount,
           {count_of('is_active')} AS active,
           {overdue_share()} AS overdue_share
    FROM loans_at AS l
    WHERE l.merchant_id IS NOT NULL AND l.state NOT IN ('cancelled', 'not_issued') AND {where}
    GROUP BY l.merchant_id ORDER BY loans DESC, amount DESC, l.merchant_id LIMIT $top
    """
    return run_query(con, sql, params)


def clients(con: duckdb.DuckDBPyConnection, view: str = "repeat", f: LoanFilter | None = None, top: int = 10) -> Table:
    """Repeat borrowing (loans by the client's nth loan, and of the clients who took an nth loan the
    share who took another: on the first row, the share of repeat clients), top and bottom
    clients by profit (paid - lent), or default rate by interest-rate band (default: written off
    or ever more than 90 days past due)."""
    where, params = (f or NO_FILTER).sql("l")
    selected = f"SELECT * FROM marts.dim_loans l WHERE NOT l.is_cancelled AND {where}"
    if view == "repeat":
        sql = f"""
        WITH sel AS ({selected}),
        nth AS (
            SELECT client_id, row_number() OVER (PARTITION BY client_id ORDER BY issue_date, loan_id) AS n FROM sel
        ),
        per_client AS (SELECT client_id, count(*) AS loans FROM sel GROUP BY client_id),
        -- of the clients who took a kth loan (4: a 4th or later), how many took another
        funnel AS (
            SELECT k, count(*) FILTER (WHERE loans >= k) AS reached, count(*) FILTER (WHERE loans > k) AS again
            FROM per_client CROSS JOIN generate_series(1, 4) AS t(k) GROUP BY k
        )
        SELECT CASE WHEN k >= 4 THEN '4+' ELSE CAST(k AS VARCHAR) END AS nth_loan, count(*) AS loans,
               {ratio6('count(*)', '(SELECT count(*) FROM sel)')} AS share_of_loans,
               {ratio6('any_value(f.again)', 'any_value(f.reached)')} AS repeat_client_share
        FROM (SELECT least(n, 4) AS k FROM nth) x JOIN funnel f USING (k) GROUP BY k ORDER BY k
        """
    elif view == "profit":
        params["top"] = top
        sql = f"""
        WITH sel AS ({selected}),
        paid AS (
            SELECT p.loan_id, sum(p.amount) AS paid FROM marts.fct_payment_allocations p
            SEMI JOIN sel USING (loan_id) GROUP BY 1
        ),
        per_client AS (
            SELECT s.client_id, any_value(s.client_name) AS client_name, count(*) AS loans,
                   sum(s.amount) AS lent, coalesce(sum(p.paid), 0) AS paid
            FROM sel s LEFT JOIN paid p USING (loan_id) GROUP BY s.client_id
        ),
        ranked AS (
            SELECT *, paid - lent AS profit,
                   row_number() OVER (ORDER BY paid - lent DESC, client_id) AS top_rank,
                   row_number() OVER (ORDER BY paid - lent ASC, client_id) AS bottom_rank
            FROM per_client
        )
        SELECT 'top' AS "group", top_rank AS rank, client_id, client_name, loans,
               CAST(lent AS DECIMAL(38,2)) AS lent, CAST(paid AS DECIMAL(38,2)) AS paid,
               CAST(profit AS DECIMAL(38,2)) AS profit
        FROM ranked WHERE top_rank <= $top
        UNION ALL
        SELECT 'bottom', bottom_rank, client_id, client_name, loans,
               CAST(lent AS DECIMAL(38,2)), CAST(paid AS DECIMAL(38,2)), CAST(profit AS DECIMAL(38,2))
        FROM ranked WHERE bottom_rank <= $top
        ORDER BY 1 DESC, 2
        """
    elif view == "rates":
        sql = f"""
        WITH sel AS ({selected})
        SELECT format('{{:.0f}}-{{:.0f}}%', floor(s.interest_rate * 10) * 10, floor(s.interest_rate * 10) * 10 + 10) AS interest_rate_band,
               count(*) AS loans,
               count(*) FILTER (WHERE m.is_defaulted) AS defaulted,
               {ratio6("count(*) FILTER (WHERE m.is_defaulted)", "count(*)")} AS default_rate
        FROM sel s JOIN marts.fct_loan_milestones m USING (loan_id)
        GROUP BY floor(s.interest_rate * 10) ORDER BY floor(s.interest_rate * 10)
        """
    else:
        raise ValueError("view: repeat, profit or rates")
    return run_query(con, sql, params)


def weekly(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> Table:
    """The management summary: the week ending at the as-of date against the week before.
    Loans issued, amount repaid, share of instalments paid on time (by their due date, of those
    due in the week), new defaults (loans passing 90 days past due, or written off, in the week),
    overdue share and PAR30 at the end of each week."""
    from loanwatch.reports.delinquency import summary

    end = as_of_date(con, as_of)
    weeks = [("this_week", end), ("previous_week", end - dt.timedelta(days=7))]
    values: dict[str, dict[str, object]] = {}
    for name, last in weeks:
        first = last - dt.timedelta(days=6)
        p = {"first": first, "last": last}
        issued, repaid = con.execute(
            """SELECT (SELECT count(*) FROM marts.dim_loans WHERE NOT is_cancelled AND issue_date BETWEEN $first AND $last),
                      (SELECT coalesce(sum(amount), 0) FROM marts.fct_payment_allocations WHERE paid_date BETWEEN $first AND $last)""",
            p).fetchall()[0]
        due, on_time = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE i.paid_on_date <= i.due_date)
               FROM marts.fct_instalments i JOIN marts.dim_loans l USING (loan_id)
               WHERE NOT l.is_cancelled AND i.due_date BETWEEN $first AND $last""", p).fetchall()[0]
        defaults = con.execute(
            """SELECT count(DISTINCT loan_id) FROM (
                   SELECT loan_id FROM marts.fct_loan_states WHERE dpd_over_90_date BETWEEN $first AND $last
                   UNION ALL
                   SELECT loan_id FROM marts.dim_loans WHERE written_off_date BETWEEN $first AND $last)""",
            p).fetchall()[0][0]
        s = summary(con, as_of=last)
        values[name] = {
            "loans_issued": issued, "amount_repaid": repaid,
            "paid_on_time_share": None if not due else round(on_time / due, 6),
            "new_defaults": defaults, "overdue_share": s["overdue_share"], "par30": s["par30"],
        }
    rows = [(k, values["this_week"][k], values["previous_week"][k]) for k in values["this_week"]]
    return Table(["figure", f"week_to_{end}", f"week_to_{end - dt.timedelta(days=7)}"], rows)
