"""The HTML report opens in headless Chromium with no network and shows the headline chart."""

from __future__ import annotations

import datetime as dt

import pytest

from loanwatch.reports import data_date
from loanwatch.serve import open_snapshot
from tests.conftest import cli
from tests.e2e.conftest import WAIT, shot
from tests.golden.test_ten_loans import EXPECTED, EXPECTED_500_1000

pytestmark = pytest.mark.e2e


def _open_offline(browser, path, width: int = 1200, height: int = 900):
    context = browser.new_context(offline=True, viewport={"width": width, "height": height})
    context.set_default_timeout(WAIT)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("() => { const g = document.getElementById('overdue-share'); return g && g.data; }")
    return context, page, requests, errors


def test_html_report_is_self_contained(browser, golden, tmp_path):
    out = tmp_path / "report.html"
    assert cli("report", "html", "--out", str(out), home=golden.home).exit_code == 0
    context, page, requests, errors = _open_offline(browser, out)
    try:
        loans = page.evaluate("() => document.getElementById('overdue-share').data[0].y")
        assert loans == [float(r[3]) for r in EXPECTED]
        assert errors == []
        assert [u for u in requests if not u.startswith(("file://", "data:", "blob:"))] == []
        text = page.inner_text("body")
        assert "Data date 2024-06-30" in text and "66.7 %" in text and "Principal outstanding (USD)" in text
        assert "as of 2024-06-30 · money in USD · all loans" in text and "Projection" not in text
        shot(page, "html-report")
    finally:
        context.close()


def test_html_report_with_a_filter(browser, golden, tmp_path):
    out = tmp_path / "filtered.html"
    assert cli("report", "html", "--out", str(out), "--min-amount", "500", "--max-amount", "1000", "--as-of", "2024-07-31",
               home=golden.home).exit_code == 0
    context, page, _, _ = _open_offline(browser, out)
    try:
        # the months to the data date as without --as-of, then the projected July
        shares = page.evaluate("() => document.getElementById('overdue-share').data[1].y")
        assert shares[:-1] == [float(r[6]) for r in EXPECTED_500_1000] and len(shares) == len(EXPECTED_500_1000) + 1
        text = page.inner_text("body")
        assert "filters: amount 500.00 to 1,000.00" in text
        assert "Projection: as of 2024-07-31, after the data date 2024-06-30" in text
    finally:
        context.close()


def test_html_report_months_stay_on_one_line_and_time_axes_end_at_the_data_date(browser, partial_month_home, tmp_path):
    """At 1280 × 800, on a portfolio of six-figure amounts whose data date falls inside a month:
    the tables' months are one line each (not 2024- / 12), and every axis of months ends at the
    data date, with its partial month shaded, instead of running on for empty months."""
    out = tmp_path / "report.html"
    assert cli("report", "html", "--out", str(out), home=partial_month_home.home).exit_code == 0
    con = open_snapshot(partial_month_home)
    day = data_date(con)
    con.close()
    assert (day + dt.timedelta(days=1)).month == day.month, "the portfolio's data date must fall inside a month"
    context, page, _, errors = _open_offline(browser, out, 1280, 800)
    try:
        charts = ["overdue-share", "par", "cure"]  # the report's charts over months
        page.wait_for_function("ids => ids.every(id => { const g = document.getElementById(id); return g && g._fullLayout; })",
                               arg=charts)
        axes = page.evaluate("""ids => ids.map(id => { const a = document.getElementById(id)._fullLayout.xaxis;
            const g = document.getElementById(id);
            return {id, type: a.type, end: a.r2l(a.range[1]), last: Math.max(...g.data.flatMap(t => t.x).map(x => a.d2l(x))),
                    shapes: (g.layout.shapes || []).length, notes: (g.layout.annotations || []).map(n => n.text)}; })""",
                             charts)
        end = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000
        for axis in axes:
            assert axis["type"] == "date" and axis["last"] <= axis["end"] == end, axis
            assert axis["shapes"] == 1 and f"partial month (data to {day:%d %b})" in axis["notes"], axis
        # the month column of every table: each cell one line, as high as a cell of one word
        lines = page.evaluate("""() => [...document.querySelectorAll('table')].flatMap(t => {
                const heads = [...t.querySelectorAll('th')].map(h => h.innerText);
                const i = heads.indexOf('Month');
                return i < 0 ? [] : [...t.querySelectorAll('tr')].slice(1).map(r => {
                    const cell = r.children[i], range = document.createRange();
                    range.selectNodeContents(cell);
                    return [cell.innerText, new Set([...range.getClientRects()].map(b => Math.round(b.top))).size]; });
            })""")
        assert lines and all(n == 1 for _, n in lines), [c for c in lines if c[1] != 1]
        assert errors == []
        shot(page, "html-report-1280")
    finally:
        context.close()
