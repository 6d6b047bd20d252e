"""The loanwatch dashboard (Streamlit). Run it with `loanwatch dashboard`.

It reads only the serving snapshot (read-only), so it never blocks a build, and it reopens the
snapshot when a build publishes a new one (the file's mtime changes): no restart needed. Every
figure comes from the report registry (`loanwatch.reports.registry`), as in the CLI and the HTML
report: a page shows the registry's reports of that page. Data text is shown through
st.dataframe (literal) or escaped for Plotly; it never goes through markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from decimal import Decimal

import duckdb
import streamlit as st

from loanwatch import charts, quality, reports
from loanwatch.config import load_settings
from loanwatch.output import column_titles, human_title, parse_amount, shown_value
from loanwatch.reports import LoanFilter, View, calls, ledger, registry
from loanwatch.reports.table import Table, notes_of
from loanwatch.serve import NoSnapshot, open_snapshot


def _settings():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--home")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return load_settings(args.home)


SETTINGS = _settings()
HOME = SETTINGS.home
SNAPSHOT = SETTINGS.serving_path


@st.cache_resource(max_entries=2)
def _database(path: str, mtime_ns: int) -> duckdb.DuckDBPyConnection:
    # One connection per published snapshot (keyed by its mtime); sessions use cursors of it.
    return open_snapshot(SETTINGS)


def connection() -> duckdb.DuckDBPyConnection | None:
    if not SNAPSHOT.exists():
        return None
    try:
        cur = _database(str(SNAPSHOT), SNAPSHOT.stat().st_mtime_ns).cursor()
    except NoSnapshot as exc:  # damaged or cut short: say what to do, not a stack trace
        st.error(str(exc))
        st.stop()
    cur.execute("SET TimeZone = 'UTC'")
    cur.execute("USE snapshot")
    return cur


def _column_config(kind: str, title: str, help: str = ""):
    tip = {"help": help} if help else {}  # (our own words from the registry, never data)
    if kind == "money":
        return st.column_config.NumberColumn(title, format="%,.2f", **tip)
    if kind == "share":  # shown ×100 (the values are fractions)
        return st.column_config.NumberColumn(title, format="%.1f %%", **tip)
    if kind in ("count", "days"):
        return st.column_config.NumberColumn(title, format="%,d", **tip)
    if kind == "number":
        return st.column_config.NumberColumn(title, format="localized", **tip)
    return st.column_config.Column(title, **tip)


def show_table(table: Table, title: str, key: str, columns=None, currency: str | None = None) -> None:
    """A table for people: human titles (money with its currency), separators, shares as
    percentages with one decimal, blank cells for missing values; the CSV download keeps exact
    values."""
    specs = column_titles(table, columns, currency)

    def cell(kind: str, v):
        if v is None:
            return None  # shown blank (placeholder), never "None"
        if kind == "share":
            return float(v) * 100
        return charts.num(v)

    st.dataframe([{c.name: cell(c.kind, v) for c, v in zip(specs, r)} for r in table.rows],
                 column_config={c.name: _column_config(c.kind, c.title, c.help) for c in specs},
                 width="stretch", hide_index=True, placeholder="")
    download(table, title, key)


def download(table: Table, title: str, key: str) -> None:
    st.download_button(f"Download CSV: {title}", data=charts.to_csv(table), file_name=f"{key}.csv",
                       mime="text/csv", key=f"csv-{key}")


def show_report(con, report: registry.Report, f, view: View) -> None:
    """A registry report on its page: what it shows (reports.registry.Report.parts), in order: each
    chart (with the choice a chart needs) with a CSV download, each table with its heading and
    what it is of; the page's filter, with a part's own options and the report's options it fixes;
    the home's settings for a report that reads them. What its figures rest on (a Noted table's
    notes) is said under its first part. Money of several currencies (the merchant ledger's) is
    drawn one currency at a time, a picker choosing it."""
    table = report.run(con, f=f, as_of=view.as_of, settings=SETTINGS)
    view = view.for_report(report)
    notes = notes_of(table)
    if not table.rows:
        st.subheader(report.title)
        st.info(f"Nothing to show for {view.describe()}.")
        for line in notes:
            st.caption(line)
        return
    held = reports.currencies_in(table) if report.charts else []
    currency = (st.radio("Currency", held, horizontal=True, key=f"{report.key}-currency") if len(held) > 1 else held[0]
                ) if held else None
    table, view = reports.in_currency(table, view, currency)
    tables = {((), ()): table}
    measure = None
    for i, part in enumerate(report.parts):
        if i == 1:
            for line in notes:
                st.caption(line)
        options = (tuple(sorted(part.options.items())), tuple(sorted(part.params.items())))
        if options not in tables:
            tables[options], _ = reports.in_currency(report.run_part(con, part, f, view.as_of, SETTINGS), view, currency)
        shown = tables[options]
        if part.heading:
            st.subheader(part.heading)
        if part.kind == "table":
            st.caption(part.note or view.describe())
            show_table(shown, part.title, part.key, report.columns, view.currency)
            continue
        choice = None
        if part.kind == "roll_heatmap":
            months = sorted({r["month"] for r in shown.as_dicts()})
            default = charts.default_roll_month(shown.as_dicts(), view)
            choice = st.selectbox("Roll-rate month", months, index=months.index(default),
                                  format_func=lambda m: f"{m} (partial month)" if m == view.partial else m)
        elif part.kind in ("vintage_heatmap", "vintage_curves"):
            if measure is None:
                titles = {report.column(y).title: y for y in part.y}
                measure = titles[st.radio("Measure", list(titles), horizontal=True)]
            choice = measure
            if part.kind == "vintage_curves":
                cohorts = sorted({r["cohort"] for r in shown.as_dicts()})
                chosen = st.multiselect("Cohorts", cohorts, default=charts.spread(cohorts), max_selections=len(charts.PALETTE),
                                        key="vintage-cohorts")
                choice = (measure, chosen)
        fig = charts.figure(report, part, shown, choice, view)
        st.plotly_chart(fig, width="stretch", config=charts.CONFIG, key=f"chart-{part.key}")
        if part.kind == "region_map" and (unlabelled := (fig.layout.meta or {}).get("unlabelled_regions")):
            st.caption(f"{len(unlabelled)} regions have no label (it would overlap another): hover over a bubble for "
                       "its name, or see the bars below.")
        if part.kind == "region_map" and (unplaced := (fig.layout.meta or {}).get("unplaced_regions")):
            st.caption("Not on the map (unknown region names): " + ", ".join(unplaced).replace("<", "&lt;"))
        download(shown, part.title, part.key)
    if len(report.parts) == 1:
        for line in notes:
            st.caption(line)
    if report.key == "overdue-monthly":
        with st.expander("Table"):
            show_table(table, report.title, f"{report.key}-table", report.columns, view.currency)


def header(con, title: str, view: View | None = None) -> None:
    st.title(title)
    published = dt.datetime.fromtimestamp(SNAPSHOT.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    day = reports.data_date(con)
    st.caption(f"Data date {day or 'none: no data loaded yet'} · snapshot published {published}")
    if view is None:
        return
    if view.projection:
        st.warning(f"Projection: as of {view.as_of}, after the data date {view.data_date}. No payment after the "
                   "data date is known, so every instalment due since counts as unpaid.", icon="⚠️")
    if view.left_out:
        message = reports.left_out_message(view.currency, view.left_out)
        st.warning(message[0].upper() + message[1:] + " (choose the currency in the sidebar).")
    if view.partial:
        st.caption(f"{view.partial} is a partial month: its figures cover {view.partial}-01 to {view.data_date}; "
                   "charts shade it and the roll-rate month opens on the last full month.")


def needs(con, kind: str) -> bool:
    """Whether the warehouse holds the data of a page; when not, the page says what to load."""
    if reports.holds(con, kind):
        return True
    message = reports.MISSING[kind][1]
    st.info(message[0].upper() + message[1:] + ".")
    return False


def sidebar_filter(con) -> tuple[LoanFilter, View]:
    """The loan filter of every page (amount range with slider and exact inputs, product, region),
    the currency of money, and the as-of date of the as-of figures (after the data date: a
    projection, up to [reports] projection_horizon_days)."""
    loans = registry.FILTERS["loans"]
    if not reports.holds(con, "loans"):
        return reports.prepare(con, loans, LoanFilter(), strict=False)
    day = reports.data_date(con)
    lo, hi, products, regions = con.execute(
        """SELECT floor(min(amount)), ceil(max(amount)), list(DISTINCT product ORDER BY product),
                  list(DISTINCT region ORDER BY region)
           FROM marts.dim_loans WHERE NOT is_cancelled"""
    ).fetchall()[0]
    lo, hi = float(lo or 0), float(hi or 1)
    state = st.session_state

    def show_bounds(low: float, high: float) -> None:
        # the exact inputs are text, so that amounts show separators (number inputs cannot)
        state.amount_min, state.amount_max = low, high
        state.amount_min_text, state.amount_max_text = shown_value("money", low), shown_value("money", high)

    if state.get("amount_bounds") != (lo, hi):
        state.amount_bounds = (lo, hi)
        state.amount_range = (lo, hi)
        show_bounds(lo, hi)

    def from_slider():
        show_bounds(*state.amount_range)
        state.amount_problem = None

    def from_inputs():
        typed = {side: parse_amount(state[f"amount_{side}_text"]) for side in ("min", "max")}
        wrong = [f"{side} amount {state[f'amount_{side}_text']!r}" for side, v in typed.items() if v is None]
        state.amount_problem = f"Not an amount: {', '.join(wrong)}; kept the last one." if wrong else None
        low = state.amount_min if typed["min"] is None else typed["min"]
        high = state.amount_max if typed["max"] is None else typed["max"]
        show_bounds(low, high)
        state.amount_range = (max(lo, min(low, hi)), max(lo, min(high, hi)))

    st.sidebar.subheader("Loans")
    held = reports.currencies(con)
    reporting = reports.reporting_currency(SETTINGS)
    requested = None
    if len(held) > 1:
        codes = [c for c, _ in held]
        requested = st.sidebar.selectbox("Currency", codes, index=codes.index(reporting) if reporting in codes else 0,
                                         format_func=lambda c: f"{c} ({dict(held)[c]:,} loans)", key="currency")
    st.sidebar.slider("Loan amount", min_value=lo, max_value=hi, key="amount_range", on_change=from_slider,
                      format="%,.2f")
    left, right = st.sidebar.columns(2)
    left.text_input("min amount", key="amount_min_text", on_change=from_inputs)
    right.text_input("max amount", key="amount_max_text", on_change=from_inputs)
    if state.get("amount_problem"):
        st.sidebar.warning(state.amount_problem)
    product = st.sidebar.selectbox("Product", ["(all)"] + [p for p in products if p is not None])
    region = st.sidebar.selectbox("Region", ["(all)"] + [r for r in regions if r is not None])
    horizon = int(SETTINGS.get("reports", "projection_horizon_days"))
    as_of = st.sidebar.date_input("As of", day, min_value=dt.date(1900, 1, 1),
                                  max_value=day + dt.timedelta(days=horizon), key="as_of",
                                  help="The date of the headline figures, buckets and loans; after the data date, a projection.")
    mn, mx = state.amount_min, state.amount_max
    f = LoanFilter(
        min_amount=None if mn <= lo else Decimal(str(mn)),
        max_amount=None if mx >= hi else Decimal(str(mx)),
        product=None if product == "(all)" else product,
        region=None if region == "(all)" else region,
        currency=requested,
    )
    return reports.prepare(con, loans, f, as_of=as_of, reporting=reporting, held=held)


def contradiction(f: LoanFilter) -> bool:
    """A range the wrong way round matches no loan: say so instead of drawing empty charts."""
    if problem := f.contradiction():
        st.warning(f"No loan can match: {problem}. Swap the bounds in the sidebar.")
        return True
    return False


def page_overview(con, f: LoanFilter, view: View) -> None:
    header(con, "Overview", view)
    if not needs(con, "loans") or contradiction(f):
        return
    summary = registry.get("summary")
    s = summary.run(con, f=f, as_of=view.as_of).as_dicts()[0]
    st.caption(view.describe())
    # Two rows of cards, so that a full amount fits at 1280 px.
    for names in (registry.KPIS[:3], registry.KPIS[3:]):
        for card, name in zip(st.columns(3), names):
            column = summary.column(name)
            label = column.title + (f" ({view.currency})" if column.kind == "money" and view.currency else "")
            card.metric(label, shown_value(column.kind, s[name]))
    for report in registry.on_page("overview"):
        if report.charts:
            show_report(con, report, f, view)


def page_of_reports(page: str):
    """A page that shows the registry's reports of that page, in order, each with its kind of
    filter: the sidebar's loan filter (the book's reports: its currency alone), or what the page
    asks (registry.FILTERS: controls)."""
    shown = registry.on_page(page)
    kinds = [registry.FILTERS[k] for k in dict.fromkeys(r.filters for r in shown)]

    def show(con, f: LoanFilter, view: View) -> None:
        loans = all(k.data == "loans" for k in kinds)
        header(con, registry.PAGES[page], view if loans else None)
        if not needs(con, kinds[0].data):  # a page's reports read one kind of data (a test holds the registry to it)
            return
        if loans:
            if contradiction(f):
                return
            chosen = {k.name: (f, view) if k.name == "loans" else
                      reports.prepare(con, k, dataclasses.replace(f, currency=view.currency), as_of=view.as_of)
                      for k in kinds}
        elif (chosen := page_filters(con, kinds)) is None:
            return
        for report in shown:
            show_report(con, report, *chosen[report.filters])

    return show


def page_filters(con, kinds: list[registry.FilterKind]) -> dict[str, tuple] | None:
    """The controls a page's kinds of filter ask for (a period, a merchant, a range of dates
    bounded by the days held), once each, and each kind's filter and View from them; None when
    the choice selects nothing (said on the page)."""
    asked = list(dict.fromkeys(c for k in kinds for c in k.controls))
    data = kinds[0].data
    values = {}
    if "period" in asked:
        values["period"] = st.radio("Period", calls.PERIODS, horizontal=True, key=f"{data}-period")
    if "merchant" in asked:
        labels = {m: f"{m} · {name}" if name else m for m, name in ledger.merchants_with_events(con)}
        values["merchant"] = st.selectbox("Merchant", list(labels), format_func=labels.get, key="merchant")
    if "dates" in asked:
        values["date_from"], values["date_to"] = date_range(con, *kinds[0].dates, data)
    chosen = {}
    for kind in kinds:
        fields = {f.name for f in dataclasses.fields(kind.filter)}
        f = kind.filter(**{name: v for name, v in values.items() if name in fields})
        if problem := f.contradiction():
            st.warning(f"{problem[0].upper()}{problem[1:]}.")
            return None
        chosen[kind.name] = reports.prepare(con, kind, f)
    return chosen


def page_lookup(con, f: LoanFilter, view: View) -> None:
    header(con, "Loan lookup")
    if not needs(con, "loans"):
        return
    text = st.text_input("Loan id, client id or client name")
    if not text.strip():
        return
    found = reports.find_loans(con, text)
    if not found.rows:
        st.info("No loan matches.")
        return
    ids = [r["loan_id"] for r in found.as_dicts()]
    currency_of = dict(con.execute("SELECT loan_id, currency FROM marts.dim_loans WHERE list_contains($ids, loan_id)",
                                   {"ids": ids}).fetchall())
    held = sorted({c for c in currency_of.values() if c})
    title, columns = registry.LOOKUP["matches"]
    if len(held) > 1 and "amount" in found.columns:
        # loans in several currencies: each amount with its currency beside it, never one currency for all
        i = found.columns.index("amount") + 1
        found = Table([*found.columns[:i], "currency", *found.columns[i:]],
                      [(*r[:i], currency_of.get(r[0]), *r[i:]) for r in found.rows])
    show_table(found, title, "lookup-matches", columns, held[0] if len(held) == 1 else None)
    loan_id = st.selectbox("Loan", ids)
    for name, table in reports.loan_detail(con, loan_id).items():
        title, columns = registry.LOOKUP.get(name, (human_title(name.replace(" ", "_")), ()))
        st.subheader(title)
        show_table(table, title, f"lookup-{name.replace(' ', '-')}", columns, currency_of.get(loan_id))


def page_quality(con, f: LoanFilter, view: View) -> None:
    header(con, "Data quality")
    status_file = HOME / "last_build.json"
    if status_file.exists():
        last = json.loads(status_file.read_text())
        if last.get("status") != "success":
            st.error(f"Build {int(last['build_id'])} failed; the figures shown are from the last good build.")
            st.text("\n".join(str(e) for e in last.get("errors", [])))
    st.subheader("Checks of the published build")
    checks = quality.checks_of(con)
    if checks.rows:
        show_table(checks, "Checks", "checks")
    else:
        st.info("No check results yet: `loanwatch build` runs the checks.")
    st.subheader("Quarantined rows")
    rejects = quality.rejected_rows(con, newest_first=True, limit=1000)
    if rejects.rows:
        show_table(rejects, "Quarantined rows", "rejects")
    else:
        st.success("No row is quarantined: every row loaded passed the contract's checks.")


def page_operations(con, f: LoanFilter, view: View) -> None:
    header(con, "Operations")
    from loanwatch.operations.run import read_runs_file

    st.subheader("Runs")
    runs = read_runs_file(SETTINGS)
    if runs.rows:
        st.caption("`loanwatch run`, newest first; `loanwatch runs N` lists a run's steps with their counts.")
        show_table(runs, "Runs", "runs")
    else:
        st.info("No `loanwatch run` yet: each run (ingest, build, notify) is recorded here.")
    builds = quality.builds_over_time(con)
    st.subheader("Builds")
    st.plotly_chart(charts.grouped_bars(builds, "build_id", ["seconds"], ["seconds"], "Build duration (seconds)"),
                    width="stretch", config=charts.CONFIG, key="chart-builds")
    show_table(builds, "Builds", "builds")
    checks = quality.checks_over_time(con)
    if checks.rows:
        st.plotly_chart(charts.grouped_lines(checks, "build_id", "severity", "checks_failing", "Checks that found rows, per build"),
                        width="stretch", config=charts.CONFIG, key="chart-checks")
    ingested = quality.ingest_over_time(con)
    st.subheader("Ingest")
    if ingested.rows:
        st.plotly_chart(charts.grouped_bars(ingested, "day", ["rows_accepted", "rows_quarantined"], ["accepted", "quarantined"],
                                            "Rows loaded per day of ingest"),
                        width="stretch", config=charts.CONFIG, key="chart-ingest")
        show_table(ingested, "Ingest", "ingest")
    else:
        st.info("Nothing ingested yet.")


def date_range(con, relation: str, column: str, key: str) -> tuple[dt.date, dt.date]:
    """From and To pickers bounded by the dates a mart holds: the dates chosen."""
    lo, hi = con.execute(f"SELECT min({column}), max({column}) FROM {relation}").fetchall()[0]
    left, right = st.columns(2)
    start = left.date_input("From", lo, min_value=lo, max_value=hi, key=f"{key}-from")
    end = right.date_input("To", hi, min_value=lo, max_value=hi, key=f"{key}-to")
    return start, end


# Pages whose content is the registry's reports; the others have their own function here.
SPECIAL = {"overview": page_overview, "lookup": page_lookup, "quality": page_quality, "operations": page_operations}
PAGES = [(title, path, SPECIAL.get(path) or page_of_reports(path)) for path, title in registry.PAGES.items()]


def main() -> None:
    st.set_page_config(page_title="loanwatch", layout="wide")
    con = connection()
    if con is None:
        st.title("loanwatch")
        st.warning("No published data yet: run `loanwatch ingest FILES` and `loanwatch build`.")
        return
    f, view = sidebar_filter(con)
    pages = [st.Page(lambda fn=fn: fn(con, f, view), title=title, url_path=path, default=(i == 0))
             for i, (title, path, fn) in enumerate(PAGES)]
    st.navigation(pages).run()


main()
