"""`loanwatch demo` (what `make demo` runs after set-up): the whole path on a sample portfolio.

generate -> split into chronological parts -> for each part: ingest, build -> report.
Safe to run again: the same files are already ingested, and builds are repeatable.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape

from loanwatch import reports
from loanwatch.config import Settings
from loanwatch.generate.portfolio import generate
from loanwatch.generate.split import split
from loanwatch.generate.write import write_portfolio
from loanwatch.ingest import run as ingest_files
from loanwatch.output import Format, render, shown_value
from loanwatch.reports import registry
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build


def run_demo(settings: Settings, clients: int = 5000, parts: int = 5, seed: int = 42,
             console: Console | None = None) -> int:
    console = console or Console(emoji=False)
    work = settings.home / "demo"
    raw, parted = work / "raw", work / "parts"
    t0 = time.monotonic()
    portfolio = generate(clients, seed)
    write_portfolio(portfolio, raw)
    console.print(f"generated {clients:,} clients ({portfolio.tables['loans'].num_rows:,} loan rows, "
                  f"{portfolio.tables['payments'].num_rows:,} payment events) into {escape(str(raw))}")
    restructured = int((portfolio.tables["loans"]["restr_day"].to_numpy() >= 0).sum())
    console.print(f"servicing events: {portfolio.tables['charges'].num_rows:,} charges (penalties, fees, reversals), "
                  f"{portfolio.tables['adjustments'].num_rows:,} waivers, {restructured:,} restructured loans, "
                  "recoveries after write-off (see `loanwatch report recoveries` and the dashboard's Loan lookup)")
    result = split([raw], parts, parted)
    for part, files in sorted(result.parts.items()):
        loaded = ingest_files(settings, files)
        rows = sum(r.accepted for r in loaded)
        skipped = sum(1 for r in loaded if r.status == "skipped")
        b = build(settings)
        note = f", {skipped} file(s) already ingested" if skipped else ""
        console.print(f"part {part}/{parts}: {rows:,} rows loaded{note}; build {b.build_id}: {b.status}")
        if b.status != "success":
            for e in b.errors:
                console.print(f"  [red]{escape(e)}[/red]")
            return 1
    con = open_snapshot(settings)
    monthly = registry.get("overdue-monthly")
    f, view = reports.prepare(con, monthly.kind, reports.LoanFilter(), reporting=reports.reporting_currency(settings))
    view = view.for_report(monthly)
    render(monthly.run(con, f), Format.table, title=monthly.title, columns=monthly.columns, currency=view.currency,
           note=view.describe())
    s = reports.summary(con, f=f)
    column = registry.get("summary").column
    console.print(
        f"as of {s['as_of']}: loans {s['loans']:,}, active {s['active']:,}, "
        f"overdue share {shown_value('share', s['overdue_share'])}, principal outstanding "
        f"{shown_value(column('principal_outstanding').kind, s['principal_outstanding'])} {view.currency}, "
        f"PAR30 {shown_value('share', s['par30'])}"
    )
    console.print(f"done in {time.monotonic() - t0:.0f} s. Warehouse: {escape(str(settings.home))}")
    return 0
