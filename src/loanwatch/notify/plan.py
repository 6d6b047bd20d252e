"""The contact plan for a day: one row per client and channel, with the rule and the reason.

Set-based over the serving snapshot (states, DPD and amounts come from the marts) and the
notifier's outbox (what was already sent). The ladder ([notify] in loanwatch.toml):

- pre_due: an instalment falls due in `pre_due_days` (3) and payments up to the plan date do not
  cover it; due_day: the same on the due date;
- overdue_N: the loan is N days past due, N in `overdue_days` (1, 7, 30);
- final_notice: `final_notice_dpd` (85) days past due, before write-off;
- call: `escalate_dpd` (15) or more days past due: the call-centre queue.

A client gets at most one message a day, for the highest rule among their loans, covering all of
them. Suppressed (and listed with the reason when asked): the hold-out group (a fixed share of
clients drawn by a hash of the client id with the settings of the moment, reports/rules.py
holdout_sql, never contacted so that the effect can be measured), do_not_contact, an open dispute (a call with outcome dispute in the last
60 days), the weekly message cap, the daily cap (a message for the client and day already in the
outbox, under another rule: a second plan that day after a late file), no email or phone. Calls:
none on a loan with `max_calls_per_loan_week` attempts in the last 7 days, none within 7 days
after a conversation (US Regulation F; marts.fct_calls.is_conversation), then the best
`call_capacity` clients by expected recovery = P(cure within [callcentre] cure_window_days (7)
days after a call, estimated per DPD bucket from the warehouse's calls and outcomes) x past-due
amount. The 08:00-21:00 window in the client's time zone is enforced when sending; the plan
carries the time zone.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from loanwatch.config import Settings
from loanwatch.notify import outbox
from loanwatch.output import Shown
from loanwatch.reports import Table, as_of_date, dpd_sql, run_query
from loanwatch.reports.rules import holdout_params, holdout_sql, timeline_flags

_PLAN = """
WITH states AS (
    SELECT st.loan_id, st.state, st.past_due_amount, st.cum_paid_amount,
           {dpd} AS dpd, {flags}
    FROM marts.fct_loan_states st
    WHERE st.valid_from <= $d AND $d < st.valid_to AND st.is_active
),
due_rules AS (
    -- an instalment due today or in pre_due_days that payments up to today do not cover
    SELECT i.loan_id, CASE WHEN i.due_date = $d THEN 'due_day' ELSE 'pre_due' END AS rule,
           least(i.due_amount, i.cum_due_amount - s.cum_paid_amount) AS open_amount, i.due_date
    FROM marts.fct_instalments i JOIN states s USING (loan_id)
    WHERE i.due_date IN ($d, $d + $pre_due_days) AND s.cum_paid_amount < i.cum_due_amount
),
overdue_rules AS (
    SELECT loan_id, CASE WHEN dpd = $final_dpd THEN 'final_notice' ELSE 'overdue_' || dpd END AS rule,
           past_due_amount AS open_amount, CAST(NULL AS DATE) AS due_date
    FROM states
    WHERE is_overdue AND (list_contains($overdue_days, dpd) OR dpd = $final_dpd)
),
loan_rules AS (
    SELECT *, CASE WHEN rule = 'final_notice' THEN 1000
                   WHEN rule LIKE 'overdue_%' THEN 100 + CAST(substr(rule, 9) AS INTEGER)
                   WHEN rule = 'due_day' THEN 20 ELSE 10 END AS priority
    FROM (SELECT * FROM due_rules UNION ALL SELECT * FROM overdue_rules)
),
clients AS (
    SELECT client_id, client_name, email, phone, preferred_channel, is_do_not_contact, {holdout} AS is_holdout, timezone,
           coalesce(language, $default_language) AS language
    FROM core.clients
),
suppressed AS (
    SELECT c.client_id,
        CASE
            WHEN c.is_holdout
                THEN 'hold-out group: never contacted, so that the effect can be measured'
            WHEN c.is_do_not_contact THEN 'do_not_contact'
            WHEN EXISTS (SELECT 1 FROM core.calls k WHERE k.client_id = c.client_id AND k.outcome = 'dispute'
                         AND k.called_date BETWEEN $d - 60 AND $d)
                THEN 'open dispute: a call with outcome dispute in the last 60 days'
        END AS reason
    FROM clients c
),
messages AS (
    -- one message per client: its loans' most urgent rule; a loan with two rules (an instalment
    -- due today and an older one past due) is one loan
    SELECT l.client_id, arg_max(r.rule, r.priority) AS rule, list(DISTINCT r.loan_id ORDER BY r.loan_id) AS loan_ids,
           CAST(sum(r.open_amount) AS DECIMAL(38,2)) AS open_amount, min(r.due_date) AS due_date, max(r.priority) AS priority
    FROM loan_rules r JOIN marts.dim_loans l USING (loan_id)
    GROUP BY l.client_id
),
sent_week AS (
    SELECT client_id, n FROM _sent_week
),
message_rows AS (
    SELECT m.client_id,
        CASE WHEN c.preferred_channel = 'sms' AND c.phone IS NOT NULL THEN 'sms'
             WHEN c.email IS NOT NULL THEN 'email'
             WHEN c.phone IS NOT NULL THEN 'sms' END AS channel,
        m.rule, m.loan_ids, m.open_amount, c.language, c.timezone, c.client_name, m.due_date,
        CASE WHEN c.preferred_channel = 'sms' AND c.phone IS NOT NULL THEN c.phone
             WHEN c.email IS NOT NULL THEN c.email ELSE c.phone END AS recipient,
        coalesce(s.reason,
                 -- at most daily_cap messages a day: one already in the outbox for this day (under
                 -- another rule: the same key is this message itself) holds back a second plan
                 -- made later that day, after a late file changed the client's rule
                 (SELECT format('daily cap: {} already in the outbox for {} ([notify] max_messages_per_day = {})',
                                string_agg(dm.message_id, ', ' ORDER BY dm.message_id), $d, $daily_cap)
                  FROM _day_messages dm WHERE dm.client_id = m.client_id AND dm.rule <> m.rule
                  HAVING $daily_cap > 0 AND count(*) >= $daily_cap),
                 CASE WHEN coalesce(w.n, 0) >= $weekly_cap
                      THEN format('weekly cap: {} messages sent in the last 7 days', w.n) END,
                 CASE WHEN c.email IS NULL AND c.phone IS NULL THEN 'no email or phone' END) AS suppressed_because,
        CASE
            WHEN m.rule = 'pre_due' THEN format('{} due on {}, in {} days', CAST(m.open_amount AS VARCHAR), m.due_date, m.due_date - $d)
            WHEN m.rule = 'due_day' THEN format('{} due today', CAST(m.open_amount AS VARCHAR))
            WHEN m.rule = 'final_notice' THEN format('{} days past due, {} past due: final notice before write-off', $final_dpd, CAST(m.open_amount AS VARCHAR))
            ELSE format('{} day{} past due, {} past due', substr(m.rule, 9),
                        CASE WHEN m.rule = 'overdue_1' THEN '' ELSE 's' END, CAST(m.open_amount AS VARCHAR))
        END || CASE WHEN len(m.loan_ids) > 1 THEN format(' ({} loans)', len(m.loan_ids)) ELSE '' END AS reason,
        CAST(NULL AS DOUBLE) AS score
    FROM messages m JOIN clients c USING (client_id)
    LEFT JOIN suppressed s USING (client_id) LEFT JOIN sent_week w USING (client_id)
),
cure_history AS (
    -- past calls on overdue loans, cured or not cure_window_days later (marts.fct_calls, METRICS §6)
    SELECT b.bucket, count(*) AS calls, count(*) FILTER (WHERE k.is_cured_7d) AS cured
    FROM marts.fct_calls k
    JOIN marts.dpd_buckets b ON k.dpd_at_call BETWEEN b.min_dpd AND b.max_dpd
    WHERE k.is_cured_7d IS NOT NULL AND k.called_date + $cure_window_days <= $data_date AND k.called_date < $d
    GROUP BY b.bucket
),
call_limits AS (
    SELECT loan_id,
           count(*) FILTER (WHERE called_date BETWEEN $d - 6 AND $d) AS attempts_week,
           max(called_date) FILTER (WHERE is_conversation) AS last_conversation
    FROM marts.fct_calls
    -- only what had happened by the plan date (a later call must not shape an earlier plan)
    WHERE loan_id IS NOT NULL AND called_date <= $d
    GROUP BY loan_id
),
call_loans AS (
    SELECT s.loan_id, l.client_id, s.dpd, s.past_due_amount, b.bucket,
           (coalesce(h.cured, 0) + 1.0) / (coalesce(h.calls, 0) + 2.0) AS p_cure, coalesce(h.calls, 0) AS history_calls,
           CASE WHEN coalesce(cl.attempts_week, 0) >= $max_calls
                    THEN format('{}: {} call attempts in the last 7 days (cap {})', s.loan_id, cl.attempts_week, $max_calls)
                WHEN cl.last_conversation >= $d - 7
                    THEN format('{}: a conversation on {}, no calls within 7 days after one', s.loan_id, cl.last_conversation)
           END AS blocked_because
    FROM states s JOIN marts.dim_loans l USING (loan_id)
    JOIN marts.dpd_buckets b ON s.dpd BETWEEN b.min_dpd AND b.max_dpd
    LEFT JOIN cure_history h USING (bucket) LEFT JOIN call_limits cl USING (loan_id)
    WHERE s.is_overdue AND s.dpd >= $escalate_dpd
),
call_clients AS (
    SELECT client_id,
           list(loan_id ORDER BY loan_id) FILTER (WHERE blocked_because IS NULL) AS loan_ids,
           sum(past_due_amount) FILTER (WHERE blocked_because IS NULL) AS open_amount,
           sum(p_cure * past_due_amount) FILTER (WHERE blocked_because IS NULL) AS expected_recovery,
           string_agg(format('{} {} p(cure) {} from {} calls x past due {}', loan_id, bucket, round(p_cure, 3), history_calls,
                             CAST(past_due_amount AS VARCHAR)), '; ' ORDER BY loan_id) FILTER (WHERE blocked_because IS NULL) AS why,
           string_agg(blocked_because, '; ' ORDER BY loan_id) AS blocked
    FROM call_loans GROUP BY client_id
),
call_ranked AS (
    SELECT cc.*, c.phone, c.language, c.timezone, c.client_name, s.reason AS suppressed_reason,
           row_number() OVER (ORDER BY (s.reason IS NULL AND cc.loan_ids IS NOT NULL AND c.phone IS NOT NULL) DESC,
                                       cc.expected_recovery DESC NULLS LAST, cc.client_id) AS call_rank,
           count(*) FILTER (WHERE s.reason IS NULL AND cc.loan_ids IS NOT NULL AND c.phone IS NOT NULL) OVER () AS callable
    FROM call_clients cc JOIN clients c USING (client_id) LEFT JOIN suppressed s USING (client_id)
),
call_rows AS (
    SELECT client_id, 'call' AS channel, 'call' AS rule, loan_ids, open_amount, language, timezone, client_name,
        CAST(NULL AS DATE) AS due_date, phone AS recipient,
        coalesce(suppressed_reason,
                 CASE WHEN loan_ids IS NULL THEN blocked END,
                 CASE WHEN phone IS NULL THEN 'no phone' END,
                 CASE WHEN call_rank > $capacity THEN format('beyond the call capacity of {} (rank {} of {})', $capacity, call_rank, callable) END)
            AS suppressed_because,
        format('rank {}: expected recovery {} = {}', call_rank, CAST(CAST(expected_recovery AS DECIMAL(38,2)) AS VARCHAR), why)
            || CASE WHEN blocked IS NOT NULL AND loan_ids IS NOT NULL THEN '; not called: ' || blocked ELSE '' END AS reason,
        expected_recovery AS score
    FROM call_ranked
)
SELECT client_id, channel, rule,
       CASE WHEN suppressed_because IS NULL THEN 'planned' ELSE 'suppressed' END AS status,
       coalesce(suppressed_because, reason) AS reason,
       array_to_string(loan_ids, ' ') AS loans,
       CAST(open_amount AS DECIMAL(18,2)) AS open_amount,
       recipient, language, timezone,
       CAST(round(score, 2) AS DECIMAL(18,2)) AS expected_recovery,
       client_name, due_date
FROM (SELECT * FROM message_rows UNION ALL BY NAME SELECT * FROM call_rows)
WHERE $show_all OR suppressed_because IS NULL
ORDER BY channel = 'call', status, expected_recovery DESC NULLS LAST, client_id
"""


def sent_last_week(settings: Settings, d: dt.date, outbox_con: duckdb.DuckDBPyConnection | None = None):
    """Messages sent to each client in the 6 days before d (an Arrow table: client_id, n)."""
    if outbox_con is None:
        with outbox.opened(settings, read_only=True) as own:
            if own is None:
                return pa.table({"client_id": pa.array([], pa.string()), "n": pa.array([], pa.int64())})
            return sent_last_week(settings, d, own)
    return outbox_con.sql(
        """SELECT client_id, count(*) AS n FROM messages
           WHERE status = 'sent' AND channel IN ('email', 'sms') AND plan_date BETWEEN $first AND $last
           GROUP BY client_id""",
        params={"first": d - dt.timedelta(days=6), "last": d - dt.timedelta(days=1)},
    ).to_arrow_table()


def messages_of_day(settings: Settings, d: dt.date, outbox_con: duckdb.DuckDBPyConnection | None = None):
    """Each client's messages (email, SMS) for plan date d in the outbox, pending or sent (an
    Arrow table: client_id, rule, message_id)."""
    if outbox_con is None:
        with outbox.opened(settings, read_only=True) as own:
            if own is None:
                return pa.table({"client_id": pa.array([], pa.string()), "rule": pa.array([], pa.string()),
                                 "message_id": pa.array([], pa.string())})
            return messages_of_day(settings, d, own)
    return outbox_con.sql(
        """SELECT client_id, rule, message_id FROM messages
           WHERE plan_date = $d AND channel IN ('email', 'sms') AND status IN ('pending', 'sent')""",
        params={"d": d},
    ).to_arrow_table()


# The plan as a person reads it in a terminal (`notify plan`): these columns, in this order, with
# these titles; --format csv and json keep every column under its name.
SHOWN = (
    Shown("client_id", "text", "Client"), Shown("client_name", "text", "Name"), Shown("channel", "text", "Channel"),
    Shown("rule", "text", "Rule"), Shown("status", "text", "Status"), Shown("open_amount", "money", "Open amount"),
    Shown("reason", "text", "Reason"), Shown("due_date", "date", "Due"), Shown("loans", "text", "Loans"),
)


def contact_plan(con: duckdb.DuckDBPyConnection, settings: Settings, plan_date: dt.date | None = None,
                 call_capacity: int | None = None, show_all: bool = False,
                 outbox_con: duckdb.DuckDBPyConnection | None = None) -> Table:
    """Today's planned contacts (or, with show_all, also the suppressed ones and why)."""
    n = settings.section("notify")
    d = as_of_date(con, plan_date)
    con.register("_sent_week", sent_last_week(settings, d, outbox_con))
    con.register("_day_messages", messages_of_day(settings, d, outbox_con))
    params = {
        "d": d, "data_date": as_of_date(con, None),
        "pre_due_days": int(n["pre_due_days"]), "overdue_days": [int(x) for x in n["overdue_days"]],
        "escalate_dpd": int(n["escalate_dpd"]), "final_dpd": int(n["final_notice_dpd"]),
        "weekly_cap": int(n["max_messages_per_week"]), "daily_cap": int(n["max_messages_per_day"]),
        "max_calls": int(n["max_calls_per_loan_week"]),
        "cure_window_days": int(settings.get("callcentre", "cure_window_days")),
        **holdout_params(settings),
        "capacity": int(call_capacity if call_capacity is not None else n["call_capacity"]),
        "default_language": str(n["default_language"]), "show_all": bool(show_all),
    }
    dpd = dpd_sql("$d", "st.dpd_counted_from_date")
    sql = (_PLAN.replace("{dpd}", dpd).replace("{flags}", timeline_flags("st.state", dpd, "st.is_active"))
           .replace("{holdout}", holdout_sql("client_id")))
    try:
        return run_query(con, sql, params)
    finally:
        con.unregister("_sent_week")
        con.unregister("_day_messages")
