"""The Provisions page in a real browser, on the golden provisions book (tests/golden/test_provisions.py,
whose figures by hand are read here): the stage table, the bars by product, the transition matrix as
a heat map, the forecast as stacked areas and the back-test's error per month, with what the
figures rest on under them; the HTML report's section with the same charts, offline."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from loanwatch.config import load_settings
from tests.conftest import build_home, cli
from tests.e2e.conftest import WAIT, browsing, served, shot
from tests.e2e.test_dashboard import RECORD_DRAWN_TEXT, drawn_text, expect_series, open_page, run_done
from tests.golden.test_provisions import FIXTURE, FORECAST, MATRIX, ORDER

pytestmark = pytest.mark.e2e

# The LGD from the book's two write-offs (0.70), as test_provisions.py's figures take it.
SETTINGS = "[provisions]\nlgd_min_loans = 2\nlgd_window_months = 1\n"


@pytest.fixture(scope="module")
def provisions_home(tmp_path_factory):
    home = build_home(tmp_path_factory.mktemp("provisions_book") / "home", FIXTURE).home
    (home / "loanwatch.toml").write_text(SETTINGS)
    return load_settings(home, environ={})


@pytest.fixture(scope="module")
def provisions_url(provisions_home):
    with served(provisions_home) as url:
        yield url


def heatmap(page, key: str) -> dict:
    """A heat map once drawn: its title (without the <b> Streamlit adds), rows, columns and cells."""
    page.wait_for_function("key => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`); "
                           "return g && g.data && g.data[0].z; }", arg=key)
    return page.evaluate("""key => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`);
        return {title: g.layout.title.text.replace(/<[^>]+>/g, ''), x: Array.from(g.data[0].x), y: Array.from(g.data[0].y),
                z: Array.from(g.data[0].z).map(r => Array.from(r)), type: g.data[0].type}; }""", key)


def test_the_provisions_page_shows_the_figures_by_hand(browser, provisions_url):
    with browsing(browser, 1280, 800) as page:
        page.context.add_init_script(RECORD_DRAWN_TEXT)
        open_page(page, f"{provisions_url}/provisions")
        expect(page.get_by_role("heading", name="Expected credit loss and coverage by stage")).to_be_visible()
        # the stage table as drawn: money with its currency and separators, coverage as a percentage
        drawn_text(page, "Expected credit loss (USD)", "Principal outstanding (USD)", "Coverage", "460.34", "1,202.89",
                   "25.6 %", "31.7 %", "(all)")
        # what the figures rest on, under the table
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="LGD 0.700000")).to_contain_text(
            "LGD 0.700000 = 1 − recoveries 450.00 / written off 1,500.00")
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="method ifrs9")).to_have_count(1)
        # by product: bnpl L3, cash L2, installment L1 + L8 + L9
        expect_series(page, "Expected credit loss", [120.0, 420.0, 662.89])
        expect_series(page, "Coverage", [0.3, 0.7, 0.236745])
        matrix = heatmap(page, "transition-matrix")
        assert matrix["type"] == "heatmap" and matrix["title"].startswith("Transition matrix, from 3 months")
        assert matrix["y"] == list(ORDER) and matrix["x"] == list(ORDER)
        assert [v for row in matrix["z"] for v in row] == [float(p) for _, _, p, _ in MATRIX]
        # the forecast: a stacked area per state, its shares by month
        for i, state in enumerate(ORDER):
            expect_series(page, state, [float(FORECAST[m][i][0]) for m in FORECAST])
        stacked = page.evaluate("""() => [...document.querySelectorAll('.st-key-chart-forecast .js-plotly-plot')]
            .flatMap(g => g.data.map(t => t.stackgroup))""")
        assert stacked == ["book"] * 6
        # the back-test: the (all) error of February, March, April
        expect_series(page, "share in the wrong state (all)", [0.47619, 0.513544, 0.490821])
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="3 months to test")).to_contain_text(
            "3 months to test, fewer than the 6 of [provisions] backtest_months")
        run_done(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.errors == []
        shot(page, "provisions")


def test_the_html_report_has_the_provisions_section_offline(browser, provisions_home, tmp_path):
    out = tmp_path / "report.html"
    assert cli("report", "html", "--out", str(out), home=provisions_home.home).exit_code == 0
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        charts = ["provisions-by-product", "coverage-by-product", "transition-matrix", "forecast", "forecast-error"]
        page.wait_for_function("ids => ids.every(id => { const g = document.getElementById(id); return g && g._fullLayout; })",
                               arg=charts)
        assert page.evaluate("() => Array.from(document.getElementById('forecast-error').data[0].y)") == [
            0.47619, 0.513544, 0.490821]
        text = page.inner_text("body")
        assert "Provisions (expected credit loss)" in text and "1,202.89" in text and "LGD 0.700000" in text
        assert errors == []
        shot(page, "html-provisions")
    finally:
        context.close()
