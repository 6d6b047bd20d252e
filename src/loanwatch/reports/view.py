"""What a figure shows, said under it, and the one function that prepares it for every front end.

A `View` carries what a table or chart is of: for loans the as-of date (a projection after the
data date), the currency of its money (others left out, never added), the filters set and the
partial month; for the call centre and the merchant ledger the calls or days selected and the
periods they cover only in part. `prepare` makes it from a report's kind of filter
(`registry.FILTERS`) and the filter a front end was given: the CLI's options, the dashboard's
sidebar or page controls, the HTML report's options or a page's opening choice, the demo's
defaults. None of them builds a View of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from loanwatch.errors import UsageProblem
from loanwatch.reports import LoanFilter, data_date, holds, require
from loanwatch.reports.table import Table


def partial_month(day: dt.date | None) -> str | None:
    """The month of the data date when the data date is not its last day: its figures cover part
    of a month, which charts mark and defaults (the roll-rate month) skip."""
    if day is None or (day + dt.timedelta(days=1)).month != day.month:
        return None
    return f"{day:%Y-%m}"


def period_of(day: dt.date, period: str) -> tuple[str, dt.date, dt.date]:
    """The period (month, week or day) holding a day: its label as the marts write it (2024-07,
    2024-W27, 2024-07-10), its first day and its last."""
    if period == "month":
        first = day.replace(day=1)
        return f"{day:%Y-%m}", first, (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    if period == "week":
        year, week, weekday = day.isocalendar()
        first = day - dt.timedelta(days=weekday - 1)
        return f"{year}-W{week:02d}", first, first + dt.timedelta(days=6)
    return day.isoformat(), day, day


def partial_periods(period: str, end: dt.date, start: dt.date | None = None) -> dict[str, str]:
    """The months or weeks of a chart that hold only some of their days, with the label of their
    shading: the period of ``end`` (the last day the figures cover) unless it is the period's last
    day, and the period of ``start`` (a first day chosen after the first day held; None when the
    figures start with the data) unless it is the period's first day."""
    if period not in ("month", "week") or (start is not None and start > end):
        return {}
    last, _, last_day = period_of(end, period)
    marks = {}
    if start is not None:
        first, first_day, _ = period_of(start, period)
        if first == last and (start != first_day or end != last_day):
            return {first: f"partial {period} (data {start:%d %b} to {end:%d %b})"}
        if start != first_day:
            marks[first] = f"partial {period} (data from {start:%d %b})"
    if end != last_day:
        marks[last] = f"partial {period} (data to {end:%d %b})"
    return marks


@dataclass
class View:
    """What a table or chart shows, said under it: the as-of date (a projection after the data
    date), the currency, the filters and the partial month (kind loans; kind book: the whole book,
    no filter), or the calls or ledger days selected and the periods they cover in part (the other
    kinds of filter)."""

    data_date: dt.date | None
    as_of: dt.date | None = None
    currency: str | None = None
    filters: str = ""
    months: bool = False  # the figure has a month axis (the partial month applies)
    left_out: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # other currencies, not shown
    kind: str = "loans"  # the report's kind of filter (registry.FILTERS)
    periods: dict[str, str] = dataclasses.field(default_factory=dict)  # partial months or weeks -> their shading's label

    def for_report(self, report) -> View:
        """This view as one registry report shows it: the as-of date only if the report takes one,
        the partial month only if it has a month column."""
        return dataclasses.replace(self, as_of=self.as_of if report.as_of else None,
                                   months="month" in report.column_names)

    @property
    def projection(self) -> bool:
        return self.as_of is not None and self.data_date is not None and self.as_of > self.data_date

    @property
    def partial(self) -> str | None:
        return partial_month(self.data_date)

    def describe(self) -> str:
        if self.kind not in ("loans", "book"):  # calls or ledger days: what was selected, the money's currency, partial periods
            text = self.filters + (f", in {self.currency}" if self.currency else "")
            return " · ".join([text, *(f"{label} is partial" for label in self.periods)])
        day = self.as_of or self.data_date
        parts = [f"as of {day}" + (" (projection)" if self.projection else "") if day else "no data yet"]
        if self.currency:
            parts.append(f"money in {self.currency}")
        parts.append(f"filters: {self.filters}" if self.filters else "the whole book" if self.kind == "book" else "all loans")
        if self.months and self.partial:
            parts.append(f"{self.partial} is partial (data to {self.data_date})")
        return " · ".join(parts)


def prepare(con: duckdb.DuckDBPyConnection, kind, f: Any, *, as_of: dt.date | None = None, reporting: str | None = None,
            held: list[tuple[str, int]] | None = None, strict: bool = True) -> tuple[Any, View]:
    """The filter and the View of the figures of one kind of filter (a report's ``kind``, from
    registry.FILTERS), for every front end.

    strict: NoData (exit 6, what to load) when the snapshot holds none of the kind's data; a
    dashboard page says what to load instead. Loans: the currency of the money
    (``choose_currency``: the filter's currency as requested, else ``reporting``, else the loans'
    main one; the filter is limited to it when loans have several, the others are the view's
    left_out), the as-of date (None on the data date) and the filters set; the book: the same, of
    the filter's currency alone (its figures are the whole book's). Calls and the ledger:
    what is selected, from the first to the last day held unless the filter's dates say otherwise,
    and the months or weeks of a period that are covered only in part (the last one ends at the
    data date when the selection runs to the last day held). held: currencies(con), when the
    caller has it already."""
    if strict:
        require(con, kind.data)
    day = data_date(con)
    if kind.data == "loans":
        f, currency, left_out = choose_currency(con, kind.narrow(f), f.currency, reporting, held)  # (book: its currency only)
        return f, View(day, as_of if as_of != day else None, currency, f.describe(), left_out=left_out, kind=kind.name)
    first = last = None
    if holds(con, kind.data):
        relation, column = kind.dates
        first, last = con.execute(f"SELECT min({column}), max({column}) FROM {relation}").fetchall()[0]
    start, end = f.date_from or first, f.date_to or last
    periods = {}
    if getattr(f, "period", None) and start is not None and end is not None:
        covered_to = max(end, day or end) if end == last else end
        periods = partial_periods(f.period, covered_to, start if start > first else None)
    shown = dataclasses.replace(f, date_from=start, date_to=end).describe(con)
    return f, View(day, filters=shown, kind=kind.name, periods=periods)


def currencies_in(table: Table) -> list[str]:
    """The currencies of a table with a currency column (the merchant ledger's), in order; none
    without one (loan reports are in one currency by their filter)."""
    if "currency" not in table.columns:
        return []
    i = table.columns.index("currency")
    return sorted({r[i] for r in table.rows if r[i] is not None})


def in_currency(table: Table, view: View, currency: str | None) -> tuple[Table, View]:
    """The rows of one currency, and the view saying it: a chart never draws money of several
    currencies together (the dashboard picks one, the HTML report shows the first)."""
    if currency is None or "currency" not in table.columns:
        return table, view
    i = table.columns.index("currency")
    return Table(table.columns, [r for r in table.rows if r[i] == currency]), dataclasses.replace(view, currency=currency)


def currencies(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """The currencies of the portfolio's loans with their number of loans, the currency holding the
    most principal outstanding (at the data date) first, then the one with most loans."""
    return [tuple(r) for r in con.execute(
        "SELECT l.currency, count(*) FROM marts.dim_loans l "
        "LEFT JOIN marts.fct_loan_states s ON s.loan_id = l.loan_id AND s.valid_to = DATE '9999-12-31' "
        "WHERE NOT l.is_cancelled GROUP BY 1 "
        "ORDER BY coalesce(sum(s.principal_outstanding_amount), 0) DESC, 2 DESC, 1"
    ).fetchall()]


def reporting_currency(settings) -> str | None:
    """The currency reports show money in unless told: [reports] currency; None when it is not
    set (then the loans decide: ``choose_currency``)."""
    return (settings.get("reports", "currency") or "").strip().upper() or None


def choose_currency(con: duckdb.DuckDBPyConnection, f: LoanFilter, requested: str | None, reporting: str | None,
                    held: list[tuple[str, int]] | None = None) -> tuple[LoanFilter, str | None, list[tuple[str, int]]]:
    """The currency of a loan report's money (METRICS: amounts of different currencies are never
    added): ``requested`` (--currency), else the reporting currency ([reports] currency) when loans
    have it, else the currency holding the most principal outstanding (``currencies``). Returns the
    filter (limited to that currency only when loans have several), the currency, and the
    currencies left out with their number of loans. A --currency no loan has is a usage error.
    held: currencies(con), when the caller has it already."""
    held = currencies(con) if held is None else held
    codes = [c for c, _ in held]
    if requested:
        requested = requested.strip().upper()
        if requested not in codes:
            raise UsageProblem(f"--currency {requested}: no loan is in it; the loans' currencies: "
                               f"{', '.join(codes) or 'none'}")
        chosen = requested
    elif not held:
        return f, reporting, []
    else:
        chosen = reporting if reporting in codes else codes[0]
    left_out = [(c, n) for c, n in held if c != chosen]
    # the filter names the currency as loans spell it (not as typed: usd), and only when it leaves some out
    f = dataclasses.replace(f, currency=chosen if left_out else None)
    return f, chosen, left_out


def left_out_message(currency: str, left_out: list[tuple[str, int]]) -> str:
    listed = ", ".join(f"{c} ({n:,} loans)" for c, n in left_out)
    first = left_out[0][0]
    return (f"money is shown in {currency} only: loans in {listed} are left out, never added to it; "
            f"--currency {first} shows them")
