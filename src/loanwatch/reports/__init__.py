"""The queries behind `loanwatch report …`, the dashboard and the HTML report.

Per-loan figures (state, DPD, balances, allocations) are computed once, in the dbt marts; the
report functions only select loans (LoanFilter, at loan grain, before any aggregation) and
aggregate. The dashboard and the HTML report call these same functions, so a figure has one
definition. Every value is bound as a parameter.

- delinquency.py: overdue-monthly, loans, summary, buckets (PAR, NPL), roll-rates, vintages
- portfolio.py: disbursed, revenue, regions, risk, products, clients
- lookup.py: finding a loan or client, and one loan's full record
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb


@dataclass
class LoanFilter:
    """Which loans a figure covers; applied to loans before any aggregation."""

    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    product: str | None = None
    region: str | None = None
    merchant: str | None = None  # merchant id or name
    issued_from: dt.date | None = None
    issued_to: dt.date | None = None

    def sql(self, alias: str = "l") -> tuple[str, dict[str, Any]]:
        """A condition over marts.dim_loans (as alias) and its parameters."""
        a = alias
        cond = (
            f"($f_min IS NULL OR {a}.amount >= $f_min) AND ($f_max IS NULL OR {a}.amount <= $f_max)"
            f" AND ($f_product IS NULL OR {a}.product = $f_product)"
            f" AND ($f_region IS NULL OR {a}.region = $f_region)"
            f" AND ($f_merchant IS NULL OR {a}.merchant_id = $f_merchant OR {a}.merchant_name = $f_merchant)"
            f" AND ($f_from IS NULL OR {a}.issue_date >= $f_from) AND ($f_to IS NULL OR {a}.issue_date <= $f_to)"
        )
        return cond, {
            "f_min": self.min_amount, "f_max": self.max_amount, "f_product": self.product,
            "f_region": self.region, "f_merchant": self.merchant,
            "f_from": self.issued_from, "f_to": self.issued_to,
        }


NO_FILTER = LoanFilter()


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _table(con: duckdb.DuckDBPyConnection, sql: str, params) -> Table:
    cur = con.execute(sql, params)
    return Table([d[0] for d in cur.description], cur.fetchall())


def data_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    return con.execute("SELECT max(snapshot_date) FROM marts.snapshot_dates").fetchone()[0]


# Exact half-up rounding of a ratio of non-negative integers to 6 decimals, as METRICS asks:
# floor((2 a 10^6 + b) / (2 b)) / 10^6. Amounts enter as integer cents.
def ratio6(num: str, den: str) -> str:
    return (
        f"CASE WHEN ({den}) = 0 THEN NULL ELSE CAST(CAST(((2 * ({num})::HUGEINT * 1000000 + ({den})::HUGEINT) "
        f"// (2 * ({den})::HUGEINT)) AS DECIMAL(38,0)) * CAST(0.000001 AS DECIMAL(7,6)) AS DECIMAL(18,6)) END"
    )


def as_of_date(con, as_of: dt.date | None) -> dt.date:
    chosen = as_of or data_date(con)
    if chosen is None:
        raise ValueError("the warehouse has no loans yet: nothing to report")
    return chosen


def due_day(con) -> int:
    """The DPD convention of the build that made this snapshot (METRICS §3 option)."""
    row = con.execute("SELECT any_value(dpd_offset) FROM marts.snapshot_dates").fetchone()
    return int(row[0] or 0)


from loanwatch.reports.delinquency import (  # noqa: E402  (the public API of the package)
    buckets, loans, overdue_monthly, par_monthly, roll_rates, summary, vintages,
)
from loanwatch.reports.lookup import find_loans, loan_detail  # noqa: E402
from loanwatch.reports.portfolio import clients, disbursed, products, regions, revenue, risk  # noqa: E402
