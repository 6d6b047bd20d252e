"""What a committee sees: formatted KPIs equal to the CLI's figures and never cut at 1280 px, the
partial month marked, a projection labelled, one currency at a time, the vintage triangle, and a
screenshot of every page at 1280×800 and 1920×1080 (test-artifacts/screens/).

The warehouse is `two_currencies` (tests/conftest.py; figures in tests/integration/test_currency.py):
the golden USD loans and two MXN loans, data date 2024-07-10.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from playwright.sync_api import expect

from loanwatch.output import shown_value
from loanwatch.reports import registry
from tests.conftest import cli
from tests.e2e.conftest import ARTIFACTS, served
from tests.e2e.test_dashboard import kpis, open_page, settle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def committee_url(two_currencies):
    with served(two_currencies) as url:
        yield url


@contextlib.contextmanager
def browsing(browser, width: int = 1400, height: int = 1000):
    """A page at this viewport, recording its errors and requests; closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.errors, page.requests = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    try:
        yield page
    finally:
        context.close()


def figures(page, drawn: str) -> list[dict]:
    """The page's Plotly figures, once one whose title holds `drawn` is drawn (they draw one by one)."""
    page.wait_for_function(
        """drawn => [...document.querySelectorAll('.js-plotly-plot')]
                      .some(g => g.layout && g.layout.title && g.layout.title.text.includes(drawn))""",
        arg=drawn, timeout=30000)
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
        traces: (g.data || []).map(t => ({type: t.type || 'scatter', name: t.name, y: t.y})),
        title: g.layout.title && g.layout.title.text.replace(/<[^>]+>/g, ''),  // Streamlit adds <b>
        subtitle: g.layout.title && g.layout.title.subtitle && g.layout.title.subtitle.text,
        annotations: (g.layout.annotations || []).map(a => a.text),
        shapes: (g.layout.shapes || []).length}))""")


def test_kpis_are_the_cli_figures_formatted_and_fit_at_1280(browser, committee_url, two_currencies):
    with browsing(browser, 1280, 800) as page:
        open_page(page, committee_url)
        cards = kpis(page)
        summary = registry.get("summary")
        cli_row = json.loads(cli("report", "summary", "-f", "json", home=two_currencies.home).stdout)[0]
        expected = {}
        for name in registry.KPIS:
            column = summary.column(name)
            title = column.title + (" (USD)" if column.kind == "money" else "")
            expected[title] = shown_value(column.kind, cli_row[name])
        assert cards == expected
        # and by hand (test_currency.py): L03 300, L04 500 (DPD 91), L10 400
        assert cards["Principal outstanding (USD)"] == "1,200.00" and cards["NPL (PAR90)"] == "41.7 %"
        cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMetricValue]')]
            .flatMap(el => [el, ...el.querySelectorAll('*')])
            .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.innerText)""")
        assert cut == []
        assert page.errors == []


def test_the_partial_month_is_marked_and_skipped_by_the_roll_rate_month(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, committee_url)
        captions = " ".join(page.locator("[data-testid='stCaptionContainer']").all_inner_texts())
        assert "2024-07 is a partial month: its figures cover 2024-07-01 to 2024-07-10" in captions
        overdue = next(f for f in figures(page, "Overdue share") if f["title"] == "Overdue share by month")
        assert overdue["shapes"] == 1 and "partial month (data to 10 Jul)" in overdue["annotations"]
        assert "as of 2024-07-10 · money in USD · all loans · 2024-07 is partial" in overdue["subtitle"]
        open_page(page, f"{committee_url}/delinquency")
        assert any(f["title"] == "Roll rates, 2024-06" for f in figures(page, "Roll rates"))


def test_an_as_of_after_the_data_date_is_labelled_a_projection(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, committee_url)
        # Streamlit's date field has a part per unit: type the month and the day, then leave it
        page.get_by_role("spinbutton", name="month, As of").click()
        page.keyboard.type("08")
        page.get_by_role("spinbutton", name="day, As of").click()
        page.keyboard.type("31")
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Overview").click()  # the field commits when it loses focus
        settle(page)
        page.wait_for_selector("text=Projection: as of 2024-08-31", timeout=30000)
        alerts = " ".join(page.locator("[data-testid='stAlert']").all_inner_texts())
        assert "after the data date 2024-07-10" in alerts
        subtitles = [f["subtitle"] or "" for f in figures(page, "Overdue share")]
        assert any("as of 2024-08-31 (projection)" in s for s in subtitles)
        assert page.errors == []


def test_money_is_shown_one_currency_at_a_time(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, committee_url)
        alerts = " ".join(page.locator("[data-testid='stAlert']").all_inner_texts())
        assert "Money is shown in USD only: loans in MXN (2 loans) are left out" in alerts
        page.get_by_label("Currency").click()  # Streamlit's selectbox: open it, then pick
        page.get_by_role("option", name="MXN (2 loans)").click()
        settle(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].some(e => e.innerText === '3,000.00')",
            timeout=30000)
        cards = kpis(page)
        assert cards["Principal outstanding (MXN)"] == "3,000.00" and cards["Overdue share"] == "50.0 %"
        assert "USD (9 loans) are left out" in " ".join(page.locator("[data-testid='stAlert']").all_inner_texts())


def test_vintages_show_the_triangle_and_a_few_cohorts_in_distinct_colours(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, f"{committee_url}/vintages")
        figures(page, "cohort × months on book")
        shown = figures(page, "chosen cohorts")
        triangle = next(f for f in shown if f["title"].startswith("Vintages: Ever 30+, cohort"))
        assert triangle["traces"][0]["type"] == "heatmap"
        lines = next(f for f in shown if f["title"].startswith("Vintages: Ever 30+, chosen cohorts"))
        assert 1 <= len(lines["traces"]) <= 4
        colours = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(g => g.layout.title.text.includes('chosen cohorts'))
            .flatMap(g => g.data.map(t => t.line.color))""")
        assert len(set(colours)) == len(colours)


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_every_page_at_both_sizes_opens_offline_with_its_charts(browser, committee_url, size):
    """Each page opens without an error, requests nothing outside the machine, and shows every
    chart the registry puts on it; its screenshot is saved for people to look at
    (docs/dashboard.md shows them)."""
    width, height = size
    out = ARTIFACTS / "screens" / f"{width}x{height}"
    out.mkdir(parents=True, exist_ok=True)
    with browsing(browser, width, height) as page:
        first = next(iter(registry.PAGES))
        for path in registry.PAGES:
            # the first page is the app's root; /overview would be "Page not found" over it
            open_page(page, committee_url if path == first else f"{committee_url}/{path}")
            assert page.locator("[data-testid='stException']").count() == 0, path
            assert page.get_by_text("Page not found").count() == 0, path
            assert "Data date 2024-07-10" in page.locator("[data-testid='stCaptionContainer']").first.inner_text()
            for report in registry.on_page(path):
                for chart in report.charts:
                    # (Plotly draws after the page settles: on a loaded machine, seconds later)
                    expect(page.locator(f".st-key-chart-{chart.key} .js-plotly-plot"), chart.key).to_have_count(1, timeout=30000)
                if not report.charts and report.key != "summary":
                    assert page.get_by_text(report.title, exact=True).count() >= 1, report.key
            page.screenshot(path=str(out / f"{path}.png"), full_page=True)
        assert page.errors == []
        outside = [u for u in page.requests
                   if not re.match(r"^(http://127\.0\.0\.1:\d+/|ws://127\.0\.0\.1:\d+/|data:|blob:|about:)", u)]
        assert outside == [], outside
