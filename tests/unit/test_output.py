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
