"""`loanwatch report html`: one self-contained HTML file (overview and delinquency views) to
share by email. Plotly's JavaScript is inlined, so the file opens with no network; text from the
data is escaped by Jinja2's autoescape (tables) and by the chart builders (charts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import jinja2
from plotly.offline import get_plotlyjs

from loanwatch import charts
from loanwatch.output import NUMERIC_KINDS, column_titles, shown_value
from loanwatch.reports import LoanFilter, View, left_out_message, prepare, registry

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
{{ section.chart | safe }}
{% if section.empty %}<p class="note">Nothing to show for these loans.</p>{% endif %}
{% if section.table %}<div class="table"><table><tr>{% for c in section.titles %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in section.table %}<tr>{% for v, nowrap in zip(row, section.nowrap) %}<td{% if nowrap %} class="nowrap"{% endif %}>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table></div>{% endif %}
{% endfor %}
</body></html>
"""


# Sections up to this many rows show their table under the chart; longer ones only the chart.
TABLE_ROWS = 60


def render_html(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None, as_of: dt.date | None = None,
                view: View | None = None) -> str:
    """The report: the headline figures of the summary, then every registry report marked html,
    with its charts (and its table when short), each saying what it shows (view: as-of date,
    currency, filters)."""
    if view is None:
        f, view = prepare(con, registry.FILTERS["loans"], f or LoanFilter(), as_of=as_of)
    summary = registry.get("summary")
    s = summary.run(con, f=f, as_of=as_of).as_dicts()[0]
    sections = []
    for report in registry.REPORTS:
        if not report.html:
            continue
        table = report.run(con, f=f, as_of=as_of)
        shown_view = view.for_report(report)
        figures = [charts.figure(report, chart, table, view=shown_view).to_html(
            full_html=False, include_plotlyjs=False, div_id=chart.key, config=charts.CONFIG)
            for chart in report.charts] if table.rows else []
        specs = column_titles(table, report.columns, view.currency)
        sections.append({"title": report.title, "chart": "".join(figures), "empty": not table.rows,
                         "titles": [c.title for c in specs],
                         # a month, a date or a number is one word: never broken over lines (2024-/12)
                         "nowrap": [c.kind in (*NUMERIC_KINDS, "date", "month") for c in specs],
                         "table": [[shown_value(c.kind, v) for c, v in zip(specs, row)] for row in table.rows]
                         if 0 < len(table.rows) <= TABLE_ROWS else None})
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


def write_html(con: duckdb.DuckDBPyConnection, out: Path, f: LoanFilter | None = None, as_of: dt.date | None = None,
               view: View | None = None) -> Path:
    out.write_text(render_html(con, f, as_of, view), encoding="utf-8")
    return out
