"""The dashboard in a real browser: KPIs, the amount filter, every page, offline, escaping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from loanwatch import reports
from loanwatch.output import shown_value
from loanwatch.reports import registry
from loanwatch.serve import open_snapshot
from tests.e2e.conftest import browsing, served, shot
from tests.golden.test_ten_loans import EXPECTED, EXPECTED_500_1000

pytestmark = pytest.mark.e2e


def run_done(page):
    """The run of the app's script whose output the test has already waited for has ended: what
    it has not drawn by now, it does not draw (checks that something is absent come after this)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def open_page(page, url: str):
    """Open a page of the dashboard: its data-date line is shown and its first run has ended."""
    page.goto(url)
    expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text("Data date")
    run_done(page)


def expect_cards(page, cards: dict[str, str]):
    """The KPI cards show exactly these titles and values, in this order (waiting for them: after
    a filter changes, the old cards stay until the new ones replace them)."""
    expect(page.get_by_test_id("stMetricLabel")).to_have_text(list(cards))
    expect(page.get_by_test_id("stMetricValue")).to_have_text(list(cards.values()))


def type_amount_bounds(page, low: str, high: str):
    """Type the sidebar's exact amount inputs, min then max, each confirmed with Enter; each time
    the dashboard has taken the amount when it shows it back with separators (1,000.00)."""
    for label, value in (("min amount", low), ("max amount", high)):
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        expect(box).to_have_value(shown_value("money", Decimal(value)))


def series(page, name: str) -> list[float] | None:
    """The y values of the trace of this name in the page's Plotly figures (None: no such trace)."""
    return page.evaluate(
        """name => { const g = [...document.querySelectorAll('.js-plotly-plot')]
                       .find(el => el.data && el.data.some(t => t.name === name));
                     return g ? Array.from(g.data.find(t => t.name === name).y) : null; }""", name)


def expect_series(page, name: str, expected: list[float]):
    """A trace of this name shows these y values (waiting for the figure to be drawn, or redrawn
    after a filter changed); on a timeout, the values drawn are compared, to show what differs."""
    try:
        page.wait_for_function(
            """([name, want]) => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.data && g.data.some(
                   t => t.name === name && JSON.stringify(Array.from(t.y)) === JSON.stringify(want)))""",
            arg=[name, expected])
    except PlaywrightTimeout:
        pass
    assert series(page, name) == expected


def test_overview_kpis_and_headline_chart(page, dashboard_url):
    open_page(page, dashboard_url)
    # hand-computed at 2024-06-30: L03 300 (DPD 60), L04 500 (DPD 81), L10 400 (current)
    expect_cards(page, {"Active loans": "3", "Principal outstanding (USD)": "1,200.00", "Overdue share": "66.7 %",
                        "PAR30": "66.7 %", "NPL (PAR90)": "0.0 %"})
    expect_series(page, "overdue share (loans)", [float(r[3]) for r in EXPECTED])
    assert "Data date 2024-06-30" in page.get_by_test_id("stCaptionContainer").first.inner_text()
    shot(page, "overview")


def test_amount_filter_recomputes_chart_and_kpis(page, dashboard_url):
    open_page(page, dashboard_url)
    type_amount_bounds(page, "500", "1000")
    # 500..1000 keeps L03 (300 left, DPD 60) and L04 (500, DPD 81) on the book at 06-30
    expect_cards(page, {"Active loans": "2", "Principal outstanding (USD)": "800.00", "Overdue share": "100.0 %",
                        "PAR30": "100.0 %", "NPL (PAR90)": "0.0 %"})
    expect_series(page, "overdue share (loans)", [float(r[3]) for r in EXPECTED_500_1000])
    expect_series(page, "overdue share (principal)", [float(r[6]) for r in EXPECTED_500_1000])
    shot(page, "overview-filtered")


def test_amount_bounds_the_wrong_way_round_say_so(page, dashboard_url):
    open_page(page, dashboard_url)
    expect(page.get_by_test_id("stMetric")).to_have_count(len(registry.KPIS))
    type_amount_bounds(page, "1000", "500")
    expect(page.get_by_test_id("stAlert").filter(has_text="No loan can match")).to_contain_text(
        "No loan can match: the amount range is empty: from 1000.0 to 500.0.")
    # no zeros that look like figures, and no empty chart with a -100 % to 400 % axis: the cards
    # and charts of the run before go once this run has ended
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    expect(page.locator(".js-plotly-plot")).to_have_count(0)
    run_done(page)
    assert page.get_by_test_id("stException").count() == 0


def test_sidebar_amounts_have_separators_and_take_typed_ones(browser, partial_month_url, partial_month_home):
    """The amount filter shows amounts as everywhere else (120,000.00, not 120000.00), in the
    slider and in the exact inputs, and takes amounts typed with or without separators."""
    with browsing(browser, 1280, 800) as page:
        open_page(page, partial_month_url)
        con = open_snapshot(partial_month_home)
        lo, hi = con.execute("SELECT floor(min(amount)), ceil(max(amount)) FROM marts.dim_loans "
                             "WHERE NOT is_cancelled").fetchall()[0]
        con.close()
        assert hi >= 1000  # a thousands separator to show
        expect(page.get_by_label("max amount")).to_have_value(shown_value("money", hi))
        expect(page.get_by_label("min amount")).to_have_value(shown_value("money", lo))
        expect(page.get_by_test_id("stSlider").get_by_test_id("stSliderThumbValue")).to_have_text(
            [shown_value("money", lo), shown_value("money", hi)])
        box = page.get_by_label("min amount")
        box.fill("1,500")
        box.press("Enter")
        expect(box).to_have_value("1,500.00")
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="filters: amount")).to_contain_text(
            "filters: amount 1,500.00 to any")
        box.fill("twelve")
        box.press("Enter")
        expect(page.get_by_test_id("stSidebar").get_by_test_id("stAlert")).to_contain_text(
            "Not an amount: min amount 'twelve'")
        expect(box).to_have_value("1,500.00")  # the last amount taken stays
        assert page.errors == []


# The charts over months of each page: the registry's (x is the month) and the call centre's.
MONTH_CHARTS = {path: [c.key for r in registry.on_page(path) for c in r.charts if c.x == "month" or c.kind == "overdue_share"]
                for path in registry.PAGES}
MONTH_CHARTS["calls"] = ["calls-calls", "calls-connect_rate", "calls-login_rate_48h"]


def month_figure(page, key: str) -> dict:
    """A chart over months, once drawn: its months, x axis, shaded periods and notes."""
    page.wait_for_function("key => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`); "
                           "return g && g._fullLayout && g.data; }", arg=key)
    return page.evaluate("""key => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`);
        const a = g._fullLayout.xaxis;
        return {months: [...new Set(g.data.flatMap(t => Array.from(t.x || [])))].sort(), type: a.type,
                end: a.type === 'date' ? a.r2l(a.range[1]) : null,
                shapes: (g.layout.shapes || []).map(s => [s.x0, s.x1]),
                notes: (g.layout.annotations || []).map(n => n.text)}; }""", key)


def test_every_chart_over_months_shades_the_partial_month(browser, partial_month_url, partial_month_home):
    """Calls in the data date's month are few because the month has just begun (a part of it):
    every chart over months shades it alike (the call centre's too), and a time axis ends at the
    data date (no empty months after it)."""
    con = open_snapshot(partial_month_home)
    day = reports.data_date(con)
    con.close()
    assert (day + dt.timedelta(days=1)).month == day.month, "the portfolio's data date must fall inside a month"
    month, note = f"{day:%Y-%m}", f"partial month (data to {day:%d %b})"
    end = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000
    shaded = []
    with browsing(browser, 1280, 800) as page:
        first = next(iter(registry.PAGES))
        for path, keys in MONTH_CHARTS.items():
            if not keys:
                continue
            open_page(page, partial_month_url if path == first else f"{partial_month_url}/{path}")
            for key in keys:
                fig = month_figure(page, key)
                if month not in fig["months"]:
                    continue  # (no write-off this month, say)
                assert note in fig["notes"] and len(fig["shapes"]) == 1, (key, fig)
                if fig["type"] == "date":
                    assert fig["end"] == end, (key, fig)
                else:  # periods as categories: the band covers the partial month's
                    i = fig["months"].index(month)
                    assert fig["shapes"] == [[i - 0.5, i + 0.5]], (key, fig)
                shaded.append(key)
        assert {"overdue-share", "par", "calls-calls", "calls-connect_rate"} <= set(shaded), shaded
        # by week: the data date's week is partial too (a Wednesday)
        page.get_by_text("week", exact=True).click()
        page.wait_for_function(
            """note => { const g = document.querySelector('.st-key-chart-calls-calls .js-plotly-plot');
                         return g && (g.layout.annotations || []).some(a => a.text === note); }""",
            arg=f"partial week (data to {day:%d %b})")
        assert page.errors == []


# Every page, offline, with every chart the registry puts on it, at 1280 and 1920 px:
# test_dashboard_committee.py (on a warehouse with two currencies and a partial month).


def test_geography_map_draws_regions_from_shipped_outlines(page, dashboard_url):
    open_page(page, f"{dashboard_url}/geography")
    page.wait_for_function("""() => { const g = document.querySelector('.st-key-chart-regions-map .js-plotly-plot');
                                      return g && g.data && g.data.some(t => t.mode === 'markers+text'); }""")
    texts = page.evaluate("""() => [...document.querySelectorAll('.st-key-chart-regions-map .js-plotly-plot')]
        .flatMap(g => (g.data || []).flatMap(t => t.text || []))""")
    joined = " ".join(str(t) for t in texts)
    assert "Татарстан" in joined and "California" in joined


def label_boxes(page) -> list[dict]:
    """The region map's labels as drawn: their text and bounding box in the page."""
    return page.evaluate("""() => [...document.querySelectorAll('.st-key-chart-regions-map .textpoint text')]
        .filter(t => t.textContent).map(t => { const b = t.getBoundingClientRect();
            return {text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height}; })""")


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_geography_labels_never_overlap(browser, partial_month_url, size):
    """34 regions on three continents: the largest are labelled where a label fits, and no two
    labels overlap (their boxes as drawn); the others are named on hover, and the page says so."""
    with browsing(browser, *size) as page:
        open_page(page, f"{partial_month_url}/geography")
        labels = page.locator(".st-key-chart-regions-map .textpoint text")
        expect(labels.first).to_be_attached()
        run_done(page)
        boxes = label_boxes(page)
        overlapping = [(a["text"], b["text"]) for i, a in enumerate(boxes) for b in boxes[:i]
                       if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"]
                       and b["y"] < a["y"] + a["h"]]
        assert overlapping == []
        assert len(boxes) >= 8, boxes
        regions = page.evaluate("""() => document.querySelector('.st-key-chart-regions-map .js-plotly-plot')
                                      .data.find(t => t.mode === 'markers+text').customdata""")
        assert boxes[0]["text"] == regions[0]  # the region with the most principal outstanding
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="have no label")).to_contain_text(
            f"{len(regions) - len(boxes)} regions have no label (it would overlap another)")
        shot(page, f"geography-labels-{size[0]}")
        assert page.errors == []


# Drawn text of the page's canvases (Streamlit draws tables on a canvas): what a person sees in
# the cells and headers, as drawn, not as the table's accessible copy holds it (raw values).
RECORD_DRAWN_TEXT = """
window.__drawn = new Set();
for (const C of [window.CanvasRenderingContext2D, window.OffscreenCanvasRenderingContext2D]) {
    if (!C) continue;
    const fill = C.prototype.fillText;
    C.prototype.fillText = function (text, ...rest) { window.__drawn.add(String(text)); return fill.call(this, text, ...rest); };
}
"""


def drawn_text(page, *expected: str) -> set[str]:
    """What the page's canvases have drawn, once it holds every expected text."""
    try:
        page.wait_for_function("want => want.every(w => window.__drawn.has(w))", arg=list(expected))
    except PlaywrightTimeout:
        pass
    drawn = set(page.evaluate("() => [...window.__drawn]"))
    assert set(expected) <= drawn, sorted(drawn)
    return drawn


def test_lookup_shows_a_loan_and_keeps_names_as_text(page, dashboard_url):
    open_page(page, f"{dashboard_url}/lookup")
    box = page.get_by_label("Loan id, client id or client name")
    box.fill("Ömer")
    box.press("Enter")
    expect(page.get_by_role("heading", name="DPD history")).to_be_visible()
    run_done(page)
    assert page.locator("b", has_text="Ömer").count() == 0  # <b>Ömer</b> is data, not markup
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "lookup-omer")


def test_lookup_shows_money_titles_and_blanks_as_everywhere_else(browser, dashboard_url):
    """L07 (300.00 USD, paid, reversed, paid again): money with 2 decimals and the loan's currency,
    human titles, and blank cells where a value is missing (the reversed payment allocated
    nothing), at 1280 × 800; its life first (the reversal, then overdue with DPD 3)."""
    with browsing(browser, 1280, 800) as page:
        page.context.add_init_script(RECORD_DRAWN_TEXT)
        open_page(page, f"{dashboard_url}/lookup")
        box = page.get_by_label("Loan id, client id or client name")
        box.fill("L07")
        box.press("Enter")
        for heading in ("Loan life", "Loan versions", "Client versions", "Schedule", "Payments", "DPD history"):
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_test_id("stDataFrame")).to_have_count(7)
        run_done(page)
        drawn = drawn_text(page, "Amount (USD)", "300.00", "0.00", "Principal (USD)", "Paid (USD)",
                           "To interest (USD)", "To principal (USD)", "DPD", "DPD bucket", "Reversed", "Reverses",
                           "Principal outstanding (USD)", "Past due (USD)", "Current", "Issued",
                           "Event", "State after")
        assert "None" not in drawn and "nan" not in drawn
        raw = {"Dpd", "Is reversed", "Is current", "Principal amount", "Amount", "300", "Reversed payment id"}
        assert raw & drawn == set()
        # and the tables' own titles, every column of them (the accessible copy lists them all)
        titles = page.evaluate("() => [...document.querySelectorAll('[data-testid=stDataFrame] th')].map(t => t.innerText)")
        assert not [t for t in titles if t.startswith(("Is ", "Dpd")) or "_" in t or t.endswith(" id")], titles
        # the life, after the matches: each event with the state at the end of its day (the voided
        # payment changed nothing; the reversal's day, 05-08, is 3 days after the due date)
        life = page.get_by_test_id("stDataFrame").nth(1)
        expect(life.locator("th")).to_contain_text(["At", "Event", "Reference", "Amount (USD)", "Detail", "State after"])
        expect(life.locator("tbody tr td:nth-child(2)")).to_have_text(["version", "payment", "reversal", "payment"])
        expect(life.locator("tbody tr td:nth-child(5)")).to_have_text(
            ["issued 2024-04-05, its own schedule, rate 0 %, status active", "voided by P14, never counted",
             "reverses P13", "to principal 300.00"])
        expect(life.locator("tbody tr td:nth-child(6)")).to_have_text(["current", "current", "overdue", "closed"])
        shot(page, "lookup-life-1280")
        assert page.errors == []


def test_a_new_snapshot_shows_without_a_restart(browser, tmp_path):
    """Publishing a build while the dashboard runs: the next page load shows the new data date."""
    import json

    from tests.conftest import GOLDEN, build_home, cli

    settings = build_home(tmp_path / "home", GOLDEN)
    with served(settings) as url, browsing(browser) as page:
        open_page(page, url)
        expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text("Data date 2024-06-30")
        # a build runs and publishes while the dashboard has the old snapshot open
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "calls_2.jsonl").write_text(json.dumps(
            {"call_id": "K2", "client_id": "C4", "loan_id": "L04", "called_at": "2024-07-15T10:00:00Z", "outcome": "busy"}) + "\n")
        assert cli("ingest", str(extra), home=settings.home).exit_code == 0
        assert cli("build", home=settings.home).exit_code == 0
        open_page(page, url)
        expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text("Data date 2024-07-15")
        # at 07-15: L03 DPD 75, L04 96 (> 90), L10 current: NPL = 500 / 1200
        expect(page.get_by_test_id("stMetric").filter(has_text="NPL (PAR90)")).to_contain_text("41.7 %")


def test_a_damaged_snapshot_says_what_to_do(browser, golden, tmp_path):
    """A serving file cut short (a full disk while copying it by hand, say): the page names it and
    says to build again, with no exception (issue: hardening, 9)."""
    import shutil

    from loanwatch.config import load_settings

    home = tmp_path / "home"
    shutil.copytree(golden.home, home, ignore=shutil.ignore_patterns("*.lock"))
    (home / "serving.duckdb").write_bytes(b"\0" * 4096)
    with served(load_settings(home, environ={})) as url, browsing(browser) as page:
        page.goto(url)
        expect(page.get_by_text("is damaged or cut short")).to_be_visible()
        assert "loanwatch build" in page.inner_text("body")
        run_done(page)
        assert page.get_by_test_id("stException").count() == 0


def test_call_centre_and_merchants_pages_draw_their_charts(page, dashboard_url):
    open_page(page, f"{dashboard_url}/calls")
    for key in ("calls-calls", "calls-connect_rate", "calls-login_rate_48h"):
        expect(page.locator(f".st-key-chart-{key} .js-plotly-plot"), key).to_have_count(1)
    expect(page.get_by_text("Agents", exact=True)).to_have_count(1)
    open_page(page, f"{dashboard_url}/merchants")
    for key in ("merchant-balance", "merchant-flows"):
        expect(page.locator(f".st-key-chart-{key} .js-plotly-plot"), key).to_have_count(1)
    expect(page.get_by_text("Lowest balances", exact=True)).to_have_count(1)
    run_done(page)
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "merchants-golden")
