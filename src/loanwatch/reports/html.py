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
from loanwatch.output import shown_value
from loanwatch.reports import LoanFilter, registry

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>loanwatch report, data date {{ data_date }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.kpis { display: flex; gap: 2rem; margin: 1rem 0 2rem; }
.kpi .label { color: #666; font-size: .9rem; } .kpi .value { font-size: 1.8rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }
td, th { border-bottom: 1px solid #ddd; padding: .2rem .6rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-size: .85rem; }
</style>
<script>{{ plotly_js | safe }}</script>
</head><body>
<h1>loanwatch: portfolio report</h1>
<p class="note">Data date {{ data_date }} · generated {{ generated }}{% if filter_text %} · loans: {{ filter_text }}{% endif %}</p>
<h2>Overview</h2>
<div class="kpis">
{% for label, value in kpis %}<div class="kpi"><div class="label">{{ label }}</div><div class="value">{{ value }}</div></div>{% endfor %}
</div>
{% for section in sections %}
<h2>{{ section.title }}</h2>
{{ section.chart | safe }}
{% if section.table %}<table><tr>{% for c in section.table.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in section.table.rows %}<tr>{% for v in row %}<td>{{ "" if v is none else v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% endfor %}
</body></html>
"""


# Sections up to this many rows show their table under the chart; longer ones only the chart.
TABLE_ROWS = 60


def render_html(con: duckdb.DuckDBPyConnection, f: LoanFilter | None = None, as_of: dt.date | None = None) -> str:
    """The report: the headline figures of the summary, then every registry report marked html,
    with its charts (and its table when short)."""
    f = f or LoanFilter()
    summary = registry.get("summary")
    s = summary.run(con, f=f, as_of=as_of).as_dicts()[0]
    sections = []
    for report in registry.REPORTS:
        if not report.html:
            continue
        table = report.run(con, f=f, as_of=as_of)
        figures = [charts.figure(report, chart, table).to_html(
            full_html=False, include_plotlyjs=False, div_id=chart.key, config=charts.CONFIG) for chart in report.charts]
        sections.append({"title": report.title, "chart": "".join(figures),
                         "table": table if len(table.rows) <= TABLE_ROWS else None})
    active = [(k, getattr(f, k)) for k in ("min_amount", "max_amount", "product", "region", "merchant", "issued_from", "issued_to")]
    env = jinja2.Environment(autoescape=True)
    return env.from_string(TEMPLATE).render(
        plotly_js=get_plotlyjs(),
        data_date=s["as_of"],
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        filter_text=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in active if v is not None),
        kpis=[(summary.column(name).title, shown_value(summary.column(name).kind, s[name])) for name in registry.KPIS],
        sections=sections,
    )


def write_html(con: duckdb.DuckDBPyConnection, out: Path, f: LoanFilter | None = None, as_of: dt.date | None = None) -> Path:
    out.write_text(render_html(con, f, as_of), encoding="utf-8")
    return out
