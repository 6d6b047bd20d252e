"""Finding a loan or client, and everything loanwatch knows about one loan."""

from __future__ import annotations

import duckdb

from loanwatch.reports.table import Table, run_query


def find_loans(con: duckdb.DuckDBPyConnection, text: str, limit: int = 50) -> Table:
    """Loans whose id, client id or client name contains the text (case-insensitive)."""
    pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = """
    SELECT loan_id, client_id, client_name, product, amount, issue_date, source_status
    FROM marts.dim_loans
    WHERE loan_id ILIKE $p ESCAPE '\\' OR client_id ILIKE $p ESCAPE '\\' OR client_name ILIKE $p ESCAPE '\\'
    ORDER BY (loan_id = $exact OR client_id = $exact) DESC, issue_date DESC, loan_id
    LIMIT $limit
    """
    return run_query(con, sql, {"p": pattern, "exact": text.strip(), "limit": limit})


def loan_detail(con: duckdb.DuckDBPyConnection, loan_id: str) -> dict[str, Table]:
    """Schedule, payments, DPD history, and every version of the loan and of its client."""
    p = {"loan": loan_id}
    return {
        "loan versions": run_query(con, """
            SELECT version_number, valid_from, valid_to, is_current, amount, interest_rate, issue_date,
                   term_months, repayment, source_status, is_deleted, file_name, line_no
            FROM core.loan_versions WHERE loan_id = $loan ORDER BY version_number""", p),
        "client versions": run_query(con, """
            SELECT v.version_number, v.valid_from, v.valid_to, v.is_current, v.client_name, v.email, v.phone,
                   v.region, v.city, v.timezone, v.is_do_not_contact, v.file_name, v.line_no
            FROM core.client_versions v
            WHERE v.client_id = (SELECT client_id FROM marts.dim_loans WHERE loan_id = $loan)
            ORDER BY v.version_number""", p),
        "schedule": run_query(con, """
            SELECT instalment_number, due_date, principal_amount, interest_amount, due_amount,
                   allocated_amount, paid_on_date
            FROM marts.fct_instalments WHERE loan_id = $loan ORDER BY instalment_number""", p),
        "payments": run_query(con, """
            SELECT p.payment_id, p.paid_at, p.amount, p.payment_type, p.reversed_payment_id, p.is_reversed,
                   a.interest_amount, a.principal_amount, a.credit_amount, p.channel
            FROM core.payments p LEFT JOIN marts.fct_payment_allocations a USING (payment_id)
            WHERE p.loan_id = $loan ORDER BY p.paid_at, p.payment_id""", p),
        "dpd history": run_query(con, """
            SELECT snapshot_date, state, dpd, bucket, principal_outstanding_amount, past_due_amount
            FROM marts.fct_loan_snapshots WHERE loan_id = $loan ORDER BY snapshot_date""", p),
    }
