"""Finding a loan or client, and everything loanwatch knows about one loan."""

from __future__ import annotations

import duckdb

from loanwatch.reports import dpd_sql
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


# The kinds of event of a loan's life, in the order events of the same instant are listed: the
# allocation's own order (METRICS §2: charge, waiver, payment), the loan's versions before them,
# and after them reversals, the write-off and recoveries. Then versions by number, others by id.
LIFE_EVENTS = ("version", "charge", "waiver", "payment", "reversal", "write-off", "recovery")


def _rank(event: str) -> int:
    return LIFE_EVENTS.index(event)


def _money(expr: str) -> str:
    """An amount as text in a detail, as people see money (1,234.50)."""
    return f"format('{{:,.2f}}', {expr})"


def _voided(reverser: str) -> str:
    """What a detail says of a record a reversal voided (retroactively: it never counted); reverser:
    a query of the first reversal's id."""
    return f"'voided by ' || coalesce(({reverser}), '?') || ', never counted'"


def _allocated(a: str) -> str:
    """Where an effective payment went (marts.fct_payment_allocations, in allocation order)."""
    parts = ", ".join(f"CASE WHEN {a}.{c}_amount <> 0 THEN '{c} ' || {_money(f'{a}.{c}_amount')} END"
                      for c in ("penalty", "fee", "interest", "principal", "credit"))
    return f"CASE WHEN {a}.payment_id IS NULL THEN 'not allocated' ELSE 'to ' || coalesce(nullif(concat_ws(', ', {parts}), ''), 'nothing') END"


def _reversals(table: str, name: str, at: str, what: str) -> str:
    """The reversal records of one entity (core.charges, adjustments, payments) as life events,
    saying when the record they name is not one of this loan's that they could void."""
    return f"""
    SELECT r.{at}, {_rank('reversal')}, 0, 'reversal', r.{name}_id, r.amount, false,
           'reverses ' || coalesce(r.reversed_{name}_id, '?') || CASE WHEN EXISTS (
               SELECT 1 FROM {table} t WHERE t.loan_id = r.loan_id AND t.{name}_id = r.reversed_{name}_id
               AND t.{name}_type <> 'reversal') THEN '' ELSE ' (not applied: no such {what} of this loan)' END
    FROM {table} r WHERE r.loan_id = $loan AND r.{name}_type = 'reversal'"""


_REVERSALS = "\n    UNION ALL".join(
    _reversals(*spec) for spec in (("core.charges", "charge", "charged_at", "charge"),
                                   ("core.adjustments", "adjustment", "adjusted_at", "waiver"),
                                   ("core.payments", "payment", "paid_at", "payment")))


# One row per event of the loan, in time order (LIFE_EVENTS on ties), with the state timeline's row
# (marts.fct_loan_states) of the event's UTC day: the state at the END of that day, every event of
# the day counted, and DPD at that day by the marts' rule (reports.dpd_sql, as the reports at a date).
# Voided records (reversed charges, waivers, payments) are listed, their detail naming the reversal
# and is_voided true: a reversal voids from the start, so they never changed a state. A reversal
# says what it reverses, and when it was not applied (the core tables' rule: the record it names
# is of the same loan and not itself a reversal).
_DPD_AFTER = dpd_sql("e.day", "st.dpd_counted_from_date")
LIFE = f"""
WITH version_terms AS (
    SELECT v.*, concat_ws(', ',
               'issued ' || strftime(v.issue_date, '%Y-%m-%d'),
               CASE WHEN v.has_schedule THEN 'its own schedule'
                    WHEN v.term_months IS NOT NULL
                    THEN v.repayment || ' over ' || v.term_months || CASE WHEN v.term_months = 1 THEN ' month' ELSE ' months' END
                    ELSE v.repayment END,
               'rate ' || printf('%g %%', v.interest_rate * 100)) AS terms
    FROM core.loan_versions v WHERE v.loan_id = $loan
),
versions AS (
    SELECT *, lag(terms) OVER w AS terms_before, lag(source_status) OVER w AS status_before,
           lag(amount) OVER w AS amount_before
    FROM version_terms WINDOW w AS (ORDER BY version_number)
),
events AS (
    -- a version: what it changed (the first: all of it)
    SELECT v.valid_from AS at, {_rank('version')} AS rank, v.version_number AS seq, 'version' AS event,
           'v' || v.version_number AS id, v.amount, false AS is_voided,
           CASE WHEN v.is_deleted THEN 'deleted' ELSE coalesce(nullif(concat_ws(', ',
               CASE WHEN v.amount <> v.amount_before THEN 'amount ' || {_money('v.amount')} END,
               CASE WHEN v.terms IS DISTINCT FROM v.terms_before THEN v.terms END,
               CASE WHEN v.source_status IS DISTINCT FROM v.status_before THEN 'status ' || v.source_status END,
               'restructures from ' || strftime(v.restructured_at, '%Y-%m-%d')), ''), 'terms and status unchanged') END
        AS detail
    FROM versions v
    UNION ALL
    SELECT c.charged_at, {_rank('charge')}, 0, 'charge', c.charge_id, c.amount, c.is_reversed,
           c.charge_type || coalesce(' on instalment ' || c.instalment_number, ' due ' || strftime(c.due_date, '%Y-%m-%d'))
           || CASE WHEN c.is_reversed THEN '; ' || {_voided('''SELECT r.charge_id FROM core.charges r
                   WHERE r.loan_id = c.loan_id AND r.charge_type = 'reversal' AND r.reversed_charge_id = c.charge_id
                   ORDER BY r.charged_at, r.charge_id LIMIT 1''')} ELSE '' END
    FROM core.charges c WHERE c.loan_id = $loan AND c.charge_type <> 'reversal'
    UNION ALL
    SELECT a.adjusted_at, {_rank('waiver')}, 0, 'waiver', a.adjustment_id, a.amount, a.is_reversed,
           a.adjustment_type || coalesce(' on instalment ' || a.instalment_number, '')
           || CASE WHEN a.is_reversed THEN '; ' || {_voided('''SELECT r.adjustment_id FROM core.adjustments r
                   WHERE r.loan_id = a.loan_id AND r.adjustment_type = 'reversal' AND r.reversed_adjustment_id = a.adjustment_id
                   ORDER BY r.adjusted_at, r.adjustment_id LIMIT 1''')} ELSE '' END
    FROM core.adjustments a WHERE a.loan_id = $loan AND a.adjustment_type <> 'reversal'
    UNION ALL
    SELECT p.paid_at, CASE WHEN rec.payment_id IS NULL THEN {_rank('payment')} ELSE {_rank('recovery')} END, 0,
           CASE WHEN rec.payment_id IS NULL THEN 'payment' ELSE 'recovery' END, p.payment_id, p.amount, p.is_reversed,
           CASE WHEN p.is_reversed THEN {_voided('''SELECT r.payment_id FROM core.payments r
                   WHERE r.loan_id = p.loan_id AND r.payment_type = 'reversal' AND r.reversed_payment_id = p.payment_id
                   ORDER BY r.paid_at, r.payment_id LIMIT 1''')}
                WHEN rec.payment_id IS NOT NULL THEN 'recovery, ' || {_allocated('al')}
                ELSE {_allocated('al')} END
    FROM core.payments p
    LEFT JOIN marts.fct_payment_allocations al ON al.payment_id = p.payment_id
    LEFT JOIN marts.fct_loan_recoveries rec ON rec.payment_id = p.payment_id
    WHERE p.loan_id = $loan AND p.payment_type <> 'reversal'
    UNION ALL
{_REVERSALS}
    UNION ALL
    -- at the first version with status written_off (written_off_date is its UTC day), under its id
    SELECT coalesce(wv.valid_from, CAST(w.written_off_date AS TIMESTAMP)), {_rank('write-off')}, 0, 'write-off',
           'v' || wv.version_number, w.principal_written_off_amount, false,
           'written off with ' || {_money('w.principal_written_off_amount')} || ' on the book'
    FROM marts.fct_loan_write_offs w
    LEFT JOIN (SELECT valid_from, version_number FROM core.loan_versions
               WHERE loan_id = $loan AND source_status = 'written_off'
               ORDER BY valid_from, version_number LIMIT 1) wv ON true
    WHERE w.loan_id = $loan
),
days AS (
    SELECT e.*, CASE WHEN e.event = 'write-off' THEN w.written_off_date ELSE CAST(e.at AS DATE) END AS day
    FROM events e LEFT JOIN marts.fct_loan_write_offs w ON w.loan_id = $loan
)
SELECT e.at, e.event, e.id, e.amount, e.detail,
       CASE WHEN l.is_cancelled THEN 'cancelled' ELSE coalesce(st.state, 'not_issued') END AS state_after,
       {_DPD_AFTER} AS dpd_after,
       coalesce(st.principal_outstanding_amount, 0) AS principal_outstanding_after,
       coalesce(st.past_due_amount, 0) AS past_due_after,
       e.is_voided
FROM days e
LEFT JOIN marts.dim_loans l ON l.loan_id = $loan
LEFT JOIN marts.fct_loan_states st ON st.loan_id = $loan AND st.valid_from <= e.day AND e.day < st.valid_to
ORDER BY e.at, e.rank, e.seq, e.id
"""


def loan_life(con: duckdb.DuckDBPyConnection, loan_id: str) -> Table:
    """Every event of the loan in time order (LIFE_EVENTS on ties): its versions, charges, waivers,
    payments (recoveries after a write-off), reversals and write-off, each with the loan's state,
    DPD, principal outstanding and past-due amount at the end of the event's day."""
    return run_query(con, LIFE, {"loan": loan_id})


def loan_detail(con: duckdb.DuckDBPyConnection, loan_id: str) -> dict[str, Table]:
    """The loan's life, then every version of the loan and of its client, schedule, payments, DPD history."""
    p = {"loan": loan_id}
    return {
        "life": loan_life(con, loan_id),
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
            SELECT instalment_number, due_date, principal_amount, interest_amount, fee_amount, penalty_amount,
                   due_amount, charged_amount, waived_amount, allocated_amount, paid_on_date
            FROM marts.fct_instalments WHERE loan_id = $loan ORDER BY instalment_number""", p),
        "payments": run_query(con, """
            SELECT p.payment_id, p.paid_at, p.amount, p.payment_type, p.reversed_payment_id, p.is_reversed,
                   a.interest_amount, a.principal_amount, a.fee_amount, a.penalty_amount, a.credit_amount, p.channel
            FROM core.payments p LEFT JOIN marts.fct_payment_allocations a USING (payment_id)
            WHERE p.loan_id = $loan ORDER BY p.paid_at, p.payment_id""", p),
        "dpd history": run_query(con, """
            SELECT snapshot_date, state, dpd, bucket, principal_outstanding_amount, past_due_amount
            FROM marts.fct_loan_snapshots WHERE loan_id = $loan ORDER BY snapshot_date""", p),
    }
