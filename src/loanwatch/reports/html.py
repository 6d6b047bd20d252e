"""`loanwatch report html`: one self-contained HTML file to share by email: the summary's cards,
then every report with a dashboard page (the registry's `html`), page by page. Plotly's
JavaScript is inlined, so the file opens with no network; text from the data is escaped by
Jinja2's autoescape (tables) and by the chart builders (charts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import jinja2
from plotly.offline import get_plotlyjs

from loanwatch import charts, reports
from loanwatch.config import Settings
from loanwatch.output import NUMERIC_KINDS, column_titles, shown_value
from loanwatch.reports import LoanFilter, View, holds, left_out_message, prepare, registry
from loanwatch.reports.table import Table, notes_of

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>loanwatch report, as of {{ as_of }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.kpis { display: flex; gap: 2rem; margin: 1rem 0 2rem; }
.kpi .label { color: #666; font-size: .9rem; } .kpi .value { font-size: 1.8rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }
td, th { border-bottom: 1px solid #ddd; padding: .2rem .6rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
td.nowrap { white-space: nowrap; }
.table { overflow-x: auto; }
.note { color: #666; font-size: .85rem; }
.banner { background: #fdf0e6; border-left: 4px solid #D55E00; padding: .6rem 1rem; }
</style>
<script>{{ plotly_js | safe }}</script>
</head><body>
<h1>loanwatch: portfolio report</h1>
<p class="note">Data date {{ data_date }} · generated {{ generated }} · {{ context }}</p>
{% if projection %}<p class="banner"><b>Projection</b>: as of {{ as_of }}, after the data date {{ data_date }}. No payment after
the data date is known, so every instalment due since counts as unpaid.</p>{% endif %}
{% if left_out %}<p class="banner">{{ left_out }}</p>{% endif %}
{% if partial %}<p class="note">{{ partial }} is a partial month (data to {{ data_date }}): the charts shade it, and the
roll-rate heat map shows the last full month.</p>{% endif %}
<h2>Overview</h2>
<div class="kpis">
{% for label, value in kpis %}<div class="kpi"><div class="label">{{ label }}</div><div class="value">{{ value }}</div></div>{% endfor %}
</div>
{% for section in sections %}
<h2>{{ section.title }}</h2>
{% for item in section.parts %}{% if item.heading %}<h3>{{ item.heading }}</h3>
{% endif %}{% if item.note %}<p class="note">{{ item.note }}</p>
{% endif %}{{ item.chart | safe }}
{% if item.table %}<div class="table"><table><tr>{% for c in item.titles %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in item.table %}<tr>{% for v, nowrap in zip(row, item.nowrap) %}<td{% if nowrap %} class="nowrap"{% endif %}>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table></div>{% endif %}
{% endfor %}
{% if section.empty %}<p class="note">{{ section.empty }}</p>{% endif %}
{% endfor %}
</body></html>
"""


# Sections up to this many rows show their table under the chart; longer ones only the chart. A
# table of its own (a report's part of kind table) shows its first rows, and says so.
TABLE_ROWS = 60


def render_html(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None, as_of: dt.date | None = None,
                view: View | None = None, settings: Settings | None = None) -> str:
    """The report: the headline figures of the summary, then every registry report marked html
    (those with a dashboard page), in the pages' order, with its charts and tables (and its table
    when short), each saying what it shows. Loan reports follow the filter and view given (as-of
    date, currency, filters), the book's its currency; the call centre's and the ledger's show what
    their page opens on (registry.FILTERS, their filter's opening), and are left out when the
    snapshot holds none. settings: the home's, for the reports that read them (None: the defaults)."""
    if view is None:
        f, view = prepare(con, registry.FILTERS["loans"], f or LoanFilter(), as_of=as_of)
    summary = registry.get("summary")
    s = summary.run(con, f=f, as_of=as_of).as_dicts()[0]
    chosen = {"loans": (f, view)}
    sections = []
    for report in _in_page_order(report for report in registry.REPORTS if report.html):
        if report.filters not in chosen:
            kind = report.kind
            if kind.data == "loans":  # the book: the loans' currency
                chosen[kind.name] = prepare(con, kind, dataclasses.replace(f or LoanFilter(), currency=view.currency),
                                            as_of=as_of)
            else:
                chosen[kind.name] = prepare(con, kind, kind.filter.opening(con)) if holds(con, kind.data) else None
        if chosen[report.filters] is not None:
            sections.append(_section(con, report, *chosen[report.filters], as_of, settings))
    env = jinja2.Environment(autoescape=True)
    env.globals["zip"] = zip
    kpis = []
    for name in registry.KPIS:
        column = summary.column(name)
        label = column.title + (f" ({view.currency})" if column.kind == "money" and view.currency else "")
        kpis.append((label, shown_value(column.kind, s[name])))
    return env.from_string(TEMPLATE).render(
        plotly_js=get_plotlyjs(),
        data_date=view.data_date,
        as_of=s["as_of"],
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        context=view.describe(),
        projection=view.projection,
        partial=view.partial,
        left_out=left_out_message(view.currency, view.left_out) if view.left_out else "",
        kpis=kpis,
        sections=sections,
    )


def _in_page_order(entries) -> list[registry.Report]:
    """Reports as the dashboard's pages show them: page by page, then in the registry's order."""
    pages = list(registry.PAGES)
    return sorted(entries, key=lambda r: pages.index(r.page) if r.page in pages else len(pages))


def _section(con: duckdb.DuckDBPyConnection, report: registry.Report, f, view: View, as_of: dt.date | None,
             settings: Settings | None = None) -> dict:
    """One report's section: its charts and tables as its page shows them (the first currency of
    money in several), with what its figures rest on (a Noted table's notes) under the first, then
    its own table when short and it declares none."""
    table = report.run(con, f=f, as_of=as_of, settings=settings)
    notes = [{"note": line} for line in notes_of(table)]
    view = view.for_report(report)
    held = reports.currencies_in(table) if report.charts else []
    currency = held[0] if held else None
    table, view = reports.in_currency(table, view, currency)
    empty = "Nothing to show for these loans." if report.filters == "loans" else f"Nothing to show for {view.describe()}."
    section = {"title": report.title, "parts": [], "empty": "" if table.rows else empty}
    if not table.rows:
        section["parts"] = notes
        return section
    for part in report.shown:
        shown = (reports.in_currency(report.run_part(con, part, f, as_of, settings), view, currency)[0]
                 if part.options or part.params else table)
        heading = part.heading or (part.title if part.kind == "table" else None)  # a table is named, here as on its page
        heading = heading if heading != report.title else None
        if part.kind == "table":
            cut = f" · the first {TABLE_ROWS} of {len(shown.rows):,} rows" if len(shown.rows) > TABLE_ROWS else ""
            section["parts"].append({"heading": heading, "note": (part.note or view.describe()) + cut,
                                     **_table(shown, report, view, TABLE_ROWS)})
            continue
        section["parts"].append({"heading": heading, "chart": charts.figure(report, part, shown, view=view).to_html(
            full_html=False, include_plotlyjs=False, div_id=part.key, config=charts.CONFIG)})
    section["parts"][1:1] = notes
    if not any(part.kind == "table" for part in report.shown) and len(table.rows) <= TABLE_ROWS:
        section["parts"].append(_table(table, report, view))
    return section


def _table(table: Table, report: registry.Report, view: View, rows: int | None = None) -> dict:
    specs = column_titles(table, report.columns, view.currency)
    return {"titles": [c.title for c in specs],
            # a month, a date or a number is one word: never broken over lines (2024-/12)
            "nowrap": [c.kind in (*NUMERIC_KINDS, "date", "month") for c in specs],
            "table": [[shown_value(c.kind, v) for c, v in zip(specs, row)] for row in table.rows[:rows]]}


def write_html(con: duckdb.DuckDBPyConnection, out: Path, f: LoanFilter | None = None, as_of: dt.date | None = None,
               view: View | None = None, settings: Settings | None = None) -> Path:
    out.write_text(render_html(con, f, as_of, view, settings), encoding="utf-8")
    return out
