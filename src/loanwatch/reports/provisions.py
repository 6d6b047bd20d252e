"""Provisions and the delinquency forecast (METRICS §9-§10), at report time.

The marts hold what is fixed at a date: each loan's state, DPD and principal at any D
(fct_loan_snapshots, fct_loan_states), its schedule (fct_instalments), the month-to-month moves
between the six transition states with their counts and principal (fct_state_transitions, the
states in transition_states, a bucket's state in dpd_buckets.transition_state), write-offs and
recoveries (fct_loan_write_offs, fct_loan_recoveries). What depends on the as-of date and the
[provisions] settings is here:

- the window of complete months and the transition matrix P (exact fractions of integer cents or
  loan-months, ``estimate``); its powers and the PD (numpy, ``marginal_pd``);
- the LGD from write-offs and recoveries, or the configured fallback (``loss_given_default``);
- the expected credit loss: one DuckDB query over the active loans × their remaining months
  (exposure from the schedule, discounting at the loan's rate, the marginal PD of its state), summed
  by stage, product or bucket (``provisions``);
- the forecast x · P^h (``forecast``) and its one-month back-test (``forecast_backtest``).

P, the LGD and the forecast are estimated on the whole book of the report's currency, never on the
loans a filter selects (filters choose whose ECL is summed), and only from data up to the data date:
an as-of date after it (a projection) uses the months up to the data date. The stage rule is
reports/rules.py's ``stage_sql``.

Every table carries ``notes``: what its figures rest on (months of P fewer than the window, states
with no weight, the LGD and where it came from, the method), for the line under it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import numpy as np

from loanwatch.config import DEFAULTS, Settings
from loanwatch.errors import UsageProblem
from loanwatch.reports import NO_FILTER, LoanFilter, as_of_date, choose_currency, data_date, run_query
from loanwatch.reports.delinquency import _loans_at  # the loans at a date (snapshot rows when precomputed)
from loanwatch.reports.rules import STAGES, stage_sql
from loanwatch.reports.table import Noted

GROUPS = ("stage", "product", "bucket")
METHODS = ("ifrs9", "cecl")
WEIGHTS = ("balance", "count")
# The 12-month horizon of a stage-1 loan's expected loss under IFRS 9 (METRICS §9): not a setting.
TWELVE_MONTHS = 12
# `report forecast --months`: from 1 to this (50 years; each month adds six rows).
MAX_FORECAST_MONTHS = 600
ALL = "(all)"


@dataclass(frozen=True)
class ProvisionSettings:
    """[provisions] (config.py, validated when read)."""

    stage2_dpd: int
    stage3_dpd: int
    pd_window_months: int
    pd_weight: str
    lgd: Decimal
    lgd_min_loans: int
    lgd_window_months: int
    method: str
    backtest_months: int

    @classmethod
    def of(cls, settings: Settings | None) -> ProvisionSettings:
        values = settings.section("provisions") if settings is not None else dict(DEFAULTS["provisions"])
        values["lgd"] = Decimal(str(values["lgd"]))
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


# --- rounding -------------------------------------------------------------------------------------

def half_up(value: Fraction | float | Decimal | int, places: int) -> Decimal:
    """METRICS' rounding: the exact value (a float as the binary number it holds) rounded half-up
    (half away from zero) to `places` decimals."""
    q = Fraction(value) * 10 ** places
    n = (2 * abs(q.numerator) + q.denominator) // (2 * q.denominator)
    whole, part = divmod(n, 10 ** places)
    sign = "-" if q < 0 and n else ""
    return Decimal(f"{sign}{whole}.{part:0{places}d}") if places else Decimal(f"{sign}{whole}")


# --- the book: states, complete months and their transition weights ------------------------------

@dataclass(frozen=True)
class Book:
    """The transition data of one currency: the six states in order, the complete months (month,
    S(m)) with a previous month end in the calendar, and each month's weights W[i][j] as integers
    (cents of principal at S(m-1), or loans)."""

    currency: str | None
    states: tuple[str, ...]
    absorbing: frozenset[int]
    months: tuple[tuple[str, dt.date], ...]
    weights: dict[str, list[list[int]]]

    @property
    def default(self) -> int:
        return self.states.index("default")

    def window(self, day: dt.date, n: int) -> list[tuple[str, dt.date]]:
        """The latest n months m with S(m) on or before day (METRICS §9): fewer when the calendar is shorter."""
        eligible = [m for m in self.months if m[1] <= day]
        return eligible[-n:] if n > 0 else []


def load_book(con: duckdb.DuckDBPyConnection, currency: str | None, weight: str) -> Book:
    """The book of a currency from the marts, weighed by principal (balance) or loans (count)."""
    rows = con.execute("SELECT state, is_absorbing FROM marts.transition_states ORDER BY sort_order").fetchall()
    states = tuple(r[0] for r in rows)
    index = {s: i for i, s in enumerate(states)}
    months = tuple(tuple(r) for r in con.execute(
        """SELECT month, snapshot_date FROM marts.snapshot_dates
           WHERE NOT is_as_of AND previous_snapshot_date IS NOT NULL ORDER BY month""").fetchall())
    measure = "CAST(weight_amount * 100 AS HUGEINT)" if weight == "balance" else "loans"
    weights: dict[str, list[list[int]]] = {}
    for month, from_state, to_state, w in con.execute(
            f"""SELECT month, from_state, to_state, {measure} FROM marts.fct_state_transitions
                WHERE currency IS NOT DISTINCT FROM $currency""", {"currency": currency}).fetchall():
        cells = weights.setdefault(month, [[0] * len(states) for _ in states])
        cells[index[from_state]][index[to_state]] += int(w)
    return Book(currency, states, frozenset(index[r[0]] for r in rows if r[1]), months, weights)


@dataclass(frozen=True)
class Matrix:
    """P at a date (METRICS §9): pooled weights W of the window's months, P_ij = W_ij / Σ_k W_ik for
    a transient state with weight, the identity row for absorbing states and states with no weight."""

    book: Book
    day: dt.date
    months: tuple[str, ...]
    pooled: tuple[tuple[int, ...], ...]

    @property
    def states(self) -> tuple[str, ...]:
        return self.book.states

    @property
    def unweighted(self) -> list[str]:
        """Transient states with no weight in the window: kept at 1 on the diagonal."""
        return [s for i, s in enumerate(self.states) if i not in self.book.absorbing and not sum(self.pooled[i])]

    def probability(self, i: int, j: int) -> Fraction:
        total = sum(self.pooled[i])
        if i in self.book.absorbing or not total:
            return Fraction(int(i == j))
        return Fraction(self.pooled[i][j], total)

    def exact(self) -> list[list[Fraction]]:
        return [[self.probability(i, j) for j in range(len(self.states))] for i in range(len(self.states))]

    def array(self) -> np.ndarray:
        return np.array([[float(p) for p in row] for row in self.exact()])

    def notes(self, window_months: int, weight: str | None = None) -> list[str]:
        """What the matrix rests on, for the line under a table: its months (and, given
        [provisions] pd_weight, its weights), fewer months than the window, states with no weight."""
        n = len(self.months)
        said = []
        if n >= window_months and weight:
            said.append(f"the transition matrix rests on {n} months ({self.months[0]} to {self.months[-1]}), weighted by "
                        + ("each loan's principal at the month's start" if weight == "balance" else "loan counts")
                        + " ([provisions] pd_weight)")
        if n == 0:
            said.append(f"no complete month ends on or before {self.day} after the first: the transition matrix is the "
                        "identity (nothing is projected to move, so the PD of every active state but default is 0)")
        elif n < window_months:
            said.append(f"the transition matrix rests on {n} month{'s' if n > 1 else ''} ({self.months[0]} to "
                        f"{self.months[-1]}), fewer than the {window_months} of [provisions] pd_window_months: "
                        "the data is shorter")
        if n and self.unweighted:
            said.append(f"no weight in the window for {', '.join(self.unweighted)}: kept at 1 on the diagonal (its "
                        "loans are projected to stay, with a PD of 0)")
        return said


def estimate(book: Book, day: dt.date, window_months: int) -> Matrix:
    """P at `day` from the book's months (METRICS §9)."""
    months = book.window(day, window_months)
    size = len(book.states)
    pooled = [[0] * size for _ in range(size)]
    for month, _ in months:
        for i, row in enumerate(book.weights.get(month, ())):
            for j, w in enumerate(row):
                pooled[i][j] += w
    return Matrix(book, day, tuple(m for m, _ in months), tuple(tuple(r) for r in pooled))


def marginal_pd(p: np.ndarray, default: int, horizon: int) -> np.ndarray:
    """mPD_i(t) for t = 1..horizon as rows (METRICS §9): CPD_i(t) = [P^t]_{i,default}, CPD(0) = 0,
    mPD(t) = CPD(t) − CPD(t−1). Binary floating point, as METRICS allows."""
    cpd = np.zeros((horizon + 1, p.shape[0]))
    power = np.eye(p.shape[0])
    for t in range(1, horizon + 1):
        power = power @ p
        cpd[t] = power[:, default]
    return np.diff(cpd, axis=0)


# --- the report's currency and dates --------------------------------------------------------------

def _currency(con: duckdb.DuckDBPyConnection, f: LoanFilter | None) -> tuple[LoanFilter, str | None]:
    """The filter and the currency whose book estimates P and LGD: --currency (the CLI sets it when
    loans have several), else the only one, else the one choose_currency picks."""
    f = f or NO_FILTER
    if f.currency:
        return f, f.currency
    held = [r[0] for r in con.execute("SELECT DISTINCT currency FROM marts.dim_loans WHERE NOT is_cancelled").fetchall()]
    if len(held) <= 1:
        return f, held[0] if held else None
    f, currency, _ = choose_currency(con, f, None, None)
    return f, currency


def _estimation_date(con: duckdb.DuckDBPyConnection, day: dt.date) -> tuple[dt.date, list[str]]:
    """The date P and LGD are estimated at: the as-of date, or the data date when the as-of date is
    after it (a projection's month ends have no payments, only states as if nothing was paid)."""
    latest = data_date(con)
    if latest is not None and day > latest:
        return latest, [f"the transition matrix and LGD use the data up to the data date {latest} "
                        f"(the as-of date {day} is a projection)"]
    return day, []


# --- LGD ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lgd:
    value: Fraction
    loans: int
    written_off: Decimal
    recovered: Decimal
    cutoff: dt.date
    from_data: bool

    def note(self, s: ProvisionSettings) -> str:
        share = half_up(self.value, 6)
        if self.from_data:
            return (f"LGD {share} = 1 − recoveries {self.recovered:,.2f} / written off {self.written_off:,.2f}: "
                    f"{self.loans:,} loan{'' if self.loans == 1 else 's'} written off up to {self.cutoff}, recoveries within "
                    f"{s.lgd_window_months} month{'' if s.lgd_window_months == 1 else 's'} of each write-off")
        loans = f"{self.loans:,} loan{'' if self.loans == 1 else 's'} written off up to {self.cutoff}"
        why = (f"no principal on the book at the write-off of the {loans}" if self.loans >= s.lgd_min_loans
               else f"{loans}, fewer than the {s.lgd_min_loans} of [provisions] lgd_min_loans")
        return f"LGD {share} = [provisions] lgd: {why}"


def loss_given_default(con: duckdb.DuckDBPyConnection, day: dt.date, currency: str | None, s: ProvisionSettings) -> Lgd:
    """METRICS §9: over the loans written off on or before add_months(day, −L) (L = lgd_window_months),
    when at least lgd_min_loans: 1 − Σ recoveries within L months of each write-off (both ends
    inclusive) / Σ written-off amount, floored at 0; otherwise [provisions] lgd (also when nothing
    was on the book at their write-offs)."""
    cutoff, loans, written_off, recovered = con.execute(
        """WITH cohort AS (
               SELECT w.loan_id, w.written_off_date, w.principal_written_off_amount
               FROM marts.fct_loan_write_offs w JOIN marts.dim_loans l USING (loan_id)
               WHERE l.currency IS NOT DISTINCT FROM $currency
                 AND w.written_off_date <= CAST($day - to_months($window) AS DATE)
           )
           SELECT CAST($day - to_months($window) AS DATE), count(*),
                  CAST(coalesce(sum(principal_written_off_amount), 0) AS DECIMAL(38,2)),
                  (SELECT CAST(coalesce(sum(r.recovery_amount), 0) AS DECIMAL(38,2))
                   FROM marts.fct_loan_recoveries r JOIN cohort c USING (loan_id)
                   WHERE r.paid_date <= CAST(c.written_off_date + to_months($window) AS DATE))
           FROM cohort""",
        {"day": day, "window": s.lgd_window_months, "currency": currency}).fetchone()
    if loans >= s.lgd_min_loans and written_off > 0:
        value = max(Fraction(0), 1 - Fraction(recovered) / Fraction(written_off))
        return Lgd(value, loans, written_off, recovered, cutoff, True)
    return Lgd(Fraction(s.lgd), loans, written_off, recovered, cutoff, False)


# --- transition-matrix ----------------------------------------------------------------------------

def transition_matrix(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None,
                      settings: Settings | None = None) -> Noted:
    """`report transition-matrix` (METRICS §9): P at the as-of date, every pair of the six states.
    weight: the pooled weight of the pair (principal at S(m−1) with pd_weight balance, loan-months
    with count; null on the absorbing rows, which are not estimated); months: the window's months.
    The loan filters do not apply (P is the book's), only the currency."""
    s = ProvisionSettings.of(settings)
    day = as_of_date(con, as_of)
    f, currency = _currency(con, f)
    estimated_at, notes = _estimation_date(con, day)
    p = estimate(load_book(con, currency, s.pd_weight), estimated_at, s.pd_window_months)
    unweighted = set(p.unweighted)
    rows = []
    for i, from_state in enumerate(p.states):
        absorbing = i in p.book.absorbing
        note = "absorbing: not estimated" if absorbing else "no weight: kept at 1" if from_state in unweighted else None
        for j, to_state in enumerate(p.states):
            weight: Any = None
            if not absorbing:
                weight = half_up(Fraction(p.pooled[i][j], 100), 2) if s.pd_weight == "balance" else p.pooled[i][j]
            rows.append((from_state, to_state, half_up(p.probability(i, j), 6), weight, len(p.months), note))
    return Noted(["from_state", "to_state", "probability", "weight", "months", "note"], rows,
                 notes + p.notes(s.pd_window_months, s.pd_weight))


# --- provisions -----------------------------------------------------------------------------------

# The expected credit loss of each active loan at $as_of (METRICS §9), set-based over loans ×
# their remaining months. $mpd[state][t] is the marginal PD of the state's sort order in month t
# (numpy, from P's powers). months_to: m = the least m with add_months(D, m) >= the due date
# (month numbers differ by m or m - 1; DuckDB's + INTERVAL clamps the day as METRICS §1 does).
_ECL = """
selected AS (
    SELECT l.loan_id, l.product, l.bucket, ts.sort_order AS state_order, l.principal_outstanding,
           coalesce(l.interest_rate, 0) AS interest_rate, {stage} AS stage
    FROM loans_at AS l
    JOIN marts.dpd_buckets b ON b.bucket = l.bucket
    JOIN marts.transition_states ts ON ts.state = b.transition_state
    WHERE l.is_active AND {where}
),
months_to AS (
    SELECT i.loan_id, i.due_date, i.principal_amount,
           (year(i.due_date) * 12 + month(i.due_date)) - (year($as_of) * 12 + month($as_of))
             + CASE WHEN CAST($as_of + to_months((year(i.due_date) * 12 + month(i.due_date))
                                                 - (year($as_of) * 12 + month($as_of))) AS DATE) >= i.due_date
                    THEN 0 ELSE 1 END AS m
    FROM marts.fct_instalments i SEMI JOIN selected s ON s.loan_id = i.loan_id AND s.stage < 3
),
remaining AS (      -- T: the least k >= 1 with add_months(D, k) >= the last due date
    SELECT loan_id, greatest(1, max(m)) AS term FROM months_to GROUP BY loan_id
),
scheduled AS (      -- principal due in (D, add_months(D, t - 1)] enters EAD(t) from t = m + 1 on
    SELECT loan_id, m + 1 AS t, sum(principal_amount) AS principal
    FROM months_to WHERE due_date > $as_of GROUP BY loan_id, m + 1
),
horizon AS (
    SELECT s.*, CASE WHEN s.stage = 1 AND $method = 'ifrs9' THEN least({twelve}, coalesce(r.term, 1))
                     ELSE coalesce(r.term, 1) END AS months
    FROM selected s LEFT JOIN remaining r USING (loan_id)
    WHERE s.stage < 3
),
grid AS (
    SELECT h.loan_id, h.state_order, h.principal_outstanding, h.interest_rate, g.t
    FROM horizon h, LATERAL (SELECT unnest(range(1, h.months + 1)) AS t) g
),
exposure AS (
    SELECT g.*, greatest(0, g.principal_outstanding - coalesce(sum(s.principal) OVER (
               PARTITION BY g.loan_id ORDER BY g.t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0)) AS ead
    FROM grid g LEFT JOIN scheduled s ON s.loan_id = g.loan_id AND s.t = g.t
),
ecl AS (    -- each month's term in decimal, so that the sums are exact and in no particular order
    SELECT loan_id, sum(CAST($mpd[state_order][t] * $lgd_double * CAST(ead AS DOUBLE)
                             * pow(1 + CAST(interest_rate AS DOUBLE) / 12, -t) AS DECIMAL(38,12))) AS ecl
    FROM exposure GROUP BY loan_id
    UNION ALL
    SELECT loan_id, CAST(CAST($lgd AS DECIMAL(20,18)) * principal_outstanding AS DECIMAL(38,12)) FROM selected WHERE stage = 3
),
per_loan AS (
    SELECT s.*, {group} AS grp, coalesce(e.ecl, 0) AS ecl
    FROM selected s LEFT JOIN ecl e USING (loan_id)
),
groups AS ({groups}),
totals AS (
    SELECT g.grp, g.sort_order, count(p.loan_id) AS loans,
           CAST(coalesce(sum(p.principal_outstanding), 0) AS DECIMAL(38,2)) AS principal_outstanding,
           CAST(coalesce(sum(p.ecl), 0) AS DECIMAL(38,12)) AS ecl
    FROM groups g LEFT JOIN per_loan p ON p.grp = g.grp
    GROUP BY g.grp, g.sort_order
    UNION ALL
    SELECT '(all)', 2147483647, count(*), CAST(coalesce(sum(principal_outstanding), 0) AS DECIMAL(38,2)),
           CAST(coalesce(sum(ecl), 0) AS DECIMAL(38,12))
    FROM per_loan
)
SELECT grp, loans, principal_outstanding, ecl FROM totals ORDER BY sort_order, grp
"""
_GROUP_BY = {
    "stage": ("CAST(s.stage AS VARCHAR)",
              "SELECT * FROM (VALUES " + ", ".join(f"('{n}', {n})" for n in STAGES) + ") AS g(grp, sort_order)"),
    "bucket": ("s.bucket", "SELECT bucket AS grp, sort_order FROM marts.dpd_buckets"),
    "product": ("coalesce(s.product, '(none)')",
                "SELECT grp, row_number() OVER (ORDER BY grp) AS sort_order "
                "FROM (SELECT DISTINCT coalesce(product, '(none)') AS grp FROM selected)"),
}


def _max_term(con: duckdb.DuckDBPyConnection, day: dt.date) -> int:
    """An upper bound of every loan's remaining term at day, in months (at least 1)."""
    last = con.execute("SELECT max(due_date) FROM marts.fct_instalments").fetchone()[0]
    if last is None or last <= day:
        return 1
    return (last.year * 12 + last.month) - (day.year * 12 + day.month) + 1


def provisions(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None,
               by: str = "stage", method: str | None = None, settings: Settings | None = None) -> Noted:
    """`report provisions` (METRICS §9): the expected credit loss of the active loans at the as-of
    date that the filters select, by stage (1, 2, 3), product or DPD bucket, then `(all)`; method
    ifrs9 or cecl (default [provisions] method). P and LGD come from the whole book of the currency.
    ecl is the sum of the loans' unrounded ECL rounded to cents; coverage = that exact sum /
    principal outstanding (6 decimals; null for a group with none)."""
    s = ProvisionSettings.of(settings)
    method = method or s.method
    if by not in GROUPS:
        raise UsageProblem(f"--by {by!r}: use one of {', '.join(GROUPS)}")
    if method not in METHODS:
        raise UsageProblem(f"--method {method!r}: use one of {', '.join(METHODS)}")
    day = as_of_date(con, as_of)
    f, currency = _currency(con, f)
    estimated_at, notes = _estimation_date(con, day)
    p = estimate(load_book(con, currency, s.pd_weight), estimated_at, s.pd_window_months)
    lgd = loss_given_default(con, estimated_at, currency, s)
    mpd = marginal_pd(p.array(), p.book.default, _max_term(con, day))
    where, params = f.sql("l")
    group, groups = _GROUP_BY[by]
    sql = "WITH " + _loans_at(con, day) + "," + _ECL.format(
        stage=stage_sql("l.dpd"), where=where, twelve=TWELVE_MONTHS, group=group, groups=groups)
    params.update(as_of=day, method=method, stage2_dpd=s.stage2_dpd, stage3_dpd=s.stage3_dpd,
                  lgd=half_up(lgd.value, 18), lgd_double=float(lgd.value), mpd=mpd.T.tolist())
    rows = []
    for grp, loans, principal, ecl in run_query(con, sql, params).rows:
        exact = Fraction(ecl)
        rows.append((grp, loans, principal, half_up(exact, 2),
                     half_up(exact / Fraction(principal), 6) if principal else None))
    said = [f"method {method}: " + ("stage 1 takes 12 months of expected loss, stage 2 the lifetime" if method == "ifrs9"
                                    else "every loan the lifetime expected loss (CECL)")
            + (f"; stage 2 from DPD > {s.stage2_dpd}" if s.stage2_dpd < s.stage3_dpd
               else "; no stage 2 ([provisions] stage2_dpd = stage3_dpd)")
            + f", stage 3 from DPD > {s.stage3_dpd}",
            lgd.note(s)]
    transient = [i for i in range(len(p.states)) if i not in p.book.absorbing]
    if p.months and not mpd[:, transient].sum():
        said.append("no active state reaches default in this matrix (the moves into default are not in its months): "
                    "every PD is 0, so stages 1 and 2 carry no expected loss")
    return Noted(["group", "loans", "principal_outstanding", "ecl", "coverage"], rows,
                 said + notes + p.notes(s.pd_window_months, s.pd_weight))


# --- forecast and back-test -----------------------------------------------------------------------

def _last_month_end(con: duckdb.DuckDBPyConnection, day: dt.date) -> tuple[str, dt.date] | None:
    """M: the last month whose end S(M) is on or before day (the first month's too)."""
    row = con.execute("""SELECT month, snapshot_date FROM marts.snapshot_dates
                         WHERE NOT is_as_of AND snapshot_date <= $day ORDER BY month DESC LIMIT 1""",
                      {"day": day}).fetchone()
    return tuple(row) if row else None


def _add_month(month: str, h: int) -> str:
    year, number = map(int, month.split("-"))
    index = year * 12 + number - 1 + h
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def forecast(con: duckdb.DuckDBPyConnection, months: int = 6, as_of: dt.date | None = None, f: LoanFilter | None = None,
             settings: Settings | None = None) -> Noted:
    """`report forecast` (METRICS §10): from the last month end M on or before the as-of date (default
    the data date), the shares by principal of the active loans in each state at S(M), projected
    x · P^h for h = 1..months with P at S(M); run-off (no new loans). share (6 decimals) and
    principal = share × the principal at S(M) (2 decimals), every state of every month."""
    if not 1 <= months <= MAX_FORECAST_MONTHS:
        raise UsageProblem(f"--months {months}: give a number of months from 1 to {MAX_FORECAST_MONTHS}")
    s = ProvisionSettings.of(settings)
    day = as_of_date(con, as_of)
    f, currency = _currency(con, f)
    estimated_at, notes = _estimation_date(con, day)
    book = load_book(con, currency, s.pd_weight)
    columns = ["month", "state", "share", "principal"]
    start = _last_month_end(con, estimated_at)
    if start is None:
        return Noted(columns, [], notes + [f"no month ends on or before {estimated_at}: nothing to project from"])
    month, month_end = start
    by_state = dict(con.execute(
        """SELECT b.transition_state, CAST(sum(s.principal_outstanding_amount) * 100 AS HUGEINT)
           FROM marts.fct_loan_snapshots s
           JOIN marts.dim_loans l USING (loan_id)
           JOIN marts.dpd_buckets b ON b.bucket = s.bucket
           WHERE s.snapshot_date = $month_end AND s.is_active AND l.currency IS NOT DISTINCT FROM $currency
           GROUP BY 1""", {"month_end": month_end, "currency": currency}).fetchall())
    total = sum(by_state.values())
    if not total:
        return Noted(columns, [], notes + [f"no principal outstanding at {month_end}: nothing to project"])
    p = estimate(book, month_end, s.pd_window_months)
    x = np.array([by_state.get(state, 0) / total for state in book.states])
    rows = []
    power = p.array()
    projected = x
    for h in range(1, months + 1):
        projected = projected @ power
        for state, share in zip(book.states, projected):
            rows.append((_add_month(month, h), state, half_up(float(share), 6),
                         half_up(Fraction(float(share)) * Fraction(total, 100), 2)))
    said = [f"from the active loans at {month_end} ({Decimal(total).scaleb(-2):,.2f} of principal), with the transition "
            "matrix at that date; run-off: no new loans, and principal is the starting principal by state (a closed "
            "share was repaid, a default share was lost or is still owed)"]
    return Noted(columns, rows, notes + said + p.notes(s.pd_window_months, s.pd_weight))


def forecast_backtest(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, f: LoanFilter | None = None,
                      settings: Settings | None = None) -> Noted:
    """`report forecast-backtest` (METRICS §10): for each of the last [provisions] backtest_months
    complete months m on or before the as-of date (default the data date), the loans active at
    S(m−1) by their state then (x, weighed as P is), projected one month with P estimated at S(m−1)
    from the data up to then, against where the same loans are at S(m) (actual, same weights).
    error = projected − actual; a row (all) per month with Σ|error| / 2, the share of the book the
    forecast put in the wrong state. months: the months behind that P."""
    s = ProvisionSettings.of(settings)
    day = as_of_date(con, as_of)
    f, currency = _currency(con, f)
    estimated_at, notes = _estimation_date(con, day)
    book = load_book(con, currency, s.pd_weight)
    chosen = book.window(estimated_at, s.backtest_months)
    columns = ["month", "state", "projected_share", "actual_share", "error", "months"]
    said = []
    if len(chosen) < s.backtest_months:
        said.append(f"{len(chosen)} month{'' if len(chosen) == 1 else 's'} to test, fewer than the "
                    f"{s.backtest_months} of [provisions] backtest_months: the data is shorter")
    rows = []
    calendar = dict(con.execute("SELECT month, previous_snapshot_date FROM marts.snapshot_dates").fetchall())
    for month, _ in chosen:
        weights = book.weights.get(month)
        total = sum(map(sum, weights)) if weights else 0
        if not total:
            said.append(f"{month}: no loan of the currency was active at the month's start: not tested")
            continue
        p = estimate(book, calendar[month], s.pd_window_months)
        size = len(book.states)
        x = [Fraction(sum(weights[i]), total) for i in range(size)]
        actual = [Fraction(sum(weights[i][j] for i in range(size)), total) for j in range(size)]
        projected = [sum(x[i] * p.probability(i, j) for i in range(size)) for j in range(size)]
        errors = [projected[j] - actual[j] for j in range(size)]
        for j, state in enumerate(book.states):
            rows.append((month, state, half_up(projected[j], 6), half_up(actual[j], 6), half_up(errors[j], 6),
                         len(p.months)))
        rows.append((month, ALL, None, None, half_up(sum(abs(e) for e in errors) / 2, 6), len(p.months)))
        if p.unweighted:
            said.append(f"{month}: P at {calendar[month]} from {len(p.months)} month{'' if len(p.months) == 1 else 's'}, "
                        f"no weight for {', '.join(p.unweighted)} (kept at 1)")
    return Noted(columns, rows, notes + said)
