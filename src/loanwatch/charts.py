"""Plotly figures from report tables. Pure functions: a Table in, a figure out.

Text that comes from the data (names, products, regions) is HTML-escaped before it reaches
Plotly, which would otherwise render tags such as <b> in labels and hover text.
"""

from __future__ import annotations

import csv
import html
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from loanwatch import geo
from loanwatch.reports import Table
from loanwatch.reports.registry import Chart, Report

COUNTRIES = Path(__file__).parent / "dashboard" / "countries.geojson"  # shipped with the dashboard
# Offline figures: never let plotly.js reach for a CDN (fonts, topojson, mathjax).
CONFIG = {"displaylogo": False, "responsive": True}


def num(v: Any) -> Any:
    """A value as Plotly and Streamlit take it: decimals become floats."""
    return float(v) if isinstance(v, Decimal) else v


def col(table: Table, name: str) -> list[Any]:
    i = table.columns.index(name)
    return [num(r[i]) for r in table.rows]


def text(values: list[Any]) -> list[str]:
    return [html.escape(str(v)) if v is not None else "" for v in values]


def _layout(fig: go.Figure, title: str, yaxis: str | None = None, percent: bool = False) -> go.Figure:
    fig.update_layout(title=html.escape(title), margin=dict(l=40, r=20, t=50, b=40), height=380,
                      legend=dict(orientation="h", y=-0.2), template="plotly_white")
    if yaxis:
        fig.update_yaxes(title=yaxis)
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def overdue_share(table: Table) -> go.Figure:
    """The headline chart: overdue share by month, count and amount versions."""
    fig = go.Figure()
    fig.add_scatter(x=col(table, "month"), y=col(table, "overdue_share"), name="overdue share (loans)", mode="lines+markers")
    fig.add_scatter(x=col(table, "month"), y=col(table, "overdue_amount_share"), name="overdue share (principal)",
                    mode="lines+markers")
    return _layout(fig, "Overdue share by month", percent=True)


def bars(table: Table, x: str, y: str, title: str, name: str | None = None, percent: bool = False) -> go.Figure:
    fig = go.Figure(go.Bar(x=text(col(table, x)), y=col(table, y), name=html.escape(name or y)))
    return _layout(fig, title, percent=percent)


def lines(table: Table, x: str, ys: list[str], title: str, percent: bool = False,
          names: list[str] | None = None) -> go.Figure:
    fig = go.Figure()
    for y, name in zip(ys, names or ys):
        fig.add_scatter(x=text(col(table, x)), y=col(table, y), name=html.escape(name), mode="lines+markers")
    return _layout(fig, title, percent=percent)


def grouped_lines(table: Table, x: str, group: str, y: str, title: str, percent: bool = False) -> go.Figure:
    """One line per value of the group column (a campaign, an agent), y against x."""
    fig = go.Figure()
    rows = table.as_dicts()
    for name in sorted({r[group] for r in rows}, key=str):
        mine = [r for r in rows if r[group] == name]
        fig.add_scatter(x=text([r[x] for r in mine]), y=[num(r[y]) for r in mine], name=html.escape(str(name)),
                        mode="lines+markers")
    fig.update_xaxes(type="category", categoryorder="category ascending")  # periods are labels (2024-W22)
    return _layout(fig, title, percent=percent)


def grouped_bars(table: Table, x: str, ys: list[str], names: list[str], title: str, percent: bool = False) -> go.Figure:
    """Bars of several columns side by side for each x (cure after contact against the hold-out)."""
    fig = go.Figure()
    for y, name in zip(ys, names):
        fig.add_bar(x=text(col(table, x)), y=col(table, y), name=html.escape(name))
    fig.update_layout(barmode="group")
    return _layout(fig, title, percent=percent)


def figure(report: Report, chart: Chart, table: Table, choice: str | None = None) -> go.Figure:
    """The figure of one of a registry report's charts. choice: the month of a roll-rate heat map,
    or the measure of the vintage curves (default: the latest month, the first measure)."""
    rows = table.as_dicts()
    if chart.rows is not None:
        rows = [r for r in rows if chart.rows(r)]
    if chart.sort is not None:
        rows.sort(key=lambda r: (r[chart.sort] is None, -(num(r[chart.sort]) or 0)))
    x = chart.x
    if isinstance(x, tuple):  # a label made of several columns: "product / term"
        rows = [{**r, "label": " / ".join(str(r[c]) for c in x)} for r in rows]
        x = "label"
    columns = list(rows[0]) if rows else [*table.columns, "label"]
    picked = Table(columns, [tuple(r.get(c) for c in columns) for r in rows])
    percent = bool(chart.y) and all(report.column(y).kind == "share" for y in chart.y)
    if chart.kind == "bars":
        return bars(picked, x, chart.y[0], chart.title, name=report.column(chart.y[0]).title, percent=percent)
    if chart.kind == "lines":
        return lines(picked, x, list(chart.y), chart.title, percent=percent,
                     names=[report.column(y).title for y in chart.y])
    if chart.kind == "overdue_share":
        return overdue_share(picked)
    if chart.kind == "roll_heatmap":
        months = sorted({r["month"] for r in rows})
        return roll_heatmap(picked, choice or (months[-1] if months else ""))
    if chart.kind == "vintage_curves":
        measure = choice or chart.y[0]
        return vintage_curves(picked, measure, report.column(measure).title)
    if chart.kind == "region_map":
        return region_map(picked)
    raise ValueError(f"chart {chart.key}: unknown kind {chart.kind!r}")


def roll_heatmap(table: Table, month: str) -> go.Figure:
    rows = [r for r in table.as_dicts() if r["month"] == month and r["from_bucket"] != "overdue"]
    order = ["current", "1-30", "31-60", "61-90", "91-180", "181+", "closed", "written_off"]
    froms = [b for b in order if any(r["from_bucket"] == b for r in rows)]
    tos = [b for b in order if any(r["to_bucket"] == b for r in rows)]
    z = [[next((num(r["rate"]) for r in rows if r["from_bucket"] == f and r["to_bucket"] == t), 0) for t in tos] for f in froms]
    fig = go.Figure(go.Heatmap(z=z, x=tos, y=froms, colorscale="Reds", zmin=0, zmax=1,
                               text=[[f"{v:.1%}" for v in row] for row in z], texttemplate="%{text}"))
    fig.update_yaxes(autorange="reversed", title="bucket at the previous month end")
    fig.update_xaxes(title="at this month end")
    return _layout(fig, f"Roll rates, {month}")


def vintage_curves(table: Table, measure: str = "ever30_share", title: str | None = None) -> go.Figure:
    fig = go.Figure()
    for cohort in sorted({r["cohort"] for r in table.as_dicts()}):
        rows = [r for r in table.as_dicts() if r["cohort"] == cohort]
        fig.add_scatter(x=[r["months_on_book"] for r in rows], y=[num(r[measure]) for r in rows],
                        name=cohort, mode="lines")
    fig.update_xaxes(title="months on book")
    return _layout(fig, f"Vintages: {title or measure}", percent=True)


def region_map(table: Table) -> go.Figure:
    """Regions as bubbles (size: principal outstanding, colour: overdue share) over country
    outlines shipped with loanwatch: plain traces, no tiles or geometry are downloaded."""
    fig = go.Figure()
    outlines = json.loads(COUNTRIES.read_text())
    for feature in outlines["features"]:
        geom = feature["geometry"]
        polygons = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        xs, ys = [], []
        for polygon in polygons:
            for ring in polygon[:1]:
                xs += [p[0] for p in ring] + [None]
                ys += [p[1] for p in ring] + [None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color="#bbb", width=1), hoverinfo="skip", showlegend=False)
    placed, missing = [], []
    for r in table.as_dicts():
        spot = geo.locate(r["region"])
        (placed if spot else missing).append((r, spot))
    if placed:
        principal = [num(r["principal_outstanding"]) or 0 for r, _ in placed]
        biggest = max(principal) or 1
        fig.add_scatter(
            x=[s[2] for _, s in placed], y=[s[1] for _, s in placed], mode="markers",
            marker=dict(size=[8 + 40 * (p / biggest) ** 0.5 for p in principal],
                        color=[num(r["overdue_share"]) or 0 for r, _ in placed], colorscale="RdYlGn_r",
                        cmin=0, cmax=max(0.3, max((num(r["overdue_share"]) or 0) for r, _ in placed)),
                        colorbar=dict(title="overdue share", tickformat=".0%"), line=dict(width=1, color="#333")),
            text=[f"{html.escape(str(r['region']))}<br>outstanding {num(r['principal_outstanding']):,.2f}"
                  f"<br>overdue share {(num(r['overdue_share']) or 0):.1%}" for r, _ in placed],
            hoverinfo="text", showlegend=False,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1.3)
    fig = _layout(fig, "Principal outstanding and overdue share by region")
    fig.update_layout(height=520)
    fig.update_layout(meta={"unplaced_regions": [str(r["region"]) for r, _ in missing]})
    return fig


def to_csv(table: Table) -> bytes:
    """A table as CSV for people who open it in a spreadsheet: text that a spreadsheet would run
    as a formula (=, +, -, @ first) is prefixed with an apostrophe; numbers are left alone."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows:
        out = []
        for v in row:
            if v is None:
                out.append("")
            elif isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
                out.append("'" + v)
            else:
                out.append(str(v))
        w.writerow(out)
    return buf.getvalue().encode("utf-8")
