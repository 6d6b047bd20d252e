"""The merchant ledger (METRICS §8): `report merchant-balance`.

The daily rows and the running balance are computed once, in `marts.fct_merchant_balances`
(dbt, incremental and exact); this selects merchants and dates. Every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from loanwatch.reports.table import Table, run_query


@dataclass
class LedgerFilter:
    """Which ledger rows a report shows: one merchant (its id) and a range of days. The balance
    of a row always counts every event before it, whatever the range."""

    merchant: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def contradiction(self) -> str | None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            return f"the date range is empty: from {self.date_from} to {self.date_to}"
        return None

    def unmatched(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """A merchant id no ledger row has (a typo, say): the report would be empty."""
        if self.merchant is None or con.execute(
                "SELECT EXISTS (SELECT 1 FROM marts.fct_merchant_balances WHERE merchant_id = $m)",
                {"m": self.merchant}).fetchone()[0]:
            return []
        known = con.execute("SELECT list(DISTINCT merchant_id ORDER BY merchant_id) FROM marts.fct_merchant_balances"
                            ).fetchone()[0] or []
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        return [f'no ledger event has merchant "{self.merchant}"; merchants with events: {shown or "none"}']

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> str:
        """The merchant (with its name, given con) and days selected, under a chart or table."""
        if self.merchant is None:
            who = "every merchant"
        else:
            name = dict(merchants_with_events(con)).get(self.merchant) if con is not None else None
            who = f"merchant {self.merchant}" + (f" · {name}" if name else "")
        return f"{who}, {self.date_from} to {self.date_to}"

    def sql(self, alias: str = "b", date: str = "balance_date") -> tuple[dict[str, str], dict[str, Any]]:
        """The ledger rows selected, over a mart of merchants' days (as alias, its day in `date`):
        `where`, and its parameters."""
        a = alias
        return {"where": f"(($merchant IS NULL OR {a}.merchant_id = $merchant) AND ($date_from IS NULL OR {a}.{date} >= "
                         f"$date_from) AND ($date_to IS NULL OR {a}.{date} <= $date_to))"}, \
            {"merchant": self.merchant, "date_from": self.date_from, "date_to": self.date_to}

    @classmethod
    def opening(cls, con: duckdb.DuckDBPyConnection) -> LedgerFilter:
        """What a page shows before anything is chosen (the HTML report too): the first merchant
        with events, every day (one merchant's balance is one line)."""
        merchants = merchants_with_events(con)
        return cls(merchants[0][0] if merchants else None)


def ledger_query(sql: str, date: str = "balance_date"):
    """A report query over the merchant ledger: `sql` reads a mart of merchants' days as `b` (its
    day in the column `date`) and has `{where}` where the ledger filter goes (merchant, days); the
    result is the report's table. For registry entries whose SQL is a short aggregation of a mart
    (the rule itself lives in the dbt model), as loan_query."""

    def query(con: duckdb.DuckDBPyConnection, f: LedgerFilter | None = None) -> Table:
        parts, params = (f or LedgerFilter()).sql("b", date)
        return run_query(con, sql.format(**parts), params)

    query.__name__ = query.__qualname__ = "ledger_query"
    return query


MERCHANT_BALANCE = """
SELECT b.balance_date AS date, b.merchant_id, b.currency, b.events, b.inflow_amount AS inflow,
       b.outflow_amount AS outflow, b.net_change_amount AS net_change, b.balance_amount AS balance
FROM marts.fct_merchant_balances b
WHERE {where}
ORDER BY b.merchant_id, b.currency, b.balance_date
"""


def merchant_balance(con: duckdb.DuckDBPyConnection, f: LedgerFilter | None = None) -> Table:
    """One row per merchant, currency and day with at least one event (METRICS §8)."""
    parts, params = (f or LedgerFilter()).sql("b")
    return run_query(con, MERCHANT_BALANCE.format(**parts), params)


LOWEST_BALANCES = """
SELECT b.merchant_id, m.merchant_name, b.currency, b.balance_date AS last_event_date, b.balance_amount AS balance
FROM marts.fct_merchant_balances b
LEFT JOIN core.merchants m USING (merchant_id)
WHERE {where}
QUALIFY row_number() OVER (PARTITION BY b.merchant_id, b.currency ORDER BY b.balance_date DESC) = 1
ORDER BY b.balance_amount, b.merchant_id, b.currency
LIMIT $limit
"""


def lowest_balances(con: duckdb.DuckDBPyConnection, f: LedgerFilter | None = None, limit: int = 20) -> Table:
    """The merchants (and currencies) with the lowest balance after their last event (of the days
    the filter selects: the balance then)."""
    parts, params = (f or LedgerFilter()).sql("b")
    return run_query(con, LOWEST_BALANCES.format(**parts), {**params, "limit": int(limit)})


def merchants_with_events(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None]]:
    """(merchant_id, name) of every merchant with ledger rows, by id."""
    return con.execute("""SELECT DISTINCT b.merchant_id, m.merchant_name
                          FROM marts.fct_merchant_balances b LEFT JOIN core.merchants m USING (merchant_id)
                          ORDER BY b.merchant_id""").fetchall()
