"""The report registry: every figure loanwatch shows, declared once.

Each entry says what a report is called (the verb of `loanwatch report NAME`, with `--view` when a
name has several entries, or the option its entries name instead: recoveries' --period), what it
shows, which function computes it (the SQL lives in delinquency.py, portfolio.py, provisions.py,
recoveries.py, calls.py and ledger.py, or is a short aggregation of a mart here; the per-loan and
per-call rules in the dbt marts), its kind of filter (FILTERS: loans, book, calls, contacts,
ledger) and whether it takes --as-of, its own options (params: provisions' --by and --method, the
forecast's --months) and whether it reads the home's settings, its columns with a kind and a human
title, and where it appears: its dashboard page with its charts and tables, and whether the HTML
report carries it.
The CLI's report commands and their options and --help, the dashboard's pages and their controls,
the HTML report and the docs test are all built from this list.

Adding a figure: its SQL (a model in dbt, or a function here that filters and aggregates one),
its yml, one entry below, and a golden test. docs/architecture.md walks through an example.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from loanwatch.config import Settings
from loanwatch.reports import LoanFilter, calls, delinquency, ledger, loan_query, portfolio, provisions, ratio6, recoveries
from loanwatch.reports.table import Table

# What a column holds; output formatting hangs off this.
KINDS = {
    "count": "a number of loans, clients or rows",
    "money": "an amount in one currency (the report's, or the row's currency column), 2 decimals",
    "share": "a fraction between 0 and 1, 6 decimals (shown as a percentage to people); a column declared signed, "
             "a difference of two shares (the back-test's error), lies between -1 and 1; one declared above_one, a "
             "ratio that passes 1 when its numerator does not stop at its denominator (the recovery rate), is 0 or more",
    "days": "a number of days",
    "date": "a calendar date",
    "month": "a calendar month, YYYY-MM",
    "number": "a plain number (months on book, a rank, a transition weight): an integer, or a decimal",
    "text": "an identifier, a name or a label",
}


@dataclass(frozen=True)
class FilterKind:
    """A kind of row selection, and so of page. data: what the snapshot must hold (reports.MISSING:
    loans, calls or ledger); filter: its dataclass (contradiction, unmatched, describe, opening: the
    choice a page opens on, which the HTML report shows); controls: what a dashboard page asks for
    it (loans: the sidebar, on every page; the CLI's options are in cli.py, by kind); dates: the
    relation and column whose first and last day bound its From and To. keeps: of a filter given to
    it (a page's loan filter, the CLI's), the fields it takes; None: all (book: the currency only)."""

    name: str
    data: str
    filter: type
    controls: tuple[str, ...] = ()
    dates: tuple[str, str] | None = None
    keeps: tuple[str, ...] | None = None

    def narrow(self, f: Any) -> Any:
        """The part of a filter a report of this kind takes: all of it, or the fields it keeps."""
        if self.keeps is None or f is None:
            return f
        return self.filter(**{name: getattr(f, name) for name in self.keeps})


# which rows a report selects: loans (the loan filters, at loan grain), book (the whole book of loans
# of one currency, --currency only: the transition matrix, forecast and back-test are the book's,
# never a filter's), ledger (--merchant, --from, --to over the merchant ledger), calls (--period,
# --by, --from, --to) or contacts (--by, --from, --to)
FILTERS = {k.name: k for k in (
    FilterKind("loans", "loans", LoanFilter),
    FilterKind("book", "loans", LoanFilter, keeps=("currency",)),
    FilterKind("ledger", "ledger", ledger.LedgerFilter, ("merchant", "dates"), ("marts.fct_merchant_balances", "balance_date")),
    FilterKind("calls", "calls", calls.CallFilter, ("period", "dates"), ("marts.fct_calls", "called_date")),
    FilterKind("contacts", "calls", calls.ContactFilter, ("dates",), ("marts.fct_calls", "called_date")),
)}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    title: str
    signed: bool = False  # a share that is a difference of two (between -1 and 1)
    above_one: bool = False  # a share that may pass 1 (the recovery rate: recoveries pay interest and fees too)
    help: str = ""  # what it holds, where its title cannot say it all (the dashboard's tooltip on its title)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind!r}")
        if (self.signed or self.above_one) and self.kind != "share":
            raise ValueError(f"column {self.name}: only a share is declared signed or above_one")


@dataclass(frozen=True)
class Param:
    """An option of a report's own, beyond its kind of filter (provisions' --by and --method, the
    forecast's --months): a keyword of its query, `--NAME` on the CLI (a value outside its choices
    or bounds is a usage error, exit 2), fixed by a chart or table that shows one value of it
    (Chart.params). choices: the words it takes; bounds: or the integers from, to; default: what it
    is when not given (None: the query decides, from the settings)."""

    name: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def usage(self) -> str:
        """How the docs' table writes it: `--by stage\\|product\\|bucket` (default stage)."""
        values = "\\|".join(self.choices) if self.choices else f"{self.bounds[0]}..{self.bounds[1]}" if self.bounds else "VALUE"
        return f"`{self.option} {values}`" + (f" (default {self.default})" if self.default is not None else "")


@dataclass(frozen=True)
class Chart:
    """How a report is drawn, or shown as a table (kind table), on its page and in the HTML report.

    kind: lines, bars, grouped_lines (a line per value of the column `group`), grouped_bars (the y
    columns side by side), drawn by charts.py from the named columns; a special view
    (overdue_share, roll_heatmap, transition_heatmap, forecast_areas, vintage_heatmap,
    vintage_curves, region_map); or table. rows
    keeps only the rows it accepts (none left: the chart says `empty`); sort orders them by a
    column, largest first (missing values last); names: the legend's (default: the columns'
    titles). options: filter values it fixes over the page's choice (the call centre's charts are
    by campaign, its agents' table by agent); params: values of the report's own options it fixes
    (provisions by product). heading: a heading above it; note: the line under that heading
    (default: what the figures are of, the view)."""

    key: str
    kind: str
    title: str
    x: str | tuple[str, ...] | None = None
    y: tuple[str, ...] = ()
    rows: Callable[[dict[str, Any]], bool] | None = None
    sort: str | None = None
    group: str | None = None
    names: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    heading: str | None = None
    note: str | None = None
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    help: str
    query: Callable[..., Table]
    columns: tuple[Column, ...]
    rows: str  # what one row is, for the docs
    definition: str = ""  # how each figure is computed, for the docs (docs/reports.md is generated from it)
    view: str | None = None  # one of several entries under the same name (--view)
    view_option: str = "--view"  # the option that chooses among them, where another word says it better (--period)
    as_of: bool = False  # takes --as-of
    page: str | None = None  # dashboard page
    # what its page and the HTML report show of it, in order: charts, and tables (Chart kind table);
    # none: its table
    shown: tuple[Chart, ...] = ()
    html: bool | None = None  # a section of `report html`; default: when it has a page (every page reaches it)
    filters: str = "loans"  # its kind of filter: a key of FILTERS
    params: tuple[Param, ...] = ()  # its own options (--by, --method, --months), keywords of its query
    settings: bool = False  # its query reads the home's settings ([provisions]): front ends pass theirs

    def __post_init__(self) -> None:
        if self.html is None:
            object.__setattr__(self, "html", self.page is not None)

    @property
    def kind(self) -> FilterKind:
        return FILTERS[self.filters]

    @property
    def charts(self) -> tuple[Chart, ...]:
        return tuple(c for c in self.shown if c.kind != "table")

    @property
    def parts(self) -> tuple[Chart, ...]:
        """What it shows, in order: its charts and tables as declared, or its table under its title."""
        return self.shown or (Chart(self.key, "table", self.title, heading=self.title),)

    @property
    def key(self) -> str:
        return self.name if self.view is None else f"{self.name}-{self.view}"

    @property
    def view_args(self) -> list[str]:
        """The arguments of `loanwatch report NAME` that choose this entry: `--view terms`, `--period
        month`; none for a name with one entry."""
        return [] if self.view is None else [self.view_option, self.view]

    @property
    def verb(self) -> str:
        """How the docs name it: `products --view terms`."""
        return " ".join([self.name, *self.view_args])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def run(self, con: duckdb.DuckDBPyConnection, f: LoanFilter | ledger.LedgerFilter | calls.CallFilter | calls.ContactFilter | None = None,
            as_of: dt.date | None = None, settings: Settings | None = None, **params: Any) -> Table:
        """The report's table; the columns are the declared ones, in order (a test holds every
        report to it). settings: the home's (None: the defaults), for a report that reads them;
        params: values of its own options (the others take their default)."""
        if isinstance(f, LoanFilter) and self.kind.filter is not LoanFilter:
            f = None  # a page's loan filters do not select ledger rows or calls
        kwargs: dict[str, Any] = {"f": self.kind.narrow(f)}  # (book: the currency of the loan filter, no more)
        if self.as_of:
            kwargs["as_of"] = as_of
        if self.settings:
            kwargs["settings"] = settings
        for p in self.params:
            kwargs[p.name] = params.pop(p.name, p.default)
        if params:
            raise TypeError(f"report {self.key}: no option {', '.join(params)}")
        return self.query(con, **kwargs)

    def run_part(self, con: duckdb.DuckDBPyConnection, part: Chart, f: Any = None, as_of: dt.date | None = None,
                 settings: Settings | None = None) -> Table:
        """The table one of its charts or tables draws: the page's filter with the part's options,
        and the report's own options the part fixes."""
        if part.options:
            f = replace(f if isinstance(f, self.kind.filter) else self.kind.filter(), **part.options)
        return self.run(con, f=f, as_of=as_of, settings=settings, **part.params)


def _c(name: str, kind: str, title: str, help: str = "") -> Column:
    return Column(name, kind, title, help=help)


LOANS, ACTIVE, OVERDUE = _c("loans", "count", "Loans"), _c("active", "count", "Active loans"), _c("overdue", "count", "Overdue loans")
PRINCIPAL = _c("principal_outstanding", "money", "Principal outstanding")
AMOUNT = _c("amount", "money", "Amount")
MONTH = _c("month", "month", "Month")
OVERDUE_SHARE = _c("overdue_share", "share", "Overdue share (loans)")
OVERDUE_AMOUNT_SHARE = _c("overdue_amount_share", "share", "Overdue share (principal)")
COHORT = _c("cohort", "text", "Cohort (write-off month)")  # (text: the last rows are (all))
WRITTEN_OFF = _c("written_off_amount", "money", "Written off")
RECOVERY_RATE = Column("recovery_rate", "share", "Recovery rate", above_one=True)


def _bucket_rows(row: dict[str, Any]) -> bool:
    return row["bucket"] not in delinquency.PAR_ROWS


def _groups(row: dict[str, Any]) -> bool:
    return row["group"] != provisions.ALL


def _all_states(row: dict[str, Any]) -> bool:
    return row["state"] == provisions.ALL


def _cohorts(row: dict[str, Any]) -> bool:
    return row["cohort"] != recoveries.ALL


REPORTS: tuple[Report, ...] = (
    Report(
        "summary", "Summary", "Headline figures at the as-of date: loans, active, overdue share, principal, PAR30, NPL.",
        delinquency.summary_table,
        (_c("as_of", "date", "As of"), _c("loans", "count", "Loans issued"), ACTIVE, OVERDUE,
         _c("overdue_share", "share", "Overdue share"), PRINCIPAL,
         OVERDUE_AMOUNT_SHARE, _c("par30", "share", "PAR30"), _c("npl", "share", "NPL (PAR90)")),
        rows='one row', definition=(
            'headline figures at the as-of date: loans issued by then, active and overdue loans, overdue share '
            "(count and principal), principal outstanding, PAR30 and NPL as in `buckets`; the dashboard's cards "
            'and the top of the HTML report'
        ), as_of=True, page="overview", html=False,  # (its figures are the cards atop the HTML report, not a section)
    ),
    Report(
        "overdue-monthly", "Overdue share by month", "Overdue share by month (METRICS §4), count and amount versions.",
        delinquency.overdue_monthly,
        (MONTH, _c("loans_active", "count", "Active loans"), _c("loans_overdue", "count", "Overdue loans"), OVERDUE_SHARE,
         PRINCIPAL, _c("principal_overdue", "money", "Principal overdue"), OVERDUE_AMOUNT_SHARE),
        rows='month', definition='METRICS §4', as_of=True, page="overview",
        shown=(Chart("overdue-share", "overdue_share", "Overdue share by month"),),
    ),
    Report(
        "loans", "Loans", "One row per loan at the as-of date: state, DPD, bucket, balances (METRICS §3).",
        delinquency.loans,
        (_c("loan_id", "text", "Loan"), _c("client_id", "text", "Client"), AMOUNT, _c("state", "text", "State"),
         _c("dpd", "days", "Days past due"), _c("bucket", "text", "DPD bucket"), PRINCIPAL,
         _c("past_due_amount", "money", "Past due"), _c("charges_past_due", "money", "Fees and penalties past due")),
        rows='loan', definition='METRICS §3 at the as-of date', as_of=True,
    ),
    Report(
        "buckets", "DPD buckets and PAR",
        "Active loans and principal by DPD bucket at the as-of date; PAR30, PAR60, PAR90, NPL.",
        delinquency.buckets,
        (_c("bucket", "text", "DPD bucket"), LOANS, PRINCIPAL, _c("share", "share", "Share of principal")),
        rows='bucket, then PAR30/60/90, NPL', definition=(
            'active loans and principal per DPD bucket at the as-of date; `share` = principal / principal of all '
            'active loans. The PAR rows use the same columns: loans and principal with DPD > X, and PAR_X as '
            '`share`. NPL = PAR90'
        ), as_of=True, page="delinquency",
        shown=(Chart("buckets", "bars", "Principal outstanding by DPD bucket", "bucket", ("principal_outstanding",),
                      rows=_bucket_rows),),
    ),
    Report(
        "par", "PAR by month", "PAR30, PAR60 and PAR90 at every month end and the data date (METRICS §5).",
        delinquency.par_monthly,
        (MONTH, PRINCIPAL, _c("par30", "share", "PAR30"), _c("par60", "share", "PAR60"), _c("par90", "share", "PAR90")),
        rows='month', definition=(
            'PAR30, PAR60, PAR90 (METRICS §5) at each snapshot: principal of active loans with DPD > X / '
            'principal of all active loans'
        ), page="delinquency",
        shown=(Chart("par", "lines", "PAR over time", "month", ("par30", "par60", "par90")),),
    ),
    Report(
        "roll-rates", "Roll rates", "Bucket-to-bucket transitions per month (with closed, written_off) and the cure rate.",
        delinquency.roll_rates,
        (MONTH, _c("from_bucket", "text", "From"), _c("to_bucket", "text", "To"), LOANS,
         _c("principal", "money", "Principal rolled"), _c("principal_from", "money", "Principal of the bucket before"),
         _c("rate", "share", "Roll rate")),
        rows='month × from × to', definition=(
            'loans active at S(m−1), by their bucket then, against where they are at S(m): a bucket, `closed` or '
            '`written_off`. `rate` = principal at S(m) of the loans now in j / principal at S(m−1) of bucket i. A '
            'loan that left the book has no principal at S(m), so for `closed` and `written_off` the numerator is '
            'its principal at S(m−1): the share of bucket i that left that way. **Cure rate**: rows `overdue → '
            'cured`, the loans overdue at S(m−1) that are current (principal at S(m)) or closed (principal at '
            'S(m−1)) at S(m), over the principal of all loans overdue at S(m−1). S(m) is the month end, or the '
            'data date for its month'
        ), page="delinquency",
        shown=(Chart("roll-rates", "roll_heatmap", "Roll rates"),),
    ),
    Report(
        "cure-rates", "Cure rate", "Per month: loans past due at the previous month end that are current or closed now.",
        delinquency.cure_rates,
        (MONTH, _c("loans_cured", "count", "Loans cured"), _c("principal_cured", "money", "Principal cured"),
         _c("principal_overdue_before", "money", "Principal past due before"), _c("cure_rate", "share", "Cure rate")),
        rows='month', definition=(
            'the `overdue → cured` rows of `roll-rates`: loans past due at S(m−1) now current (principal at S(m)) '
            'or closed (principal at S(m−1)), over the principal of all loans past due at S(m−1)'
        ), page="delinquency",
        shown=(Chart("cure", "lines", "Cure rate", "month", ("cure_rate",)),),
    ),
    Report(
        "write-offs", "Write-offs", "Loans written off per month and the principal they took off the book.",
        loan_query("""
            SELECT w.month, count(*) AS loans, CAST(sum(w.principal_written_off_amount) AS DECIMAL(38,2)) AS principal_written_off
            FROM marts.fct_loan_write_offs w JOIN marts.dim_loans l USING (loan_id)
            WHERE {where} GROUP BY w.month ORDER BY w.month"""),
        (MONTH, LOANS, _c("principal_written_off", "money", "Principal written off")),
        rows="month of the write-off",
        definition="loans written off in the month (their first written_off version) and the principal outstanding "
                   "they had the day before (marts.fct_loan_write_offs)",
        page="delinquency",
        shown=(Chart("write-offs", "bars", "Principal written off by month", "month", ("principal_written_off",)),),
    ),
    Report(
        "provisions", "Provisions (expected credit loss)",
        "Expected credit loss and coverage of the active loans by IFRS 9 stage, product or DPD bucket (METRICS §9).",
        provisions.provisions,
        (_c("group", "text", "Group"), LOANS, PRINCIPAL, _c("ecl", "money", "Expected credit loss"),
         _c("coverage", "share", "Coverage")),
        rows="stage (1, 2, 3), product or DPD bucket (--by), then (all)", definition=(
            "the active loans at the as-of date that the filters select, by stage (3 when DPD > [provisions] "
            "stage3_dpd, 2 when DPD > stage2_dpd, else 1), product or DPD bucket: their principal outstanding and "
            "expected credit loss (METRICS §9: stage 1 twelve months of marginal PD (powers of the transition "
            "matrix) × LGD × exposure from the schedule × discount at the loan's rate, stage 2 the same to the "
            "remaining term, stage 3 LGD × principal; --method cecl: the lifetime for stages 1 and 2); the matrix and "
            "the LGD are the whole book's of the currency, never the filter's. `ecl`: the sum of the unrounded ECL "
            "rounded to cents; `coverage` = that sum / principal outstanding. The line under it: the method, the "
            "LGD and where it came from, the months of the matrix"
        ), as_of=True, settings=True,
        params=(Param("by", "Group by stage (1, 2, 3), product or DPD bucket; a last row (all).", "stage",
                      choices=provisions.GROUPS),
                Param("method", "ifrs9 (stage 1: twelve months of expected loss, stage 2: the lifetime) or cecl (the "
                                "lifetime for every stage); default [provisions] method.", choices=provisions.METHODS)),
        page="provisions",
        shown=(Chart("provisions-by-stage", "table", "Provisions by stage", heading="Expected credit loss and coverage by stage"),
               Chart("provisions-by-product", "bars", "Expected credit loss by product", "group", ("ecl",), rows=_groups,
                     params={"by": "product"}, heading="By product"),
               Chart("coverage-by-product", "bars", "Coverage by product", "group", ("coverage",), rows=_groups,
                     params={"by": "product"})),
    ),
    Report(
        "transition-matrix", "Transition matrix",
        "The month-to-month transition matrix between the six states at the as-of date, with its weights (METRICS §9).",
        provisions.transition_matrix,
        (_c("from_state", "text", "From"), _c("to_state", "text", "To"), _c("probability", "share", "Probability"),
         _c("weight", "number", "Weight"), _c("months", "number", "Months"), _c("note", "text", "Note")),
        rows="from state × to state: the six states (current, 1-30, 31-60, 61-90, default, closed) in order",
        definition=(
            "over the latest [provisions] pd_window_months complete months on or before the as-of date (`months`: "
            "fewer when the data is shorter), the loans active at S(m−1) weighed by their principal then (or one "
            "each, pd_weight count), from their state at S(m−1) to their state at S(m), pooled: `probability` = "
            "weight from i to j / weight from i (`weight`: the pair's, empty on the absorbing rows); default and "
            "closed absorb; a state with no weight keeps 1 on the diagonal and its `note` says so. The whole book "
            "of the currency (--currency only)"
        ), as_of=True, filters="book", settings=True, page="provisions",
        shown=(Chart("transition-matrix", "transition_heatmap", "Transition matrix"),),
    ),
    Report(
        "forecast", "Forecast",
        "The book's principal by state over the next months, projected with the transition matrix (METRICS §10).",
        provisions.forecast,
        (MONTH, _c("state", "text", "State"), _c("share", "share", "Share of principal"),
         _c("principal", "money", "Principal")),
        rows="month × state, from the month after the last month end on or before the data date",
        definition=(
            "the shares of the principal outstanding at the last month end S(M) by state, times P^h for h = 1 … "
            "--months (P at S(M)); run-off, no new loans. `principal` = share × the principal at S(M): the starting "
            "principal shared among the states (closed was repaid, default lost or still owed). The whole book of "
            "the currency (--currency only)"
        ), filters="book", settings=True,
        params=(Param("months", f"Months to project, from 1 to {provisions.MAX_FORECAST_MONTHS}.", 6,
                      bounds=(1, provisions.MAX_FORECAST_MONTHS)),),
        page="provisions",
        # (a special view: its months are projected, after the data, so no month axis that ends at the data date)
        shown=(Chart("forecast", "forecast_areas", "Forecast: the book's principal by state"),),
    ),
    Report(
        "forecast-backtest", "Forecast back-test",
        "Each of the last months' one-month forecast set against what happened, by state (METRICS §10).",
        provisions.forecast_backtest,
        (MONTH, _c("state", "text", "State"), _c("projected_share", "share", "Projected share"),
         _c("actual_share", "share", "Actual share"), Column("error", "share", "Error", signed=True),
         _c("months", "number", "Months of P")),
        rows="month × state, then (all) per month",
        definition=(
            "for each of the last [provisions] backtest_months complete months m: the loans active at S(m−1) by "
            "their state then, weighed as the matrix is, projected one month with P estimated at S(m−1) "
            "(`projected_share`), against the same loans' states at S(m) (`actual_share`); `error` = projected − "
            "actual; the `(all)` row's error is half the sum of the absolute errors, the share of the book put in the wrong state; "
            "`months`: the months behind that P. The whole book of the currency (--currency only)"
        ), filters="book", settings=True, page="provisions",
        shown=(Chart("forecast-error", "bars", "Back-test: share of the book the forecast put in the wrong state", "month",
                     ("error",), rows=_all_states, names=("share in the wrong state (all)",),
                     heading="Forecast back-test", empty="No complete month to test yet."),),
    ),
    Report(
        "recoveries", "Recoveries", "Amount written off, recoveries to date and recovery rate per cohort (the month "
        "of the write off; METRICS §5).",
        functools.partial(recoveries.recoveries, period="cohort"),
        (COHORT, _c("loans", "count", "Loans written off"), WRITTEN_OFF, _c("recovered", "money", "Recovered to date"),
         RECOVERY_RATE),
        rows="write-off month (cohort), then (all)", definition=(
            "the loans the filters select written off on or before the as-of date, by the month of their write-off "
            "(METRICS §5): `written_off_amount` = Σ their principal outstanding at the end of the day before the "
            "write-off (marts.fct_loan_write_offs); `recovered` = Σ their recoveries paid on or before the as-of "
            "date (effective payments on or after the write-off date, marts.fct_loan_recoveries); `recovery_rate` = "
            "recovered / written_off_amount, null when that is 0, above 1 when the recoveries pay interest and fees "
            "beyond the principal written off. `(all)`: every cohort"
        ), view="cohort", view_option="--period", as_of=True, page="provisions",
        shown=(Chart("recoveries-by-cohort", "table", "Recoveries by write-off cohort", heading="Recoveries"),),
    ),
    Report(
        "recoveries", "Recoveries by month", "Recoveries per cohort and month, and the recovery rate to the end of "
        "each month (METRICS §5).",
        functools.partial(recoveries.recoveries, period="month"),
        (COHORT, MONTH, _c("months_since_write_off", "number", "Months since write-off"),
         _c("loans", "count", "Loans written off"), WRITTEN_OFF, _c("recovered_in_month", "money", "Recovered in the month"),
         _c("recovered", "money", "Recovered to date"), RECOVERY_RATE),
        rows="cohort × month, from the cohort's month to the as-of date's, then (all) × month", definition=(
            "the cohorts of `--period cohort`, month by month from the month of the write-off to the as-of date's (the "
            "data date's when the as-of date is after it): `recovered_in_month`, the recoveries paid in the month; "
            "`recovered`, cumulative: those paid to the month's end (to the as-of date in its month), so that a "
            "cohort's last row is its row of `--period cohort`; `recovery_rate` = recovered / written_off_amount (null "
            "when that is 0): the recovery curve; `months_since_write_off` = month − cohort. `(all)` per month: the "
            "cohorts written off by the month's end"
        ), view="month", view_option="--period", as_of=True, page="provisions",
        shown=(Chart("recovery-curves", "grouped_lines", "Recovery curves: recovery rate to date by months since write-off",
                     "months_since_write_off", ("recovery_rate",), group="cohort", rows=_cohorts,
                     heading="Recovery curves by write-off cohort", empty="No loan written off yet."),),
    ),
    Report(
        "merchant-balance", "Merchant balances",
        "Each merchant's ledger by day: events, inflow, outflow, net change and running balance (METRICS §8).",
        ledger.merchant_balance,
        (_c("date", "date", "Date"), _c("merchant_id", "text", "Merchant"), _c("currency", "text", "Currency"),
         _c("events", "count", "Events"), _c("inflow", "money", "Inflow"), _c("outflow", "money", "Outflow"),
         _c("net_change", "money", "Net change"), _c("balance", "money", "Balance")),
        rows="merchant × currency × UTC day with at least one event, by merchant, currency, date",
        definition="inflow = order_paid + payout_reversed; outflow = payout + refund + fee; net_change = inflow − outflow; "
                   "balance = Σ net_change of the merchant and currency on all days up to the row's (--from and --to "
                   "select rows; the balance still counts everything before --from) (marts.fct_merchant_balances)",
        filters="ledger", page="merchants",
        shown=(Chart("merchant-balance", "lines", "Balance after each day", "date", ("balance",), names=("balance",)),
               Chart("merchant-flows", "grouped_bars", "Daily inflow and outflow", "date", ("inflow", "outflow"),
                     names=("inflow", "outflow"))),
    ),
    Report(
        "lowest-balances", "Lowest balances", "The merchants with the lowest balance after their last event (METRICS §8).",
        ledger.lowest_balances,
        (_c("merchant_id", "text", "Merchant"), _c("merchant_name", "text", "Merchant name"),
         _c("currency", "text", "Currency"), _c("last_event_date", "date", "Last event"), _c("balance", "money", "Balance")),
        rows="merchant × currency, the 20 lowest balances first",
        definition="each merchant's balance in each currency after its last day with events (of the days --from and "
                   "--to select: the balance then, counting every earlier event), lowest first "
                   "(marts.fct_merchant_balances)",
        filters="ledger", page="merchants",
        # every merchant, whatever the page's merchant and days
        shown=(Chart("lowest-balances", "table", "Lowest balances", heading="Lowest balances",
                     note="Each merchant's balance after its last event, lowest first.",
                     options={"merchant": None, "date_from": None, "date_to": None}),),
    ),
    Report(
        "calls", "Calls", "Calls, connect rate and logins after calls by period and campaign, agent or login channel "
        "(METRICS §7).",
        calls.calls_report,
        (_c("period", "text", "Period"), _c("group", "text", "Group"), _c("calls", "count", "Calls"),
         _c("clients", "count", "Clients"), _c("connected", "count", "Connected"),
         _c("connect_rate", "share", "Connect rate"), _c("avg_talk_seconds", "number", "Average talk (s)"),
         _c("logins_48h", "count", "Logins after call"), _c("login_rate_48h", "share", "Login rate after call")),
        rows="period (--period month, week or day) × group (--by campaign, agent, login channel or all)",
        definition="by the UTC date of called_at; connected = talk_seconds ≥ [callcentre] connect_min_talk_seconds "
                   "(without talk time: a right-party outcome); avg_talk_seconds over connected calls; logins_48h = "
                   "connected calls followed by a login of the client within [callcentre] login_window_hours "
                   "(marts.fct_calls); a missing campaign, agent or channel is (none)",
        filters="calls", page="calls",
        shown=tuple(Chart(f"calls-{y}", "grouped_lines", title, "period", (y,), group="group", options={"by": "campaign"})
                    for y, title in (("calls", "Calls by campaign"), ("connect_rate", "Connect rate by campaign"),
                                     ("login_rate_48h", "Login after call by campaign"))),
    ),
    Report(
        "call-outcomes", "Call outcomes", "Calls by outcome (busy, no answer, promise to pay, …) per period and campaign, "
        "agent or login channel, with each outcome's share of the calls.",
        calls.call_query(f"""
            SELECT period, "group", outcome, calls, {ratio6('calls', 'sum(calls) OVER (PARTITION BY period, "group")')} AS share
            FROM (SELECT {{period}} AS period, {{group}} AS "group", coalesce(k.outcome, '(none)') AS outcome, count(*) AS calls
                  FROM marts.fct_calls k WHERE {{where}} GROUP BY 1, 2, 3)
            ORDER BY period, "group", outcome"""),
        (_c("period", "text", "Period"), _c("group", "text", "Group"), _c("outcome", "text", "Outcome"),
         _c("calls", "count", "Calls"), _c("share", "share", "Share of calls")),
        rows="period × group (as in `calls`) × outcome",
        definition="the outcome as the call file gives it ((none) when absent); share = the outcome's calls / the calls "
                   "of its period and group (marts.fct_calls)",
        filters="calls", page="calls",
        shown=(Chart("call-outcomes", "grouped_lines", "Call outcomes (share of calls)", "period", ("share",),
                     group="outcome", options={"by": "all"}),),
    ),
    Report(
        "contacts", "Contacts", "Right-party contacts, promises to pay, promises kept and cure after contact against "
        "the hold-out, per campaign or agent, over the calls about loans (METRICS §6).",
        calls.contacts_report,
        (_c("group", "text", "Group"), _c("calls", "count", "Calls about loans"),
         _c("right_party_contacts", "count", "Right-party contacts"), _c("right_party_rate", "share", "Right-party rate"),
         _c("promises", "count", "Promises to pay"), _c("promise_rate", "share", "Promise rate"),
         _c("promises_kept", "count", "Promises kept"), _c("promises_pending", "count", "Promises pending"),
         _c("promise_kept_rate", "share", "Promise kept rate"),
         _c("overdue_contacted", "count", "Overdue loans contacted"), _c("cured_7d", "count", "Cured in 7 days"),
         _c("cure_rate", "share", "Cure after contact"), _c("holdout_overdue", "count", "Hold-out overdue loans"),
         _c("holdout_cure_rate", "share", "Hold-out cure"), _c("uplift", "share", "Uplift")),
        rows="campaign or agent (--by), over calls with a loan_id; a missing campaign or agent is (none)",
        definition="right_party_rate = calls with outcome promise_to_pay, refused, callback, paid or dispute / calls; "
                   "promise_rate = promises / right-party contacts; a promise is kept when its promised_amount (any "
                   "amount when absent) is paid on the loan from the call to the end of promised_date + 3 days "
                   "([callcentre] promise_grace_days), and pending while that day is after the data date; promise_kept_rate = kept / (promises − pending); "
                   "cure: an overdue loan contacted on day t (counted once per loan and day) is cured when current or "
                   "closed at t + 7 ([callcentre] cure_window_days; days with t + 7 after the data date are left out); "
                   "holdout_cure_rate = the mean, "
                   "over those loan-days, of the cure rate of the hold-out clients' loans overdue on the same day in "
                   "the same DPD bucket (marts.fct_holdout_cures); uplift = the mean of (cured − that rate) "
                   "(marts.fct_calls)",
        filters="contacts", page="calls",
        shown=(Chart("contacts-by-agent", "table", "Agents", heading="Agents", options={"by": "agent"},
                     note="Calls about loans, right-party contacts, promises and cure after contact (METRICS §6), by agent."),
               Chart("contacts-cure", "grouped_bars", "Cured within 7 days, by campaign", "group",
                     ("cure_rate", "holdout_cure_rate"), rows=lambda r: r["overdue_contacted"] > 0,
                     names=("contacted", "hold-out (same days and DPD buckets)"), options={"by": "campaign"},
                     heading="Cure after contact against the hold-out",
                     empty="No call about an overdue loan has 7 days of data after it yet."),
               Chart("contacts-by-campaign", "table", "Contacts by campaign", options={"by": "campaign"})),
    ),
    Report(
        "vintages", "Vintages", "Ever-30+/60+/90+ by issue-month cohort and months on book.",
        delinquency.vintages,
        (_c("cohort", "month", "Cohort (issue month)"), _c("months_on_book", "number", "Months on book"), LOANS, AMOUNT,
         _c("ever30_share", "share", "Ever 30+"), _c("ever60_share", "share", "Ever 60+"),
         _c("ever90_share", "share", "Ever 90+")),
        rows='cohort × months on book', definition=(
            "cohort = issue month v; k = months on book; ever-X+ = amount of the cohort's loans with DPD > X at "
            "some snapshot S(v + j), j ≤ k, over the cohort's amount. Snapshots are the month ends and the data "
            'date'
        ), page="vintages",
        shown=(Chart("vintages-triangle", "vintage_heatmap", "Vintages: cohort × months on book", "months_on_book",
                      ("ever30_share", "ever60_share", "ever90_share")),
                Chart("vintages", "vintage_curves", "Vintages: chosen cohorts", "months_on_book",
                      ("ever30_share", "ever60_share", "ever90_share"))),
    ),
    Report(
        "disbursed", "Disbursed", "Loans and amount disbursed per month (non-cancelled loans, by issue date).",
        portfolio.disbursed, (MONTH, LOANS, AMOUNT), rows='issue month', definition='loans and amount of non-cancelled loans', page="portfolio",
        shown=(Chart("disbursed", "bars", "Disbursed amount by month", "month", ("amount",)),),
    ),
    Report(
        "revenue", "Revenue and collection efficiency", "Interest collected per month and collection efficiency per month.",
        portfolio.revenue,
        (MONTH, _c("interest_revenue", "money", "Interest collected"), _c("due_amount", "money", "Due"),
         _c("collected_amount", "money", "Collected"), _c("collection_efficiency", "share", "Collection efficiency")),
        rows='month', definition=(
            '`interest_revenue`: interest allocated by the payments made in the month (METRICS §2 allocation). '
            '`collection_efficiency`: what the payments so far have allocated to the instalments due in the month '
            '/ what those instalments were due (months up to the data date)'
        ), page="portfolio",
        shown=(Chart("revenue", "bars", "Interest revenue by month", "month", ("interest_revenue",)),
                Chart("efficiency", "lines", "Collection efficiency", "month", ("collection_efficiency",))),
    ),
    Report(
        "regions", "Regions", "Loans, outstanding and overdue share by client region.",
        portfolio.regions,
        (_c("region", "text", "Region"), LOANS, ACTIVE, OVERDUE, PRINCIPAL, _c("principal_overdue", "money", "Principal overdue"),
         OVERDUE_SHARE, OVERDUE_AMOUNT_SHARE),
        rows='region', definition=(
            'at the as-of date: loans issued, active, overdue, principal outstanding and overdue, overdue shares '
            '(count and amount); `(unknown)` when the client has no region'
        ), as_of=True, page="geography",
        shown=(Chart("regions-map", "region_map", "Principal outstanding and overdue share by region"),
                Chart("regions-bars", "bars", "Overdue share by region", "region", ("overdue_share",), sort="overdue_share"),
                Chart("regions-outstanding", "bars", "Principal outstanding by region", "region", ("principal_outstanding",),
                      sort="principal_outstanding")),
    ),
    Report(
        "risk", "Risk and fraud scores", "Overdue share, ever-60+ and write-off rate by risk-score and fraud-score band.",
        portfolio.risk,
        (_c("score", "text", "Score"), _c("band", "text", "Band"), LOANS, OVERDUE_SHARE,
         _c("ever60_share", "share", "Ever 60+"), _c("write_off_rate", "share", "Write-off rate")),
        rows='score × band', definition=(
            "bands of 0.2 of `risk_score` and `fraud_score` (the loan's, from its latest version); per band: "
            'loans issued by the as-of date, overdue share of active loans, ever-60+ share of loans (DPD > 60 at '
            'any snapshot), write-off rate (share of loans written off by the as-of date)'
        ), as_of=True, page="portfolio",
        shown=tuple(Chart(f"risk-{score}", "lines", f"Impact of the {score.replace('_', ' ')}", "band",
                           ("overdue_share", "ever60_share", "write_off_rate"), rows=lambda r, s=score: r["score"] == s)
                     for score in ("risk_score", "fraud_score")),
    ),
    Report(
        "products", "Products (terms)", "Term preference: loans and amount by product and term.",
        functools.partial(portfolio.products, view="terms"),
        (_c("product", "text", "Product"), _c("term", "text", "Term (months)"), LOANS, AMOUNT,
         _c("share_of_loans", "share", "Share of loans")),
        rows='product × term', definition='loans, amount, share of loans; `schedule` for loans with an explicit schedule', view="terms", page="portfolio",
        shown=(Chart("terms", "bars", "Loans by product and term", ("product", "term"), ("loans",)),),
    ),
    Report(
        "products", "Top merchants", "Merchant preference: the top 20 merchants by loans, with each one's overdue share.",
        functools.partial(portfolio.products, view="merchants"),
        (_c("merchant_id", "text", "Merchant"), _c("merchant_name", "text", "Merchant name"), LOANS, AMOUNT, ACTIVE,
         OVERDUE_SHARE),
        rows='merchant', definition='the top 20 merchants by loans: amount, active loans, overdue share at the as-of date', view="merchants", as_of=True, page="portfolio",
    ),
    Report(
        "clients", "Repeat borrowing", "Repeat borrowing: loans by the client's nth loan, and how many of those clients borrowed again.",
        functools.partial(portfolio.clients, view="repeat"),
        (_c("nth_loan", "text", "Client's nth loan"), LOANS, _c("share_of_loans", "share", "Share of loans"),
         _c("repeat_client_share", "share", "Borrowed again")),
        rows='nth loan', definition=(
            "loans by the client's nth loan (by issue date; 4+ together), share of loans, and of the clients "
            'who took an nth loan the share who took another (4+: a 4th or later, then another; on the first '
            'row, the share of clients with more than one loan)'
        ), view="repeat", page="portfolio",
        shown=(Chart("repeat", "bars", "Loans by the client's nth loan", "nth_loan", ("loans",)),),
    ),
    Report(
        "clients", "Clients by profit", "Top and bottom clients by profit (paid - lent).",
        functools.partial(portfolio.clients, view="profit"),
        (_c("group", "text", "Group"), _c("rank", "number", "Rank"), _c("client_id", "text", "Client"),
         _c("client_name", "text", "Name"), LOANS, _c("lent", "money", "Lent"), _c("paid", "money", "Paid"),
         _c("profit", "money", "Profit")),
        rows='top / bottom 10', definition=(
            'per client: lent (sum of amounts), paid (effective payments), profit = paid − lent; the two lists '
            'are ranked independently'
        ), view="profit", page="portfolio",
    ),
    Report(
        "clients", "Default rate by interest rate", "Default rate by interest-rate band (written off or ever 90+).",
        functools.partial(portfolio.clients, view="rates"),
        (_c("interest_rate_band", "text", "Interest rate"), LOANS, _c("defaulted", "count", "Defaulted"),
         _c("default_rate", "share", "Default rate")),
        rows='interest-rate band (10 points)', definition='default rate = loans written off or ever more than 90 days past due / loans', view="rates",
    ),
)

# The headline figures of the summary, as cards on the dashboard's overview and atop the HTML report.
KPIS = ("active", "principal_outstanding", "overdue_share", "par30", "npl")

PAGES = {  # dashboard pages, in order: path -> title
    "overview": "Overview", "delinquency": "Delinquency", "vintages": "Vintages", "portfolio": "Portfolio",
    "geography": "Geography", "provisions": "Provisions", "calls": "Call centre", "merchants": "Merchants", "lookup": "Loan lookup",
    "quality": "Data quality", "operations": "Operations",
}


# The loan lookup's tables (reports.lookup: find_loans, then loan_detail's tables by name): each
# one's title and columns, shown like every report's table (money in the loan's currency).
_VERSION, _FROM = _c("version_number", "number", "Version"), _c("valid_from", "date", "Valid from")
_TO = _c("valid_to", "date", "Valid to")
_CURRENT, _FILE, _LINE = _c("is_current", "text", "Current"), _c("file_name", "text", "File"), _c("line_no", "number", "Line")
_AFTER = ("The loan at the end of the event's day, every event of that day counted (its state timeline on that day; "
          "DPD by the same rule as every report)")
LOOKUP: dict[str, tuple[str, tuple[Column, ...]]] = {
    "matches": ("Matches", (
        _c("loan_id", "text", "Loan"), _c("client_id", "text", "Client"), _c("client_name", "text", "Name"),
        _c("product", "text", "Product"), AMOUNT, _c("currency", "text", "Currency"), _c("issue_date", "date", "Issued"),
        _c("source_status", "text", "Status"))),
    "life": ("Loan life", (
        _c("at", "date", "At", "When it happened (UTC). Events at the same instant: versions, charges, waivers, "
                               "payments, reversals, write-off, recoveries."),
        _c("event", "text", "Event", "version, charge, waiver, payment, reversal, write-off or recovery (a payment on or "
                                     "after the write-off date)"),
        _c("id", "text", "Reference", "The record's id; a version's number (v1, v2, ...); the write-off: the version that "
                                      "recorded it"),
        _c("amount", "money", "Amount", "A version: the amount lent; a write-off: the principal outstanding the day before"),
        _c("detail", "text", "Detail", "A version: what it changed; a payment: where it went (METRICS §2 allocation); "
                                       "a voided record: the reversal that voided it"),
        _c("state_after", "text", "State after", _AFTER),
        _c("dpd_after", "days", "DPD after", _AFTER),
        _c("principal_outstanding_after", "money", "Principal outstanding after", _AFTER),
        _c("past_due_after", "money", "Past due after", _AFTER),
        _c("is_voided", "text", "Voided", "A later reversal voided it from the start: it never counted"))),
    "loan versions": ("Loan versions", (
        _VERSION, _FROM, _TO, _CURRENT, AMOUNT, _c("interest_rate", "share", "Interest rate"),
        _c("issue_date", "date", "Issued"), _c("term_months", "number", "Term (months)"),
        _c("repayment", "text", "Repayment"), _c("source_status", "text", "Status"), _c("is_deleted", "text", "Deleted"),
        _FILE, _LINE)),
    "client versions": ("Client versions", (
        _VERSION, _FROM, _TO, _CURRENT, _c("client_name", "text", "Name"), _c("email", "text", "Email"),
        _c("phone", "text", "Phone"), _c("region", "text", "Region"), _c("city", "text", "City"),
        _c("timezone", "text", "Time zone"), _c("is_do_not_contact", "text", "Do not contact"), _FILE, _LINE)),
    "schedule": ("Schedule", (
        _c("instalment_number", "number", "Instalment"), _c("due_date", "date", "Due date"),
        _c("principal_amount", "money", "Principal"), _c("interest_amount", "money", "Interest"),
        _c("fee_amount", "money", "Fee", "Fees of the schedule itself; charged fees are under Charged"),
        _c("penalty_amount", "money", "Penalty", "Penalties of the schedule itself; charged penalties are under Charged"),
        _c("due_amount", "money", "Due"),
        _c("charged_amount", "money", "Charged", "Fees and penalties charged to the instalment, reversals applied"),
        _c("waived_amount", "money", "Waived", "What waivers forgave of the instalment"),
        _c("allocated_amount", "money", "Paid"),
        _c("paid_on_date", "date", "Paid on"))),
    "payments": ("Payments", (
        _c("payment_id", "text", "Payment"), _c("paid_at", "date", "Paid at"), _c("amount", "money", "Amount"),
        _c("payment_type", "text", "Type"), _c("reversed_payment_id", "text", "Reverses"),
        _c("is_reversed", "text", "Reversed"), _c("interest_amount", "money", "To interest"),
        _c("principal_amount", "money", "To principal"), _c("fee_amount", "money", "To fees"),
        _c("penalty_amount", "money", "To penalties"), _c("credit_amount", "money", "To credit"),
        _c("channel", "text", "Channel"))),
    "dpd history": ("DPD history", (
        _c("snapshot_date", "date", "Date"), _c("state", "text", "State"), _c("dpd", "days", "DPD"),
        _c("bucket", "text", "DPD bucket"), _c("principal_outstanding_amount", "money", "Principal outstanding"),
        _c("past_due_amount", "money", "Past due"))),
}


def by_name(name: str) -> list[Report]:
    """The entries of one report verb: one, or one per --view (or its view_option; the first is the default)."""
    return [r for r in REPORTS if r.name == name]


def get(key: str) -> Report:
    """A report by its key: the name, or name-view."""
    for r in REPORTS:
        if r.key == key or (r.name == key and r.view is None):
            return r
    raise KeyError(key)


def names() -> list[str]:
    return list(dict.fromkeys(r.name for r in REPORTS))


def on_page(page: str) -> list[Report]:
    return [r for r in REPORTS if r.page == page]


# docs/reports.md carries the registry as a table between these lines; `make docs` rewrites it and a
# test fails while it differs from the registry.
DOCS_START, DOCS_END = "<!-- registry: start (make docs) -->", "<!-- registry: end -->"


def docs_table() -> str:
    """Every report as a row of docs/reports.md: the verb, its rows, columns, definition (and its own
    options), function."""
    lines = [DOCS_START, "| report | rows | columns | definition | SQL |", "|---|---|---|---|---|"]
    for r in REPORTS:
        verb = f"`{r.verb}`"
        fn = getattr(r.query, "func", r.query)
        where = f"`{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}`"
        options = ("; options: " + ", ".join(p.usage() for p in r.params)) if r.params else ""
        lines.append(f"| {verb} | {r.rows} | {', '.join(f'`{c.name}`' for c in r.columns)} | {r.definition}{options} | {where} |")
    return "\n".join([*lines, DOCS_END])


def write_docs(path: str) -> bool:
    """Rewrite the registry table of a docs file; True when it changed."""
    from pathlib import Path

    file = Path(path)
    text = file.read_text(encoding="utf-8")
    before, rest = text.split(DOCS_START, 1)
    _, after = rest.split(DOCS_END, 1)
    new = before + docs_table() + after
    file.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m loanwatch.reports.registry docs/reports.md
    import sys

    for target in sys.argv[1:]:
        print(f"{target}: {'rewritten' if write_docs(target) else 'up to date'}")
