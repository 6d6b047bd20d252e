"""The call centre (METRICS §7): `report calls`.

Which calls connected, and the login each connected call was followed by, are computed once per
call in `marts.fct_calls` (dbt); this groups them by period and campaign, agent or login
channel. Every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from loanwatch.reports import Table, ratio, ratio6, run_query

PERIODS = ("month", "week", "day")
GROUPS = ("campaign", "agent", "channel", "all")


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


CALLS = f"""
WITH grouped AS (
    SELECT
        CASE $period
            WHEN 'day' THEN strftime(called_date, '%Y-%m-%d')
            WHEN 'week' THEN strftime(called_date, '%G-W%V')
            ELSE strftime(called_date, '%Y-%m')
        END AS period,
        coalesce(CASE $by
            WHEN 'campaign' THEN campaign
            WHEN 'agent' THEN agent_id
            WHEN 'channel' THEN login_channel
            ELSE 'all'
        END, '(none)') AS grp,
        client_id, is_connected, talk_seconds, first_login_at
    FROM marts.fct_calls
    WHERE ($date_from IS NULL OR called_date >= $date_from) AND ($date_to IS NULL OR called_date <= $date_to)
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
    f = f or CallFilter()
    return run_query(con, CALLS, {"period": f.period, "by": f.by, "date_from": f.date_from, "date_to": f.date_to})
