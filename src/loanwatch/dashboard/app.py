"""The loanwatch dashboard (Streamlit). Run it with `loanwatch dashboard`.

It reads only the serving snapshot (read-only), so it never blocks a build, and it reopens the
snapshot when a build publishes a new one (the file's mtime changes): no restart needed. Every
figure comes from `loanwatch.reports`, the same functions as the CLI. Data text is shown through
st.dataframe (literal) or escaped for Plotly; it never goes through markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from decimal import Decimal

import duckdb
import streamlit as st

from loanwatch import charts, quality, reports
from loanwatch.config import load_settings
from loanwatch.reports import LoanFilter, Table
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


def show_table(table: Table, title: str, key: str) -> None:
    st.dataframe([dict(zip(table.columns, [charts._num(v) for v in r])) for r in table.rows],
                 use_container_width=True, hide_index=True)
    download(table, title, key)


def download(table: Table, title: str, key: str) -> None:
    st.download_button(f"Download CSV: {title}", data=charts.to_csv(table), file_name=f"{key}.csv",
                       mime="text/csv", key=f"csv-{key}")


def chart(fig, table: Table, title: str, key: str) -> None:
    st.plotly_chart(fig, use_container_width=True, config=charts.CONFIG, key=f"chart-{key}")
    download(table, title, key)


def header(con, title: str) -> None:
    st.title(title)
    published = dt.datetime.fromtimestamp(SNAPSHOT.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    st.caption(f"Data date {reports.data_date(con)} · snapshot published {published}")


def sidebar_filter(con) -> LoanFilter:
    """The loan filter of every page: amount range (slider and exact inputs), product, region."""
    lo, hi, products, regions = con.execute(
        """SELECT floor(min(amount)), ceil(max(amount)), list(DISTINCT product ORDER BY product),
                  list(DISTINCT region ORDER BY region)
           FROM marts.dim_loans WHERE NOT is_cancelled"""
    ).fetchall()[0]
    lo, hi = float(lo or 0), float(hi or 1)
    state = st.session_state
    if state.get("amount_bounds") != (lo, hi):
        state.amount_bounds = (lo, hi)
        state.amount_range = (lo, hi)
        state.amount_min, state.amount_max = lo, hi

    def from_slider():
        state.amount_min, state.amount_max = state.amount_range

    def from_inputs():
        state.amount_range = (max(lo, min(state.amount_min, hi)), max(lo, min(state.amount_max, hi)))

    st.sidebar.subheader("Loans")
    st.sidebar.slider("Loan amount", min_value=lo, max_value=hi, key="amount_range", on_change=from_slider)
    left, right = st.sidebar.columns(2)
    left.number_input("min amount", key="amount_min", on_change=from_inputs, step=100.0, format="%.2f")
    right.number_input("max amount", key="amount_max", on_change=from_inputs, step=100.0, format="%.2f")
    product = st.sidebar.selectbox("Product", ["(all)"] + [p for p in products if p is not None])
    region = st.sidebar.selectbox("Region", ["(all)"] + [r for r in regions if r is not None])
    mn, mx = state.amount_min, state.amount_max
    f = LoanFilter(
        min_amount=None if mn <= lo else Decimal(str(mn)),
        max_amount=None if mx >= hi else Decimal(str(mx)),
        product=None if product == "(all)" else product,
        region=None if region == "(all)" else region,
    )
    if problem := f.contradiction():
        st.sidebar.warning(f"No loan can match: {problem}.")
    return f


def page_overview(con, f: LoanFilter) -> None:
    header(con, "Overview")
    s = reports.summary(con, f=f)
    cols = st.columns(5)
    cols[0].metric("Active loans", f"{s['active']:,}")
    cols[1].metric("Principal outstanding", f"{s['principal_outstanding']:,.2f}")
    cols[2].metric("Overdue share", "-" if s["overdue_share"] is None else f"{s['overdue_share']:.2%}")
    cols[3].metric("PAR30", "-" if s["par30"] is None else f"{s['par30']:.2%}")
    cols[4].metric("NPL (PAR90)", "-" if s["npl"] is None else f"{s['npl']:.2%}")
    table = reports.overdue_monthly(con, f=f)
    chart(charts.overdue_share(table), table, "Overdue share by month", "overdue-monthly")
    with st.expander("Table"):
        show_table(table, "Overdue share by month", "overdue-monthly-table")


def page_delinquency(con, f: LoanFilter) -> None:
    header(con, "Delinquency")
    buckets = reports.buckets(con, f=f)
    chart(charts.bars(charts.bucket_rows(buckets), "bucket", "principal_outstanding", "Principal outstanding by DPD bucket"),
          buckets, "Buckets and PAR", "buckets")
    par = reports.par_monthly(con, f=f)
    chart(charts.lines(par, "month", ["par30", "par60", "par90"], "PAR over time", percent=True), par, "PAR by month", "par")
    rolls = reports.roll_rates(con, f=f)
    months = sorted({r[0] for r in rolls.rows})
    if months:
        month = st.selectbox("Roll-rate month", months, index=len(months) - 1)
        chart(charts.roll_heatmap(rolls, month), rolls, "Roll rates", "roll-rates")
        cure = charts.cure_rates(rolls)
        chart(charts.lines(cure, "month", ["cure_rate"], "Cure rate", percent=True), cure, "Cure rate", "cure")


def page_vintages(con, f: LoanFilter) -> None:
    header(con, "Vintages")
    measure = st.radio("Measure", ["ever30_share", "ever60_share", "ever90_share"], horizontal=True)
    table = reports.vintages(con, f=f)
    chart(charts.vintage_curves(table, measure), table, "Vintages", "vintages")


def page_portfolio(con, f: LoanFilter) -> None:
    header(con, "Portfolio")
    disbursed = reports.disbursed(con, f=f)
    chart(charts.bars(disbursed, "month", "amount", "Disbursed amount by month"), disbursed, "Disbursed", "disbursed")
    revenue = reports.revenue(con, f=f)
    chart(charts.bars(revenue, "month", "interest_revenue", "Interest revenue by month"), revenue, "Revenue", "revenue")
    chart(charts.lines(revenue, "month", ["collection_efficiency"], "Collection efficiency", percent=True),
          revenue, "Collection efficiency", "efficiency")
    terms = reports.products(con, view="terms", f=f)
    labelled = Table(["product_term", *terms.columns], [(f"{r[0]} / {r[1]}", *r) for r in terms.rows])
    chart(charts.bars(labelled, "product_term", "loans", "Loans by product and term"), terms, "Terms", "terms")
    st.subheader("Top merchants")
    show_table(reports.products(con, view="merchants", f=f), "Merchants", "merchants")
    repeat = reports.clients(con, view="repeat", f=f)
    chart(charts.bars(repeat, "nth_loan", "loans", "Loans by the client's nth loan"), repeat, "Repeat borrowing", "repeat")
    risk = reports.risk(con, f=f)
    for score in ("risk_score", "fraud_score"):
        part = Table(risk.columns, [r for r in risk.rows if r[0] == score])
        chart(charts.lines(part, "band", ["overdue_share", "ever60_share", "write_off_rate"],
                           f"Impact of the {score.replace('_', ' ')}", percent=True), part, score, f"risk-{score}")
    st.subheader("Clients by profit")
    show_table(reports.clients(con, view="profit", f=f), "Clients by profit", "profit")


def page_geography(con, f: LoanFilter) -> None:
    header(con, "Geography")
    table = reports.regions(con, f=f)
    fig = charts.region_map(table)
    chart(fig, table, "Regions", "regions-map")
    unplaced = fig.layout.meta.get("unplaced_regions", []) if fig.layout.meta else []
    if unplaced:
        st.caption("Not on the map (unknown region names): " + ", ".join(unplaced).replace("<", "&lt;"))
    ordered = Table(table.columns, sorted(table.rows, key=lambda r: (r[6] is None, -(r[6] or 0))))
    chart(charts.bars(ordered, "region", "overdue_share", "Overdue share by region", percent=True),
          ordered, "Overdue share by region", "regions-bars")
    by_outstanding = Table(table.columns, sorted(table.rows, key=lambda r: -(r[4] or 0)))
    chart(charts.bars(by_outstanding, "region", "principal_outstanding", "Principal outstanding by region"),
          by_outstanding, "Principal outstanding by region", "regions-outstanding")


def page_lookup(con, f: LoanFilter) -> None:
    header(con, "Loan lookup")
    text = st.text_input("Loan id, client id or client name")
    if not text.strip():
        return
    found = reports.find_loans(con, text)
    if not found.rows:
        st.info("No loan matches.")
        return
    show_table(found, "Matches", "lookup-matches")
    loan_id = st.selectbox("Loan", [r[0] for r in found.rows])
    for name, table in reports.loan_detail(con, loan_id).items():
        st.subheader(name.capitalize())
        show_table(table, name, f"lookup-{name.replace(' ', '-')}")


def page_quality(con, f: LoanFilter) -> None:
    header(con, "Data quality")
    status_file = HOME / "last_build.json"
    if status_file.exists():
        last = json.loads(status_file.read_text())
        if last.get("status") != "success":
            st.error(f"Build {int(last['build_id'])} failed; the figures shown are from the last good build.")
            st.text("\n".join(str(e) for e in last.get("errors", [])))
    st.subheader("Checks of the published build")
    show_table(quality.checks_of(con), "Checks", "checks")
    st.subheader("Quarantined rows")
    show_table(quality.rejected_rows(con, newest_first=True, limit=1000), "Quarantined rows", "rejects")


PAGES = [
    ("Overview", "overview", page_overview),
    ("Delinquency", "delinquency", page_delinquency),
    ("Vintages", "vintages", page_vintages),
    ("Portfolio", "portfolio", page_portfolio),
    ("Geography", "geography", page_geography),
    ("Loan lookup", "lookup", page_lookup),
    ("Data quality", "quality", page_quality),
]


def main() -> None:
    st.set_page_config(page_title="loanwatch", layout="wide")
    con = connection()
    if con is None:
        st.title("loanwatch")
        st.warning("No published data yet: run `loanwatch ingest FILES` and `loanwatch build`.")
        return
    f = sidebar_filter(con)
    pages = [st.Page(lambda fn=fn: fn(con, f), title=title, url_path=path, default=(i == 0))
             for i, (title, path, fn) in enumerate(PAGES)]
    st.navigation(pages).run()


main()
