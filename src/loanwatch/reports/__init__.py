"""The queries behind `loanwatch report …`, the dashboard and the HTML report.

Per-loan figures (state, DPD, balances, allocations) are computed once, in the dbt marts; the
report functions only select loans (LoanFilter, at loan grain, before any aggregation) and
aggregate. The dashboard and the HTML report call these same functions, so a figure has one
definition. Every value is bound as a parameter.

- delinquency.py: overdue-monthly, loans, summary, buckets (PAR, NPL), roll-rates, vintages
- portfolio.py: disbursed, revenue, regions, risk, products, clients
- lookup.py: finding a loan or client, and one loan's full record
- provisions.py: IFRS 9 / CECL provisions, the transition matrix, the forecast and its back-test
- recoveries.py: recoveries and the recovery rate by write-off cohort, to date or month by month
- calls.py, ledger.py: the call centre's and the merchant ledger's figures
- table.py: the result Table and run_query (re-exported here for the modules outside the package)
- registry.py: every report declared once, for the CLI, the dashboard, the HTML report and the docs
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from loanwatch.errors import NoData, UsageProblem
from loanwatch.reports.table import Table, run_query  # (re-exported: modules outside the report package import it here)


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
    # Set only when the portfolio holds loans in several currencies (see choose_currency): money
    # of different currencies is never added together.
    currency: str | None = None

    @property
    def amount_only(self) -> bool:
        """Only the amount bounds are set: fact tables that carry the amount need no join."""
        return all(v is None for v in (self.product, self.region, self.merchant, self.issued_from, self.issued_to,
                                       self.currency))

    @classmethod
    def opening(cls, con: duckdb.DuckDBPyConnection) -> LoanFilter:
        """What a page shows before anything is chosen: every loan."""
        return cls()

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> str:
        """The filters that are set, for the line under a table or chart ("" when none)."""
        parts = []
        if self.min_amount is not None or self.max_amount is not None:
            low = f"{self.min_amount:,.2f}" if self.min_amount is not None else "any"
            high = f"{self.max_amount:,.2f}" if self.max_amount is not None else "any"
            parts.append(f"amount {low} to {high}")
        for key in ("product", "region", "merchant"):
            if getattr(self, key) is not None:
                parts.append(f"{key} {getattr(self, key)}")
        if self.issued_from is not None or self.issued_to is not None:
            parts.append(f"issued {self.issued_from or 'any'} to {self.issued_to or 'any'}")
        return ", ".join(parts)

    def contradiction(self) -> str | None:
        """Why no loan can match, when a range's bounds are the wrong way round (say, swapped by
        mistake): a report of such a filter would show zeros that look like real figures."""
        for low, high, name in ((self.min_amount, self.max_amount, "amount"),
                                (self.issued_from, self.issued_to, "issue date")):
            if low is not None and high is not None and low > high:
                return f"the {name} range is empty: from {low} to {high}"
        return None

    def unmatched(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """For each of product, region and merchant that no loan in any figure has (a typo, say),
        why, with the values loans do have: the report of such a filter is zeros throughout."""
        messages = []
        for key, column, what in (("product", "product", "products"), ("region", "region", "regions"),
                                  ("merchant", "merchant_id", "merchants")):
            value = getattr(self, key)
            if value is None:
                continue
            cond, params = LoanFilter(**{key: value}).sql()
            if con.execute(f"SELECT EXISTS (SELECT 1 FROM marts.dim_loans AS l WHERE NOT l.is_cancelled AND {cond})",
                           params).fetchone()[0]:
                continue
            known = con.execute(
                f"""SELECT list(DISTINCT {column} ORDER BY {column}) FILTER (WHERE {column} IS NOT NULL)
                    FROM marts.dim_loans WHERE NOT is_cancelled"""
            ).fetchone()[0] or []
            shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
            messages.append(f'no loan has {key} "{value}"; {what} of loans: {shown or "none"}')
        return messages

    def sql(self, alias: str = "l") -> tuple[str, dict[str, Any]]:
        """A condition over marts.dim_loans (as alias) and its parameters: only what is set."""
        a = alias
        parts = {
            "min_amount": f"{a}.amount >= $f_min_amount",
            "max_amount": f"{a}.amount <= $f_max_amount",
            "product": f"{a}.product = $f_product",
            "region": f"{a}.region = $f_region",
            "merchant": f"({a}.merchant_id = $f_merchant OR {a}.merchant_name = $f_merchant)",
            "issued_from": f"{a}.issue_date >= $f_issued_from",
            "issued_to": f"{a}.issue_date <= $f_issued_to",
            "currency": f"{a}.currency = $f_currency",
        }
        used = {k: getattr(self, k) for k in parts if getattr(self, k) is not None}
        cond = " AND ".join(parts[k] for k in used) or "true"
        return f"({cond})", {f"f_{k}": v for k, v in used.items()}


NO_FILTER = LoanFilter()


def loan_query(sql: str):
    """A report query over marts at loan grain: `sql` reads them with marts.dim_loans as `l` and has
    `{where}` where the loan filter goes; the result is the report's table. For registry entries
    whose SQL is a short aggregation of a mart (the rule itself lives in the dbt model)."""

    def query(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None) -> Table:
        where, params = (f or NO_FILTER).sql("l")
        return run_query(con, sql.format(where=where), params)

    query.__name__ = query.__qualname__ = "loan_query"
    return query


def data_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The data date (METRICS §4): the latest date loaded of any kind; None in an empty warehouse."""
    rows = con.execute("SELECT data_date FROM marts.data_date").fetchall()
    return rows[0][0] if rows else None


# Exact half-up rounding of a ratio of non-negative integers to 6 decimals, as METRICS asks:
# floor((2 a 10^6 + b) / (2 b)) / 10^6. Amounts enter as integer cents.
def ratio6(num: str, den: str) -> str:
    return ratio(num, den, 6)


def ratio(num: str, den: str, places: int) -> str:
    """SQL for num / den (non-negative integers) rounded half-up to `places` decimals, exactly."""
    scale = 10 ** places
    return (
        f"CASE WHEN ({den}) = 0 THEN NULL ELSE CAST(CAST(((2 * ({num})::HUGEINT * {scale} + ({den})::HUGEINT) "
        f"// (2 * ({den})::HUGEINT)) AS DECIMAL(38,0)) * CAST({1 / scale:.{places}f} AS DECIMAL({places + 1},{places})) "
        f"AS DECIMAL(18,{places})) END"
    )


def as_of_date(con, as_of: dt.date | None) -> dt.date:
    chosen = as_of or data_date(con)
    if chosen is None:
        raise NoData(MISSING["loans"][1])
    return chosen


# What each kind of figure reads, and what to load when it is absent (the CLI, the dashboard and
# the HTML report say the same).
MISSING = {
    "loans": ("marts.dim_loans", "no loans yet: load loans (and payments, clients) with `loanwatch ingest FILES`, "
                                 "then `loanwatch build`"),
    "calls": ("marts.fct_calls", "no calls yet: load calls (and agents, logins) with `loanwatch ingest FILES`, "
                                 "then `loanwatch build`"),
    "ledger": ("marts.fct_merchant_balances", "no merchant ledger yet: load merchant_events (and merchants) with "
                                              "`loanwatch ingest FILES`, then `loanwatch build`"),
}


def holds(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    """Whether the snapshot holds any data of a kind: loans, calls or ledger."""
    return con.execute(f"SELECT EXISTS (SELECT 1 FROM {MISSING[kind][0]})").fetchall()[0][0]


def require(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """NoData (exit 6, "nothing to report yet") when the snapshot holds no data of this kind."""
    if not holds(con, kind):
        raise NoData(MISSING[kind][1])


def projection(con, as_of: dt.date | None, horizon_days: int, option: str = "--as-of") -> str | None:
    """What to say of an as-of date after the data date (METRICS §4: a projection, since no
    payment after the data date is known), or None for one on or before it.

    Beyond the horizon (``[reports] projection_horizon_days`` after the data date) it is a usage
    error: each month after the data date adds a row per loan, so the horizon bounds time and
    memory (an as-of of 5000-01-01 would add 35,000 months)."""
    latest = data_date(con)
    if as_of is None or latest is None or as_of <= latest:
        return None
    limit = latest + dt.timedelta(days=int(horizon_days))
    if as_of > limit:
        raise UsageProblem(f"{option} {as_of} is more than {horizon_days} days after the data date {latest}: "
                           f"a projection reaches at most {limit} ([reports] projection_horizon_days)")
    return (f"{option} {as_of} is after the data date {latest}: the figures are a projection "
            "(no payment after the data date is known, so every instalment due since counts as unpaid)")


def is_snapshot_date(con, day: dt.date) -> bool:
    """The build precomputed every loan at this date (a month end or the data date)."""
    return bool(con.execute("SELECT count(*) FROM marts.snapshot_dates WHERE snapshot_date = ?", [day]).fetchall()[0][0])


def dpd_sql(date_expr: str, counted_from_expr: str) -> str:
    """DPD at a date inside a state interval: the date minus the interval's dpd_counted_from_date,
    0 unless overdue. The convention (METRICS §3 option dpd_counts_due_day) is applied once, in
    that column of marts.fct_loan_states (macros/delinquency.sql)."""
    return f"coalesce({date_expr} - {counted_from_expr}, 0)"


__all__ = [
    "LoanFilter", "Table", "View", "data_date", "prepare", "choose_currency", "currencies", "currencies_in", "in_currency",
    "left_out_message",
    "partial_month", "reporting_currency", "buckets", "cure_rates", "loans", "overdue_monthly", "par_monthly", "roll_rates",
    "summary", "vintages", "find_loans", "loan_detail", "clients", "disbursed", "products", "regions",
    "revenue", "risk", "weekly",
]

from loanwatch.reports.delinquency import (  # noqa: E402  (the public API of the package)
    buckets,
    cure_rates,
    loans,
    overdue_monthly,
    par_monthly,
    roll_rates,
    summary,
    vintages,
)
from loanwatch.reports.lookup import find_loans, loan_detail  # noqa: E402
from loanwatch.reports.portfolio import clients, disbursed, products, regions, revenue, risk, weekly  # noqa: E402
from loanwatch.reports.view import (  # noqa: E402  (what a figure shows: reports/view.py)
    View,
    choose_currency,
    currencies,
    currencies_in,
    in_currency,
    left_out_message,
    partial_month,
    prepare,
    reporting_currency,
)
