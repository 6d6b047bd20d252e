"""How values are shown to people (output.py, charts.py, geo.py): pure functions, no warehouse."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal as D
from pathlib import Path

import pytest

from loanwatch import charts, geo
from loanwatch.output import Format, Shown, render, shown_value
from loanwatch.reports import LoanFilter, Table, View, partial_month

pytestmark = pytest.mark.unit

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def test_values_by_kind():
    assert shown_value("money", D("177179.9")) == "177,179.90"
    assert shown_value("money", D("-3.5")) == "-3.50"
    assert shown_value("share", D("0.182667")) == "18.3 %"
    assert shown_value("share", D("0.0005")) == "0.1 %"  # half up, as METRICS rounds
    assert shown_value("share", D("0.0015")) == "0.2 %"
    assert shown_value("count", 8641) == "8,641"
    assert shown_value("date", dt.date(2024, 7, 10)) == "2024-07-10"
    assert shown_value("text", None) == "-"


def test_partial_month_is_the_data_dates_month_unless_it_is_the_last_day():
    assert partial_month(dt.date(2024, 7, 10)) == "2024-07"
    assert partial_month(dt.date(2024, 6, 30)) is None
    assert partial_month(dt.date(2024, 2, 29)) is None
    assert partial_month(dt.date(2023, 12, 31)) is None


def test_view_says_what_a_figure_shows():
    f = LoanFilter(min_amount=D("500"), max_amount=D("1000"), product="bnpl")
    view = View(dt.date(2024, 7, 10), dt.date(2024, 8, 31), "USD", f.describe(), months=True)
    assert view.describe() == ("as of 2024-08-31 (projection) · money in USD · filters: amount 500.00 to 1,000.00, "
                               "product bnpl · 2024-07 is partial (data to 2024-07-10)")
    assert View(dt.date(2024, 6, 30)).describe() == "as of 2024-06-30 · all loans"


def test_a_table_fits_the_width_and_names_the_columns_it_leaves_out():
    table = Table(["loan_id", "client_name", "amount", "share", "note"],
                  [("L1", "Ana María López de la Vega", D("1234567.5"), D("0.5"), "a long note " * 5)])
    columns = [Shown("loan_id", "text", "Loan"), Shown("client_name", "text", "Client"),
               Shown("amount", "money", "Amount"), Shown("share", "share", "Share"), Shown("note", "text", "Note")]
    for width in (40, 60, 100):
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("COLUMNS", str(width))
            render(table, Format.table, "T", out, columns=columns, currency="MXN", note="as of 2024-07-10")
        text = out.getvalue()
        assert all(len(line) <= width for line in text.splitlines()), (width, text)
        assert "1,234,567.50" in text  # a number is never cut
    assert "not shown at this width" not in text and "Amount (MXN)" in text and "50.0 %" in text


def test_vintage_lines_start_with_cohorts_spread_over_the_range():
    cohorts = [f"2024-{m:02d}" for m in range(1, 13)]
    assert charts.spread(cohorts) == ["2024-01", "2024-05", "2024-08", "2024-12"]
    assert charts.spread(cohorts[:3]) == cohorts[:3]
    assert len(set(charts.PALETTE)) == len(charts.PALETTE) == 8


def test_every_mexican_state_is_on_the_map():
    states = ["Aguascalientes", "Baja California", "Baja California Sur", "Campeche", "Chiapas", "Chihuahua",
              "Ciudad de México", "Coahuila de Zaragoza", "Colima", "Durango", "Estado de México", "Guanajuato",
              "Guerrero", "Hidalgo", "Jalisco", "Michoacán de Ocampo", "Morelos", "Nayarit", "Nuevo León", "Oaxaca",
              "Puebla", "Queretaro de Arteaga", "Quintana Roo", "San Luis Potosi", "Sinaloa", "Sonora", "Tabasco",
              "Tamaulipas", "Tlaxcala", "Veracruz de Ignacio de la Llave", "Yucatán", "Zacatecas"]
    placed = {geo.locate(s)[0] for s in states if geo.locate(s)}
    assert len(placed) == 32
    for name, lat, lon in {geo.locate(s) for s in states}:
        assert 14 < lat < 33 and -118 < lon < -86, name  # inside Mexico's bounding box


def test_the_states_of_the_kueski_portfolio_are_placed():
    path = REAL / "kueski_bnpl" / "loan_data.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent: the real datasets live beside the clone (docs/real-data.md)")
    import duckdb

    counts = duckdb.execute("SELECT state, count(*) FROM read_csv(?) GROUP BY 1", [str(path)]).fetchall()
    unplaced = {s: n for s, n in counts if s not in (None, "NA") and geo.locate(s) is None}
    # what is left are one-off typos and city names in the state column (Coyoacán, Mazatlán), 1 loan each
    assert unplaced and max(unplaced.values()) == 1, unplaced


def test_a_reports_view_keeps_the_as_of_and_the_partial_month_only_where_they_apply():
    from loanwatch.reports import registry

    view = View(dt.date(2024, 7, 10), dt.date(2024, 8, 31), "USD")
    summary, par = view.for_report(registry.get("summary")), view.for_report(registry.get("par"))
    assert (summary.as_of, summary.months) == (dt.date(2024, 8, 31), False)  # takes --as-of, no month column
    assert (par.as_of, par.months) == (None, True)  # every month end: no as-of; its last month is partial
    assert par.describe() == "as of 2024-07-10 · money in USD · all loans · 2024-07 is partial (data to 2024-07-10)"


def test_one_function_prepares_every_view():
    """The CLI, the dashboard, the HTML report and the demo get a figure's View from
    reports.prepare: no other module builds one."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "loanwatch"
    built = [f"{path.relative_to(src)}:{node.lineno}" for path in sorted(src.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "View"]
    assert built and all(b.startswith("reports/view.py:") for b in built), built


def test_titles_of_undeclared_columns_are_words_for_people():
    from loanwatch.output import guess_column, human_title

    assert human_title("dpd") == "DPD"
    assert human_title("is_reversed") == "Reversed"
    assert human_title("is_do_not_contact") == "Do not contact"
    assert human_title("principal_outstanding_amount") == "Principal outstanding amount"
    assert human_title("par30") == "PAR30" and human_title("is") == "Is"
    assert guess_column("dpd", [3]) == Shown("dpd", "count", "DPD")


def test_amounts_typed_with_or_without_separators():
    from loanwatch.output import parse_amount

    assert parse_amount("120,000.00") == 120000.0
    assert parse_amount(" 1 500.5 ") == 1500.5
    assert parse_amount("1000") == 1000.0
    assert parse_amount(shown_value("money", D("98765.4"))) == 98765.4  # what the sidebar shows, read back
    for wrong in ("", "twelve", "1.2.3", "nan", "inf", "12 USD"):
        assert parse_amount(wrong) is None, wrong


def test_partial_periods_of_a_chart_over_months_or_weeks():
    day = dt.date
    # the data date's month, unless the data date is its last day
    assert charts.partial_periods("month", day(2024, 12, 11)) == {"2024-12": "partial month (data to 11 Dec)"}
    assert charts.partial_periods("month", day(2024, 11, 30)) == {}
    # a first day chosen after the data begins cuts its month too
    assert charts.partial_periods("month", day(2024, 12, 11), day(2024, 3, 15)) == {
        "2024-03": "partial month (data from 15 Mar)", "2024-12": "partial month (data to 11 Dec)"}
    assert charts.partial_periods("month", day(2024, 11, 30), day(2024, 3, 1)) == {}
    assert charts.partial_periods("month", day(2024, 12, 11), day(2024, 12, 2)) == {
        "2024-12": "partial month (data 02 Dec to 11 Dec)"}
    # ISO weeks, labelled as the marts label them (2024-12-11 is a Wednesday, 2024-12-15 a Sunday)
    assert charts.partial_periods("week", day(2024, 12, 11)) == {"2024-W50": "partial week (data to 11 Dec)"}
    assert charts.partial_periods("week", day(2024, 12, 15)) == {}
    assert charts.period_of(day(2024, 12, 30), "week") == ("2025-W01", day(2024, 12, 30), day(2025, 1, 5))
    assert charts.partial_periods("day", day(2024, 12, 11)) == {}


def test_calls_by_month_shade_the_partial_month_as_the_other_charts_do():
    table = Table(["period", "group", "calls"], [("2024-11", "early", 1014), ("2024-12", "early", 184),
                                                 ("2024-10", "late", 90)])
    fig = charts.grouped_lines(table, "period", "group", "calls", "Calls by campaign")
    charts.shade_periods(fig, charts.partial_periods("month", dt.date(2024, 12, 11)))
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1) == (1.5, 2.5)  # 2024-12, the third category
    assert [a.text for a in fig.layout.annotations] == ["partial month (data to 11 Dec)"]
    # shaded as with_view shades a month on a time axis
    monthly = charts.with_view(charts.lines(Table(["month", "v"], [("2024-11", 1), ("2024-12", 2)]), "month", ["v"], "t"),
                               View(dt.date(2024, 12, 11)), month_axis=True)
    assert (monthly.layout.shapes[0].fillcolor, monthly.layout.shapes[0].opacity) == (shape.fillcolor, shape.opacity)


def test_a_time_axis_of_months_ends_at_the_data_date():
    from loanwatch.reports import registry

    par = registry.get("par")
    table = Table(par.column_names, [(f"2024-{m:02d}", D("100"), D("0.1"), D("0.05"), D("0.01")) for m in range(1, 13)])
    for data_date, partial in ((dt.date(2024, 12, 11), True), (dt.date(2024, 12, 31), False)):
        fig = charts.figure(par, par.charts[0], table, view=View(data_date).for_report(par))
        assert fig.layout.xaxis.type == "date"
        assert fig.layout.xaxis.range == ("2023-12-17", data_date.isoformat())  # half a month before the first
        assert len(fig.layout.shapes) == partial
    # a projection runs to its as-of date; a report as of an earlier date ends there
    overdue = registry.get("overdue-monthly")
    rows = [(f"2024-{m:02d}", 1, 0, D("0"), D("1"), D("0"), D("0")) for m in range(1, 9)]
    fig = charts.figure(overdue, overdue.charts[0], Table(overdue.column_names, rows),
                        view=View(dt.date(2024, 7, 10), dt.date(2024, 8, 31)).for_report(overdue))
    assert fig.layout.xaxis.range[1] == "2024-08-31" and len(fig.layout.shapes) == 1
    fig = charts.figure(overdue, overdue.charts[0], Table(overdue.column_names, rows[:3]),
                        view=View(dt.date(2024, 7, 10), dt.date(2024, 3, 31)).for_report(overdue))
    assert fig.layout.xaxis.range[1] == "2024-03-31" and len(fig.layout.shapes) == 0  # July is not on it


def _boxes(points, names, markers, positions, scale):
    height = charts.LABEL_FONT * 1.25
    out = []
    for (x, y), name, marker, at in zip(points, names, markers, positions):
        if at:
            x0, x1, y0, y1 = charts._label_box(at, len(name) * charts.LABEL_FONT * charts.CHAR_EM, height, marker)
            out.append((x * scale + x0, x * scale + x1, y * scale + y0, y * scale + y1))
    return out


def test_map_labels_are_placed_where_they_overlap_no_other_at_any_scale():
    import random

    rng = random.Random(7)
    # a dense cluster (central Mexico) and a few regions far apart, in map units
    points = [(-99 + rng.uniform(-4, 4), 20 + rng.uniform(-3, 3)) for _ in range(25)] + [(-120, 37), (37, 56), (131, 45)]
    names = [f"Region {i} {'x' * rng.randrange(12)}" for i in range(len(points))]
    markers = [10 + 34 * rng.random() for _ in points]
    bounds, scales = (-140, 150, 10, 65), (2.0, 9.0)
    positions = charts.place_labels(points, names, markers, bounds, scales)
    assert positions[0] is not None  # the first (largest) always gets its label when it fits the map
    assert None not in positions[-3:]  # alone: each has its label (inside the map: not always above)
    assert charts.place_labels([(0, 0)], ["Alone"], [20], (-50, 50, -50, 50), (2.0, 9.0)) == ["top center"]
    assert 3 < sum(p is not None for p in positions) < len(points)
    for scale in (2.0, 3.3, 5.0, 9.0):
        boxes = _boxes(points, names, markers, positions, scale)
        for i, a in enumerate(boxes):
            for b in boxes[:i]:
                assert not (a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]), (scale, a, b)
            assert bounds[0] * scale <= a[0] and a[1] <= bounds[1] * scale and bounds[2] * scale <= a[2] \
                and a[3] <= bounds[3] * scale


def test_the_roll_rate_heat_map_of_the_partial_month_says_so():
    from loanwatch.reports import registry

    rolls = registry.get("roll-rates")
    rows = [(month, "current", "current", 1, D("100"), D("100"), D("1")) for month in ("2024-06", "2024-07")]
    view = View(dt.date(2024, 7, 10)).for_report(rolls)
    table = Table(rolls.column_names, rows)
    assert charts.figure(rolls, rolls.charts[0], table, view=view).layout.title.text == "Roll rates, 2024-06"
    assert charts.figure(rolls, rolls.charts[0], table, "2024-07", view).layout.title.text == \
        "Roll rates, 2024-07 (partial month: data to 10 Jul)"
