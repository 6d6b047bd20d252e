"""The call centre: `report calls` (METRICS §7) and `report contacts` (METRICS §6).

Which calls connected, the login each connected call was followed by, the loan's state at the
call, whether a promise was kept and whether the loan was cured within the cure window
([callcentre] cure_window_days, 7) are computed once per call in `marts.fct_calls` (dbt), the
hold-out baseline in `marts.fct_holdout_cures`; this groups them. Every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from loanwatch.reports import ratio, ratio6
from loanwatch.reports.table import Table, run_query

PERIODS = ("month", "week", "day")
GROUPS = ("campaign", "agent", "channel", "all")
CONTACT_GROUPS = ("campaign", "agent")


@dataclass
class CallFilter:
    """How `report calls` groups and which calls it counts (by the UTC date of called_at)."""

    period: str = "month"
    by: str = "campaign"
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def contradiction(self) -> str | None:
        if self.period not in PERIODS:
            return f"--period {self.period!r}: use one of {', '.join(PERIODS)}"
        if self.by not in GROUPS:
            return f"--by {self.by!r}: use one of {', '.join(GROUPS)}"
        if self.date_from and self.date_to and self.date_from > self.date_to:
            return f"the date range is empty: from {self.date_from} to {self.date_to}"
        return None

    def unmatched(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        return []

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> str:
        """The calls selected, under a chart or table (reports.view.prepare fills in the dates)."""
        return f"calls from {self.date_from} to {self.date_to} (UTC), by {self.period}"

    def sql(self, alias: str = "k") -> tuple[dict[str, str], dict[str, Any]]:
        """The calls selected, over marts.fct_calls (as alias): `where` (by the UTC day of
        called_at), `period` (its label: YYYY-MM, YYYY-Www or the day) and `group` (--by; (none)
        when missing); and their parameters."""
        return {"where": _dates(alias), "period": _period(alias), "group": _group(alias)}, \
            {"period": self.period, "by": self.by, "date_from": self.date_from, "date_to": self.date_to}

    @classmethod
    def opening(cls, con: duckdb.DuckDBPyConnection) -> CallFilter:
        """What a page shows before anything is chosen (the HTML report too): every call, by month."""
        return cls()


def _dates(a: str) -> str:
    return f"(($date_from IS NULL OR {a}.called_date >= $date_from) AND ($date_to IS NULL OR {a}.called_date <= $date_to))"


def _period(a: str) -> str:
    return (f"CASE $period WHEN 'day' THEN strftime({a}.called_date, '%Y-%m-%d') WHEN 'week' THEN {a}.called_week "
            f"ELSE {a}.called_month END")


def _group(a: str) -> str:
    return (f"coalesce(CASE $by WHEN 'campaign' THEN {a}.campaign WHEN 'agent' THEN {a}.agent_id "
            f"WHEN 'channel' THEN {a}.login_channel ELSE 'all' END, '(none)')")


def call_query(sql: str):
    """A report query over the calls: `sql` reads marts.fct_calls as `k` (and what it joins to it)
    and has `{where}` where the call filter's days go, `{period}` for the period's label and
    `{group}` for the --by group; the result is the report's table. For registry entries whose SQL
    is a short aggregation of a mart (the rule itself lives in the dbt model), as loan_query."""

    def query(con: duckdb.DuckDBPyConnection, f: CallFilter | None = None) -> Table:
        parts, params = (f or CallFilter()).sql("k")
        return run_query(con, sql.format(**parts), params)

    query.__name__ = query.__qualname__ = "call_query"
    return query


CALLS = f"""
WITH grouped AS (
    SELECT {{period}} AS period, {{group}} AS grp, k.client_id, k.is_connected, k.talk_seconds, k.first_login_at
    FROM marts.fct_calls k
    WHERE {{where}}
), counted AS (
    SELECT period, grp,
        count(*) AS calls,
        count(DISTINCT client_id) AS clients,
        count(*) FILTER (WHERE is_connected) AS connected,
        sum(talk_seconds) FILTER (WHERE is_connected) AS connected_talk,
        count(talk_seconds) FILTER (WHERE is_connected) AS connected_timed,
        count(*) FILTER (WHERE first_login_at IS NOT NULL) AS logins
    FROM grouped
    GROUP BY period, grp
)
SELECT period, grp AS "group", calls, clients, connected,
    {ratio6('connected', 'calls')} AS connect_rate,
    {ratio('coalesce(connected_talk, 0)', 'connected_timed', 2)} AS avg_talk_seconds,
    logins AS logins_48h,
    {ratio6('logins', 'connected')} AS login_rate_48h
FROM counted
ORDER BY period, grp
"""


def calls_report(con: duckdb.DuckDBPyConnection, f: CallFilter | None = None) -> Table:
    """One row per (period, group), periods in order, groups by name (METRICS §7)."""
    parts, params = (f or CallFilter()).sql("k")
    return run_query(con, CALLS.format(**parts), params)


@dataclass
class ContactFilter:
    """How `report contacts` groups and which calls it counts (by the UTC date of called_at)."""

    by: str = "campaign"
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def contradiction(self) -> str | None:
        if self.by not in CONTACT_GROUPS:
            return f"--by {self.by!r}: use one of {', '.join(CONTACT_GROUPS)}"
        if self.date_from and self.date_to and self.date_from > self.date_to:
            return f"the date range is empty: from {self.date_from} to {self.date_to}"
        return None

    def unmatched(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        return []

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> str:
        return f"calls about loans from {self.date_from} to {self.date_to}"

    def sql(self, alias: str = "k") -> tuple[dict[str, str], dict[str, Any]]:
        """As CallFilter.sql: `where` (the days) and `group` (campaign or agent)."""
        return {"where": _dates(alias), "group": _group(alias)}, \
            {"by": self.by, "date_from": self.date_from, "date_to": self.date_to}

    @classmethod
    def opening(cls, con: duckdb.DuckDBPyConnection) -> ContactFilter:
        return cls()


CONTACTS = f"""
WITH calls AS (
    SELECT {{group}} AS grp, k.*, b.bucket
    FROM marts.fct_calls k
    LEFT JOIN marts.dpd_buckets b ON k.dpd_at_call BETWEEN b.min_dpd AND b.max_dpd
    WHERE k.loan_id IS NOT NULL AND {{where}}
), counted AS (
    SELECT grp,
        count(*) AS calls,
        count(*) FILTER (WHERE is_right_party) AS right_party,
        count(*) FILTER (WHERE is_promise) AS promises,
        count(*) FILTER (WHERE is_promise_kept) AS kept,
        count(*) FILTER (WHERE is_promise AND is_promise_kept IS NULL) AS pending
    FROM calls
    GROUP BY grp
), loan_days AS (
    -- an overdue loan contacted on day t counts once for that day (METRICS §6)
    SELECT DISTINCT grp, loan_id, called_date, bucket, is_cured_7d
    FROM calls
    WHERE is_cured_7d IS NOT NULL
), matched AS (
    SELECT d.*, h.holdout_overdue, h.holdout_cured,
        CAST(h.holdout_cured AS DOUBLE) / h.holdout_overdue AS holdout_rate
    FROM loan_days d
    LEFT JOIN marts.fct_holdout_cures h ON h.contact_date = d.called_date AND h.dpd_bucket = d.bucket
), cures AS (
    SELECT grp,
        count(*) AS overdue,
        count(*) FILTER (WHERE is_cured_7d) AS cured,
        avg(holdout_rate) AS holdout_rate,
        avg(CASE WHEN is_cured_7d THEN 1.0 ELSE 0.0 END - holdout_rate) AS uplift
    FROM matched
    GROUP BY grp
), holdout_loans AS (
    SELECT grp, sum(holdout_overdue) AS holdout_overdue
    FROM (SELECT DISTINCT grp, called_date, bucket, holdout_overdue FROM matched WHERE holdout_overdue IS NOT NULL)
    GROUP BY grp
)
SELECT c.grp AS "group", c.calls,
    c.right_party AS right_party_contacts,
    {ratio6('c.right_party', 'c.calls')} AS right_party_rate,
    c.promises,
    {ratio6('c.promises', 'c.right_party')} AS promise_rate,
    c.kept AS promises_kept,
    c.pending AS promises_pending,
    {ratio6('c.kept', 'c.promises - c.pending')} AS promise_kept_rate,
    coalesce(u.overdue, 0) AS overdue_contacted,
    coalesce(u.cured, 0) AS cured_7d,
    {ratio6('coalesce(u.cured, 0)', 'coalesce(u.overdue, 0)')} AS cure_rate,
    coalesce(h.holdout_overdue, 0) AS holdout_overdue,
    CAST(round(u.holdout_rate, 6) AS DECIMAL(18,6)) AS holdout_cure_rate,
    CAST(round(u.uplift, 6) AS DECIMAL(18,6)) AS uplift
FROM counted c
LEFT JOIN cures u USING (grp)
LEFT JOIN holdout_loans h USING (grp)
ORDER BY c.grp
"""


def contacts_report(con: duckdb.DuckDBPyConnection, f: ContactFilter | None = None) -> Table:
    """METRICS §6 per campaign or agent, over the calls about loans: right-party contacts, promises,
    promises kept, cure after contact and the hold-out's cure on the same days and DPD buckets."""
    parts, params = (f or ContactFilter()).sql("k")
    return run_query(con, CONTACTS.format(**parts), params)
