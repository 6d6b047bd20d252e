"""Writing a generated portfolio as contract files: NDJSON (default), JSON arrays or CSV."""

from __future__ import annotations

from pathlib import Path

import duckdb

from loanwatch.generate.portfolio import (
    EMAIL_DOMAIN,
    LANGUAGES,
    LOCALES,
    OUTCOMES,
    PHONE_PREFIX,
    PRODUCT_NAMES,
    PRODUCTS,
    Portfolio,
)
from loanwatch.ingest.contract import ADJUSTMENT_TYPES, CHARGE_TYPES, EVENT_TYPES

SUFFIX = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv"}

_TS = "strftime(make_timestamp(CAST({col} AS BIGINT) * 1000000), '%Y-%m-%dT%H:%M:%SZ')"
_DAY = "strftime(DATE '1970-01-01' + CAST({col} AS INTEGER), '%Y-%m-%d')"
_MONEY = "CAST({col} / 100 AS DECIMAL(18,2))"


def _ts(col: str) -> str:
    return _TS.format(col=col)


def _day(col: str) -> str:
    return _DAY.format(col=col)


def _money(col: str) -> str:
    return _MONEY.format(col=col)


def _pick(values, index: str) -> str:
    """SQL picking values[index] (0-based) from a list literal of our own constants."""
    literal = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
    return f"[{literal}][{index} + 1]"


QUERIES = {
    "clients": f"""
        SELECT 'C' || lpad(CAST(idx AS VARCHAR), 7, '0') AS client_id,
               first || ' ' || last AS name,
               'c' || lpad(CAST(idx AS VARCHAR), 7, '0') || '@' ||
                   {_pick([EMAIL_DOMAIN[x] for x in LOCALES], 'locale')} AS email,
               {_pick([PHONE_PREFIX[x] for x in LOCALES], 'locale')} || CAST(phone_seed AS VARCHAR) AS phone,
               region, city,
               {_day('birth_day')} AS birth_date,
               CASE WHEN female THEN 'F' ELSE 'M' END AS gender,
               CAST(income AS DECIMAL(18,2)) AS monthly_income,
               ['email', 'sms', 'call'][channel + 1] AS preferred_channel,
               dnc AS do_not_contact,
               tz AS timezone,
               {_pick([LANGUAGES[x] for x in LOCALES], 'locale')} AS language,
               {_ts('updated_sec')} AS updated_at
        FROM clients ORDER BY updated_sec, idx""",
    "loans": f"""
        WITH base AS (
            SELECT *, CASE WHEN restr_day >= 0 THEN restr_day * 86400 + 32400 END AS restr_sec FROM loans
        ), versions AS (
            SELECT *, issue_sec AS at_sec, 'active' AS status FROM base
            UNION ALL SELECT *, issue_sec + 86400, 'cancelled' FROM base WHERE cancelled
            UNION ALL SELECT *, closed_sec, 'closed' FROM base WHERE closed_sec > 0
            UNION ALL SELECT *, default_day * 86400 + 7200, 'defaulted' FROM base WHERE default_day > 0
            UNION ALL SELECT *, wo_day * 86400 + 3600, 'written_off' FROM base WHERE wo_day > 0
            -- a restructuring: this version and every later one have the new schedule (records)
            UNION ALL SELECT *, restr_sec, 'active' FROM base WHERE restr_day >= 0
        ), terms AS (
            SELECT *, coalesce(at_sec >= restr_sec, false) AS rescheduled FROM versions
        )
        SELECT 'L' || lpad(CAST(idx AS VARCHAR), 8, '0') AS loan_id,
               'C' || lpad(CAST(client AS VARCHAR), 7, '0') AS client_id,
               CASE WHEN merchant >= 0 THEN 'M' || lpad(CAST(merchant AS VARCHAR), 5, '0') END AS merchant_id,
               {_pick([PRODUCT_NAMES.get(x, x) for x in PRODUCTS], 'product')} AS product,
               {_money('amount_cents')} AS amount,
               'USD' AS currency,
               CAST(rate AS DECIMAL(10,4)) AS interest_rate,
               {_day('issue_day')} AS issue_date,
               CASE WHEN NOT explicit AND NOT rescheduled THEN term END AS term_months,
               CASE WHEN explicit OR rescheduled THEN 'schedule' WHEN bullet THEN 'bullet' ELSE 'annuity' END
                   AS repayment,
               status,
               CASE WHEN at_sec = restr_sec THEN {_day('restr_day')} END AS restructured_at,
               CAST(risk AS DECIMAL(6,3)) AS risk_score,
               CAST(fraud AS DECIMAL(6,3)) AS fraud_score,
               {_ts('at_sec')} AS updated_at
        FROM terms ORDER BY at_sec, idx""",
    # explicit (semi-monthly BNPL) schedules, as instalment records: repayment is `schedule`; and the
    # schedules of restructured loans, in force from the restructuring (effective_from)
    "instalments": f"""
        SELECT 'L' || lpad(CAST(loan AS VARCHAR), 8, '0') AS loan_id,
               k AS number,
               {_day('due_day')} AS due_date,
               {_money('principal_cents')} AS principal,
               {_money('interest_cents')} AS interest,
               CASE WHEN from_day >= 0 THEN {_day('from_day')} END AS effective_from
        FROM (SELECT *, -1 AS from_day FROM schedule UNION ALL SELECT * FROM restructured)
        ORDER BY from_day, loan, k""",
    "payments": f"""
        SELECT 'P' || lpad(CAST(id AS VARCHAR), 9, '0') AS payment_id,
               'L' || lpad(CAST(loan AS VARCHAR), 8, '0') AS loan_id,
               {_ts('sec')} AS paid_at,
               {_money('amount_cents')} AS amount,
               CASE WHEN reverses >= 0 THEN 'reversal' ELSE 'payment' END AS type,
               CASE WHEN reverses >= 0 THEN 'P' || lpad(CAST(reverses AS VARCHAR), 9, '0') END AS reverses,
               ['card', 'bank_transfer', 'cash', 'wallet'][channel + 1] AS channel
        FROM payments ORDER BY sec, id""",
    # penalties and fees name their instalment; a reversal names the charge it undoes
    "charges": f"""
        SELECT 'CH' || lpad(CAST(id AS VARCHAR), 9, '0') AS charge_id,
               'L' || lpad(CAST(loan AS VARCHAR), 8, '0') AS loan_id,
               {_pick(CHARGE_TYPES, 'type')} AS type,
               {_money('amount_cents')} AS amount,
               {_ts('sec')} AS charged_at,
               CASE WHEN instalment > 0 THEN instalment END AS instalment,
               CASE WHEN reverses > 0 THEN 'CH' || lpad(CAST(reverses AS VARCHAR), 9, '0') END AS reverses
        FROM charges ORDER BY sec, id""",
    "adjustments": f"""
        SELECT 'AD' || lpad(CAST(id AS VARCHAR), 9, '0') AS adjustment_id,
               'L' || lpad(CAST(loan AS VARCHAR), 8, '0') AS loan_id,
               {_pick(ADJUSTMENT_TYPES, 'type')} AS type,
               {_money('amount_cents')} AS amount,
               {_ts('sec')} AS adjusted_at,
               instalment
        FROM adjustments ORDER BY sec, id""",
    "calls": f"""
        SELECT 'K' || lpad(CAST(idx AS VARCHAR), 9, '0') AS call_id,
               'C' || lpad(CAST(client AS VARCHAR), 7, '0') AS client_id,
               'L' || lpad(CAST(loan AS VARCHAR), 8, '0') AS loan_id,
               'agent_' || lpad(CAST(agent AS VARCHAR), 2, '0') AS agent_id,
               ['collections_early', 'collections_late'][campaign + 1] AS campaign,
               {_ts('sec')} AS called_at,
               talk AS talk_seconds,
               total AS total_seconds,
               {_pick(OUTCOMES, 'outcome')} AS outcome,
               CASE WHEN promised_cents >= 0 THEN {_money('promised_cents')} END AS promised_amount,
               CASE WHEN promised_day >= 0 THEN {_day('promised_day')} END AS promised_date
        FROM calls ORDER BY sec, idx""",
    "agents": f"""
        SELECT 'agent_' || lpad(CAST(idx AS VARCHAR), 2, '0') AS agent_id,
               name,
               ['early', 'late'][team + 1] AS team,
               level,
               {_ts('sec')} AS updated_at
        FROM agents ORDER BY sec, idx""",
    "logins": f"""
        SELECT 'G' || lpad(CAST(idx AS VARCHAR), 9, '0') AS login_id,
               'C' || lpad(CAST(client AS VARCHAR), 7, '0') AS client_id,
               {_ts('sec')} AS logged_in_at,
               ['app', 'web', 'whatsapp'][channel + 1] AS channel
        FROM logins ORDER BY sec, idx""",
    "merchants": f"""
        SELECT 'M' || lpad(CAST(idx AS VARCHAR), 5, '0') AS merchant_id,
               name,
               ['electronics', 'fashion', 'home', 'travel', 'health', 'education'][category + 1] AS category,
               ['small', 'medium', 'large'][size + 1] AS size,
               region_name AS region,
               {_ts('sec')} AS updated_at
        FROM merchants JOIN merchant_regions USING (region) ORDER BY sec, idx""",
    "merchant_events": f"""
        SELECT 'E' || lpad(CAST(idx AS VARCHAR), 9, '0') AS event_id,
               'M' || lpad(CAST(merchant AS VARCHAR), 5, '0') AS merchant_id,
               {_pick(EVENT_TYPES, 'type')} AS event_type,
               {_money('amount_cents')} AS amount,
               'USD' AS currency,
               {_ts('sec')} AS occurred_at
        FROM merchant_events ORDER BY sec, idx""",
}


def write_portfolio(portfolio: Portfolio, out_dir: Path, fmt: str = "jsonl") -> dict[str, Path]:
    """Write one file per entity into out_dir; returns entity -> path."""
    from loanwatch.geo import REGIONS

    if fmt not in SUFFIX:
        raise ValueError(f"unknown format {fmt!r}: use jsonl, json or csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in portfolio.tables.items():
        con.register(name, table)
    con.execute("CREATE TEMP TABLE merchant_regions (region INTEGER, region_name VARCHAR)")
    con.executemany("INSERT INTO merchant_regions VALUES (?, ?)",
                    [[i, r[0]] for i, r in enumerate(REGIONS["es_MX"])])
    written = {}
    for entity, query in QUERIES.items():
        path = out_dir / f"{entity}{SUFFIX[fmt]}"
        if fmt == "csv":
            select = query
            con.execute(f"COPY ({select}) TO ? (FORMAT CSV, HEADER true)", [str(path)])
        elif fmt == "json":
            con.execute(f"COPY ({query}) TO ? (FORMAT JSON, ARRAY true)", [str(path)])
        else:
            con.execute(f"COPY ({query}) TO ? (FORMAT JSON)", [str(path)])
        written[entity] = path
    con.close()
    return written
