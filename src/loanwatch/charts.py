"""Plotly figures from report tables. Pure functions: a Table in, a figure out.

Text that comes from the data (names, products, regions) is HTML-escaped before it reaches
Plotly, which would otherwise render tags such as <b> in labels and hover text.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from loanwatch import geo
from loanwatch.reports import View
from loanwatch.reports.registry import Chart, Report
from loanwatch.reports.table import Table
from loanwatch.reports.view import partial_periods, period_of  # noqa: F401  (the periods charts shade: reports/view.py)

COUNTRIES = Path(__file__).parent / "dashboard" / "countries.geojson"  # shipped with the dashboard
# Offline figures: never let plotly.js reach for a CDN (fonts, topojson, mathjax).
CONFIG = {"displaylogo": False, "responsive": True}
# Okabe and Ito's palette: eight colours told apart with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
# Sequential scales for heat maps and the map: readable without telling red from green.
SEQUENTIAL = "Blues"
DIVERGING_SAFE = "Cividis"


def num(v: Any) -> Any:
    """A value as Plotly and Streamlit take it: decimals become floats."""
    return float(v) if isinstance(v, Decimal) else v


def col(table: Table, name: str) -> list[Any]:
    i = table.columns.index(name)
    return [num(r[i]) for r in table.rows]


def text(values: list[Any]) -> list[str]:
    return [html.escape(str(v)) if v is not None else "" for v in values]


def _layout(fig: go.Figure, title: str, yaxis: str | None = None, percent: bool = False) -> go.Figure:
    fig.update_layout(title=dict(text=html.escape(title)), margin=dict(l=50, r=20, t=70, b=40), height=400,
                      legend=dict(orientation="h", y=-0.2), template="plotly_white", colorway=PALETTE,
                      separators=".,")
    if yaxis:
        fig.update_yaxes(title=html.escape(yaxis))
    if percent:
        fig.update_yaxes(tickformat=".0%", hoverformat=".1%")
    else:
        fig.update_yaxes(tickformat=",", hoverformat=",.2f")
    return fig


def subtitle(fig: go.Figure, text: str) -> go.Figure:
    """What the figure shows, in small type under its title (data text escaped)."""
    fig.update_layout(title=dict(subtitle=dict(text=html.escape(text))))
    return fig


def shade(fig: go.Figure, x0: Any, x1: Any, text: str, at_end: bool = True) -> go.Figure:
    """A period that covers only part of its span (the partial month), shaded and labelled, the
    same on every chart: a light grey band with its label at the top, inside the band's edge
    nearest the end of the axis (at_end) or its start."""
    fig.add_vrect(x0=x0, x1=x1, fillcolor="#999", opacity=0.15, line_width=0,
                  annotation_position="top right" if at_end else "top left", annotation_text=html.escape(text))
    return fig


MONTH = re.compile(r"\d{4}-\d{2}")


def _months(fig: go.Figure) -> list[str]:
    """The months (YYYY-MM) a figure's traces are drawn at, in order."""
    return sorted({x for t in fig.data for x in (t.x if t.x is not None else ()) if isinstance(x, str) and MONTH.fullmatch(x)})


def month_axis_end(view: View) -> dt.date | None:
    """Where a time axis of months ends: the date its figures are as of (the data date, or the
    as-of date, a projection when later)."""
    return view.as_of or view.data_date


def with_view(fig: go.Figure, view: View | None, month_axis: bool = False) -> go.Figure:
    """What the figure shows, under its title: as-of date (a projection after the data date),
    currency and filters. On a month axis (months are drawn at their first day) the axis runs
    from half a month before the first month to the date the figures are as of, no further, and
    the data date's month, when partial, is shaded."""
    if view is None:
        return fig
    subtitle(fig, view.describe())
    months = _months(fig) if month_axis else []
    end = month_axis_end(view)
    if months and end is not None:
        first = dt.date.fromisoformat(months[0] + "-01")
        end = max(end, dt.date.fromisoformat(months[-1] + "-01"))
        fig.update_xaxes(type="date", range=[(first - dt.timedelta(days=15)).isoformat(), end.isoformat()])
        if view.partial in months and view.data_date is not None:
            start = view.data_date.replace(day=1)
            shade(fig, (start - dt.timedelta(days=15)).isoformat(), min(start + dt.timedelta(days=15), end).isoformat(),
                  f"partial month (data to {view.data_date:%d %b})")
    if view.projection:
        fig.add_annotation(text=f"PROJECTION: as of {view.as_of}, after the data date {view.data_date}",
                           xref="paper", yref="paper", x=1, y=1.02, xanchor="right", showarrow=False,
                           font=dict(color="#D55E00"))
    return fig


def shade_periods(fig: go.Figure, marks: dict[str, str]) -> go.Figure:
    """Shade the partial periods (partial_periods) of a chart whose x axis lists periods as
    categories in ascending order (grouped_lines), as with_view shades the partial month."""
    categories = sorted({x for t in fig.data for x in (t.x if t.x is not None else ())})
    for label, text in marks.items():
        if label in categories:
            i = categories.index(label)
            shade(fig, i - 0.5, i + 0.5, text, at_end=i > 0)
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
    """One line per value of the group column (a campaign, an agent, a write-off cohort), y against
    x: labels in ascending order (periods, 2024-W22), or whole numbers on a linear axis (months
    since write-off: 10 after 9, not after 1)."""
    fig = go.Figure()
    rows = table.as_dicts()
    numbers = bool(rows) and all(isinstance(r[x], int) and not isinstance(r[x], bool) for r in rows)
    for name in sorted({r[group] for r in rows}, key=str):
        mine = [r for r in rows if r[group] == name]
        fig.add_scatter(x=[r[x] for r in mine] if numbers else text([r[x] for r in mine]), y=[num(r[y]) for r in mine],
                        name=html.escape(str(name)), mode="lines+markers")
    if numbers:
        span = max(r[x] for r in rows) - min(r[x] for r in rows)
        fig.update_xaxes(type="linear", tickformat="d", dtick=1 if span <= 24 else None)
    else:
        fig.update_xaxes(type="category", categoryorder="category ascending")  # periods are labels (2024-W22)
    return _layout(fig, title, percent=percent)


def grouped_bars(table: Table, x: str, ys: list[str], names: list[str], title: str, percent: bool = False) -> go.Figure:
    """Bars of several columns side by side for each x (cure after contact against the hold-out)."""
    fig = go.Figure()
    for y, name in zip(ys, names):
        fig.add_bar(x=text(col(table, x)), y=col(table, y), name=html.escape(name))
    fig.update_layout(barmode="group")
    return _layout(fig, title, percent=percent)


def figure(report: Report, chart: Chart, table: Table, choice: Any = None, view: View | None = None) -> go.Figure:
    """The figure of one of a registry report's charts, with what it shows under its title (view).
    choice: the month of a roll-rate heat map (default: the latest full month), the measure of the
    vintages (default: the first), or (measure, cohorts) for the vintage lines."""
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
    money = bool(chart.y) and all(report.column(y).kind == "money" for y in chart.y)
    currency = view.currency if view is not None else None
    yaxis = (report.column(chart.y[0]).title + (f" ({currency})" if money and currency else "")) if len(chart.y) == 1 else None
    names = list(chart.names) or [report.column(y).title for y in chart.y]
    month_axis = x == "month" or chart.kind == "overdue_share"
    if chart.kind == "bars":
        fig = bars(picked, x, chart.y[0], chart.title, name=names[0], percent=percent)
        fig.update_yaxes(title=html.escape(yaxis or ""))
        fig.update_xaxes(title=html.escape(report.column(x).title if x in report.column_names else ""))
    elif chart.kind == "lines":
        fig = lines(picked, x, list(chart.y), chart.title, percent=percent, names=names)
        if yaxis:
            fig.update_yaxes(title=html.escape(yaxis))
    elif chart.kind == "grouped_lines":
        fig = shade_periods(grouped_lines(picked, x, chart.group, chart.y[0], chart.title, percent),
                            view.periods if view is not None else {})
        if report.column(x).kind == "number":  # (periods say what they are; a number needs its axis named)
            fig.update_xaxes(title=html.escape(report.column(x).title))
    elif chart.kind == "grouped_bars":
        fig = grouped_bars(picked, x, list(chart.y), names, chart.title, percent=percent)
    elif chart.kind == "overdue_share":
        fig = overdue_share(picked)
    elif chart.kind == "transition_heatmap":
        fig = transition_heatmap(picked, chart.title)
    elif chart.kind == "forecast_areas":
        fig = forecast_areas(picked, chart.title, currency)
    elif chart.kind == "roll_heatmap":
        month = choice or default_roll_month(rows, view)
        fig = roll_heatmap(picked, month)
        if view is not None and view.data_date is not None and month == view.partial:
            fig.update_layout(title_text=html.escape(f"Roll rates, {month} (partial month: data to {view.data_date:%d %b})"))
    elif chart.kind in ("vintage_heatmap", "vintage_curves"):
        measure, cohorts = (choice if isinstance(choice, tuple) else (choice or chart.y[0], None))
        title = report.column(measure).title
        if chart.kind == "vintage_heatmap":
            fig = vintage_heatmap(picked, measure, title)
        else:
            fig = vintage_curves(picked, measure, title, cohorts)
    elif chart.kind == "region_map":
        fig = region_map(picked, currency)
    else:
        raise ValueError(f"chart {chart.key}: unknown kind {chart.kind!r}")
    if not rows:  # the table has rows, none of them this chart's: it says so, with no axes of made-up ranges
        fig.add_annotation(text=html.escape(chart.empty), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return with_view(fig, view, month_axis)


def default_roll_month(rows: list[dict[str, Any]], view: View | None = None) -> str:
    """The roll-rate month a chart opens on: the latest full month (the data date's month is
    partial unless the data date is its last day)."""
    months = sorted({r["month"] for r in rows})
    partial = view.partial if view is not None else None
    full = [m for m in months if m != partial]
    return (full or months or [""])[-1]


def share_heatmap(z: list[list[float]], x: list[str], y: list[str], title: str, scale: str, y_title: str,
                  x_title: str) -> go.Figure:
    """A matrix of shares from a row's state to a column's (roll rates, the transition matrix): one-hue
    blues from 0 to 1, each cell's percentage written in it, the first row on top."""
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, colorscale=SEQUENTIAL, zmin=0, zmax=1,
                               text=[[f"{v:.1%}" for v in row] for row in z], texttemplate="%{text}",
                               colorbar=dict(title=scale, tickformat=".0%")))
    fig.update_yaxes(autorange="reversed", title=y_title)
    fig.update_xaxes(title=x_title)
    return _layout(fig, title)


def roll_heatmap(table: Table, month: str) -> go.Figure:
    rows = [r for r in table.as_dicts() if r["month"] == month and r["from_bucket"] != "overdue"]
    order = ["current", "1-30", "31-60", "61-90", "91-180", "181+", "closed", "written_off"]
    froms = [b for b in order if any(r["from_bucket"] == b for r in rows)]
    tos = [b for b in order if any(r["to_bucket"] == b for r in rows)]
    z = [[next((num(r["rate"]) for r in rows if r["from_bucket"] == f and r["to_bucket"] == t), 0) for t in tos] for f in froms]
    return share_heatmap(z, tos, froms, f"Roll rates, {month}", "roll rate", "bucket at the previous month end",
                         "at this month end")


def transition_heatmap(table: Table, title: str = "Transition matrix") -> go.Figure:
    """The transition matrix (report transition-matrix): from the state at a month end (rows, in the
    states' order) to the state at the next (columns), the probability in each cell; the title says
    how many months it rests on."""
    rows = table.as_dicts()
    froms = list(dict.fromkeys(r["from_state"] for r in rows))
    tos = list(dict.fromkeys(r["to_state"] for r in rows))
    cell = {(r["from_state"], r["to_state"]): num(r["probability"]) for r in rows}
    z = [[cell.get((f, t), 0) for t in tos] for f in froms]
    months = rows[0]["months"] if rows else 0
    fig = share_heatmap(z, text(tos), text(froms), f"{title}, from {months} month{'' if months == 1 else 's'}",
                        "probability", "state at a month end", "state at the next month end")
    fig.update_traces(hovertemplate="from %{y} to %{x}: %{z:.1%}<extra></extra>")
    return fig


def forecast_areas(table: Table, title: str, currency: str | None = None) -> go.Figure:
    """The forecast (report forecast): each state's share of the book's principal in each projected
    month, stacked to 100 %, in the states' order from the bottom; hover gives the principal too."""
    rows = table.as_dicts()
    money = f" {html.escape(currency)}" if currency else ""
    fig = go.Figure()
    for state in dict.fromkeys(r["state"] for r in rows):
        mine = [r for r in rows if r["state"] == state]
        name = html.escape(str(state))
        fig.add_scatter(x=[r["month"] for r in mine], y=[num(r["share"]) for r in mine], name=name, mode="lines",
                        stackgroup="book", customdata=[num(r["principal"]) for r in mine],
                        hovertemplate=f"{name}, %{{x|%Y-%m}}: %{{y:.1%}} (%{{customdata:,.2f}}{money})<extra></extra>")
    months = len({r["month"] for r in rows})
    fig.update_xaxes(type="date", title="projected month", tickformat="%Y-%m", dtick="M1" if months <= 24 else None)
    fig = _layout(fig, title, yaxis="share of principal", percent=True)
    fig.update_yaxes(range=[0, 1])
    return fig


def spread(values: list[str], k: int = 4) -> list[str]:
    """Up to k values spread evenly over a sorted list, the last included: the cohorts the vintage
    lines start with."""
    if len(values) <= k:
        return list(values)
    return [values[round(i * (len(values) - 1) / (k - 1))] for i in range(k)]


def vintage_heatmap(table: Table, measure: str = "ever30_share", title: str | None = None) -> go.Figure:
    """The vintage triangle: one row per cohort (issue month), one column per month on book, the
    cell the measure (ever 30+ share, …); later cohorts have fewer months, hence the triangle."""
    rows = table.as_dicts()
    cohorts = sorted({r["cohort"] for r in rows})
    mobs = sorted({r["months_on_book"] for r in rows})
    cell = {(r["cohort"], r["months_on_book"]): num(r[measure]) for r in rows}
    z = [[cell.get((c, m)) for m in mobs] for c in cohorts]
    fig = go.Figure(go.Heatmap(
        z=z, x=mobs, y=text(cohorts), colorscale=SEQUENTIAL, zmin=0, xgap=1, ygap=1,
        text=[["" if v is None else f"{v:.0%}" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate="cohort %{y}, month %{x} on book: %{z:.1%}<extra></extra>",
        colorbar=dict(title=html.escape(title or measure), tickformat=".0%")))
    fig.update_yaxes(autorange="reversed", title="cohort (issue month)", type="category")
    fig.update_xaxes(title="months on book", dtick=1 if len(mobs) <= 24 else 3)
    fig = _layout(fig, f"Vintages: {title or measure}, cohort × months on book")
    fig.update_layout(height=max(400, 60 + 22 * len(cohorts)))
    return fig


def vintage_curves(table: Table, measure: str = "ever30_share", title: str | None = None,
                   cohorts: list[str] | None = None) -> go.Figure:
    """A line per chosen cohort (default: four spread over the cohorts), each its own colour."""
    rows = table.as_dicts()
    every = sorted({r["cohort"] for r in rows})
    fig = go.Figure()
    for i, cohort in enumerate(cohorts if cohorts is not None else spread(every)):
        mine = [r for r in rows if r["cohort"] == cohort]
        fig.add_scatter(x=[r["months_on_book"] for r in mine], y=[num(r[measure]) for r in mine],
                        name=html.escape(str(cohort)), mode="lines+markers", line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_xaxes(title="months on book")
    fig = _layout(fig, f"Vintages: {title or measure}, chosen cohorts", percent=True)
    fig.update_yaxes(title=html.escape(title or measure))
    return fig


# The map's labels. A label is placed only where it overlaps no other label and stays inside the
# map, at every scale the map is drawn at in a window 1280 pixels wide or wider (MAP_MIN_WIDTH: the
# plot's width there, measured 642, less a margin), away from the other bubbles where it can be;
# regions with more principal outstanding are placed first. The others are named on hover (and in
# the bar charts under the map on the dashboard).
LABEL_FONT = 11
MAP_MIN_WIDTH = 580
MAP_WIDTH = 642  # the plot's width in a 1280-pixel window, which sets the figure's height
MAP_MARGINS = 110  # _layout's top and bottom margins
RATIO = 1.1  # a degree of latitude is drawn this many times as tall as a degree of longitude is wide
# Text width per character, as a share of the font size: generous (Source Sans, the dashboard's
# font, takes 0.5; wider fallback fonts about 0.55).
CHAR_EM = 0.6
LABEL_GAP = 2  # pixels kept free around a label
POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "top left", "bottom right",
             "bottom left")


def _label_box(position: str, width: float, height: float, marker: float) -> tuple[float, float, float, float]:
    """Where Plotly draws a point's text, in pixels from the point (x right, y up): beside the
    marker by its radius / 0.8 + 1 (plotly.js Drawing.textPointPosition)."""
    r = marker / 2 / 0.8 + 1
    vertical, horizontal = position.split()
    x = {"center": (-width / 2, width / 2), "right": (r, r + width), "left": (-r - width, -r)}[horizontal]
    y = {"middle": (-height / 2, height / 2), "top": (r, r + height), "bottom": (-r - height, -r)}[vertical]
    return (*x, *y)


def _clash(a, b, scales: tuple[float, float]) -> bool:
    """Whether two boxes overlap at some scale between scales[0] and scales[1] (pixels per unit).
    A box is (X, Y, x0, x1, y0, y1): its anchor in map units, and its sides in pixels from the
    anchor; at scale s its left side is X·s + x0. Each side's condition for an overlap is linear
    in s, so the scales where they all hold are an interval, found exactly."""
    lo, hi = scales
    conditions = []  # each (p, q): an overlap needs p·s + q < 0
    for i, (k0, k1) in ((0, (2, 3)), (1, (4, 5))):
        conditions.append((a[i] - b[i], a[k0] - b[k1] - LABEL_GAP))  # a's low side below b's high side
        conditions.append((b[i] - a[i], b[k0] - a[k1] - LABEL_GAP))
    for p, q in conditions:
        if p == 0:
            if q >= 0:
                return False
        elif p > 0:
            hi = min(hi, -q / p)
        else:
            lo = max(lo, -q / p)
    if lo > hi:
        return False
    s = (lo + hi) / 2
    return all(p * s + q < 0 for p, q in conditions)


def place_labels(points: list[tuple[float, float]], names: list[str], markers: list[float],
                 bounds: tuple[float, float, float, float], scales: tuple[float, float]) -> list[str | None]:
    """A text position for each point (None: no label), in the order given (the most important
    first): the first of POSITIONS whose label box overlaps no label placed before it and lies
    within bounds (x0, x1, y0, y1 in map units), at every scale between scales[0] and scales[1]
    pixels per map unit; of those, one over the fewest other markers. points
    are (x, y) in map units, y already multiplied by the map's y/x scale ratio; markers are
    diameters in pixels."""
    height = LABEL_FONT * 1.4  # a line of text as Chromium draws it: 15 pixels at 11 (measured)
    x_lo, x_hi, y_lo, y_hi = bounds
    bubbles = [(x, y, -m / 2, m / 2, -m / 2, m / 2) for (x, y), m in zip(points, markers)]
    placed, out = [], []
    for i, ((x, y), name, marker) in enumerate(zip(points, names, markers)):
        width = len(name) * LABEL_FONT * CHAR_EM
        fits = []
        for position in POSITIONS:
            box = (x, y, *_label_box(position, width, height, marker))
            inside = all((x - x_lo) * s + box[2] >= 0 and (x_hi - x) * s - box[3] >= 0 and
                         (y - y_lo) * s + box[4] >= 0 and (y_hi - y) * s - box[5] >= 0 for s in scales)
            if inside and not any(_clash(box, other, scales) for other in placed):
                covered = sum(_clash(box, bubble, scales) for j, bubble in enumerate(bubbles) if j != i)
                fits.append((covered, position, box))
        if fits:
            _, position, box = min(fits, key=lambda f: (f[0], POSITIONS.index(f[1])))
            placed.append(box)
            out.append(position)
        else:
            out.append(None)
    return out


def region_map(table: Table, currency: str | None = None) -> go.Figure:
    """Regions as bubbles (size: principal outstanding, colour: overdue share) over country
    outlines shipped with loanwatch, framed on the regions placed: plain traces, no tiles or
    geometry are downloaded. Bubbles are labelled, the largest first, where a label fits
    (place_labels); every region is named on hover."""
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
    money = f" {html.escape(currency)}" if currency else ""
    unlabelled, height = [], 620
    if placed:
        # the largest first: drawn below the smaller ones, and labelled first
        placed.sort(key=lambda p: -(num(p[0]["principal_outstanding"]) or 0))
        principal = [num(r["principal_outstanding"]) or 0 for r, _ in placed]
        biggest = max(principal) or 1
        sizes = [10 + 34 * (p / biggest) ** 0.5 for p in principal]
        lons, lats = [s[2] for _, s in placed], [s[1] for _, s in placed]
        pad_x, pad_y = max(3.0, (max(lons) - min(lons)) * 0.15), max(2.0, (max(lats) - min(lats)) * 0.15)
        x_range = (min(lons) - pad_x, max(lons) + pad_x)
        y_range = (min(lats) - pad_y, max(lats) + pad_y)
        # as high as the regions' frame is at MAP_WIDTH (within 200 to 510 pixels): no empty bands
        # above and below a wide map. Pixels per degree of longitude: the plot is as wide as the page
        # allows (MAP_MIN_WIDTH at least) and plot_height high, a degree of latitude RATIO times as tall.
        tall = (y_range[1] - y_range[0]) * RATIO
        plot_height = min(510.0, max(200.0, MAP_WIDTH * tall / (x_range[1] - x_range[0])))
        most = plot_height / tall
        height = round(plot_height + MAP_MARGINS)
        scales = (min(MAP_MIN_WIDTH / (x_range[1] - x_range[0]), most), most)
        names = [s[0] for _, s in placed]
        positions = place_labels([(lon, lat * RATIO) for lon, lat in zip(lons, lats)], names, sizes,
                                 (*x_range, y_range[0] * RATIO, y_range[1] * RATIO), scales)
        unlabelled = [name for name, at in zip(names, positions) if at is None]
        fig.add_scatter(
            x=lons, y=lats, mode="markers+text",
            marker=dict(size=sizes, opacity=0.8,
                        color=[num(r["overdue_share"]) or 0 for r, _ in placed], colorscale=DIVERGING_SAFE, reversescale=True,
                        cmin=0, cmax=max(0.3, max((num(r["overdue_share"]) or 0) for r, _ in placed)),
                        colorbar=dict(title="overdue share", tickformat=".0%"), line=dict(width=1, color="#333")),
            text=[html.escape(name) if at else "" for name, at in zip(names, positions)],
            # shadow: a halo of the background's colour, so that a label over a bubble stays legible
            textposition=[at or "top center" for at in positions], textfont=dict(size=LABEL_FONT, shadow="auto"),
            customdata=[html.escape(name) for name in names],
            hovertext=[f"{html.escape(str(r['region']))}<br>outstanding {num(r['principal_outstanding']):,.2f}{money}"
                       f"<br>overdue share {(num(r['overdue_share']) or 0):.1%}" for r, _ in placed],
            hoverinfo="text", showlegend=False,
        )
        fig.update_xaxes(range=list(x_range))
        fig.update_yaxes(range=list(y_range))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=RATIO)
    fig = _layout(fig, "Principal outstanding and overdue share by region")
    fig.update_layout(height=height)
    fig.update_layout(meta={"unplaced_regions": [str(r["region"]) for r, _ in missing], "unlabelled_regions": unlabelled})
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
