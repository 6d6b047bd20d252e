"""What a committee sees: formatted KPIs equal to the CLI's figures and never cut at 1280 px, the
partial month marked, a projection labelled, one currency at a time, the vintage triangle, and a
screenshot of every page at 1280×800 and 1920×1080 (test-artifacts/screens/).

The warehouse is `two_currencies` (tests/conftest.py; figures in tests/integration/test_currency.py):
the golden USD loans and two MXN loans, data date 2024-07-10, reported in USD (`[reports] currency`;
unset, the currency holding the most principal outstanding would be MXN's, test_currency.py), the
currency of the hand-computed figures below.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from loanwatch.config import load_settings
from loanwatch.output import shown_value
from loanwatch.reports import registry
from tests.conftest import cli, copy_home
from tests.e2e.conftest import ARTIFACTS, browsing, served
from tests.e2e.test_dashboard import expect_cards, open_page, run_done

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def usd_home(two_currencies, tmp_path_factory):
    """two_currencies, with `[reports] currency = "USD"` in its loanwatch.toml (the dashboard's and
    the CLI's setting alike)."""
    home = copy_home(two_currencies, tmp_path_factory.mktemp("committee") / "home").home
    (home / "loanwatch.toml").write_text('[reports]\ncurrency = "USD"\n')
    return load_settings(home, environ={})


@pytest.fixture(scope="module")
def committee_url(usd_home):
    with served(usd_home) as url:
        yield url


def figures(page, drawn: str, subtitled: str = "") -> list[dict]:
    """The page's Plotly figures, once one whose title holds `drawn` (and whose subtitle holds
    `subtitled`) is drawn (they draw one by one, and after a change the old one stays until the
    new one replaces it)."""
    page.wait_for_function(
        """([drawn, subtitled]) => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.layout && g.layout.title
               && g.layout.title.text.includes(drawn)
               && ((g.layout.title.subtitle && g.layout.title.subtitle.text) || '').includes(subtitled))""",
        arg=[drawn, subtitled])
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
        traces: (g.data || []).map(t => ({type: t.type || 'scatter', name: t.name, y: t.y})),
        title: g.layout.title && g.layout.title.text.replace(/<[^>]+>/g, ''),  // Streamlit adds <b>
        subtitle: g.layout.title && g.layout.title.subtitle && g.layout.title.subtitle.text,
        annotations: (g.layout.annotations || []).map(a => a.text),
        shapes: (g.layout.shapes || []).length}))""")


def test_kpis_are_the_cli_figures_formatted_and_fit_at_1280(browser, committee_url, usd_home):
    with browsing(browser, 1280, 800) as page:
        open_page(page, committee_url)
        summary = registry.get("summary")
        cli_row = json.loads(cli("report", "summary", "-f", "json", home=usd_home.home).stdout)[0]
        expected = {}
        for name in registry.KPIS:
            column = summary.column(name)
            title = column.title + (" (USD)" if column.kind == "money" else "")
            expected[title] = shown_value(column.kind, cli_row[name])
        expect_cards(page, expected)
        # and by hand (test_currency.py): L03 300, L04 500 (DPD 91), L10 400
        assert expected["Principal outstanding (USD)"] == "1,200.00" and expected["NPL (PAR90)"] == "41.7 %"
        cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMetricValue]')]
            .flatMap(el => [el, ...el.querySelectorAll('*')])
            .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.innerText)""")
        assert cut == []
        assert page.errors == []


def test_the_partial_month_is_marked_and_skipped_by_the_roll_rate_month(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, committee_url)
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="is a partial month")).to_contain_text(
            "2024-07 is a partial month: its figures cover 2024-07-01 to 2024-07-10")
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
        expect(page.get_by_test_id("stAlert").filter(has_text="Projection: as of 2024-08-31")).to_contain_text(
            "after the data date 2024-07-10")
        figures(page, "Overdue share", "as of 2024-08-31 (projection)")
        assert page.errors == []


def test_money_is_shown_one_currency_at_a_time(browser, committee_url):
    with browsing(browser) as page:
        open_page(page, committee_url)
        expect(page.get_by_test_id("stAlert").filter(has_text="are left out")).to_contain_text(
            "Money is shown in USD only: loans in MXN (2 loans) are left out")
        page.get_by_label("Currency").click()  # Streamlit's selectbox: open it, then pick
        page.get_by_role("option", name="MXN (2 loans)").click()
        cards = page.get_by_test_id("stMetric")
        expect(cards.filter(has_text="Principal outstanding (MXN)")).to_contain_text("3,000.00")
        expect(cards.filter(has_text="Overdue share")).to_contain_text("50.0 %")
        expect(page.get_by_test_id("stAlert").filter(has_text="are left out")).to_contain_text("USD (9 loans) are left out")


def test_lookup_of_loans_in_two_currencies_puts_each_amount_beside_its_currency(browser, committee_url):
    """Client C1 has L01 and L05 in USD, X1 and X2 in MXN: the matches show a currency column (no one
    currency in the amount's title); the chosen loan's tables give its own currency in their titles."""
    with browsing(browser, 1280, 800) as page:
        open_page(page, f"{committee_url}/lookup")
        box = page.get_by_label("Loan id, client id or client name")
        box.fill("C1")
        box.press("Enter")
        tables = page.get_by_test_id("stDataFrame")
        expect(tables.first.locator("th")).to_contain_text(["Loan", "Client", "Name", "Product", "Amount", "Currency"])
        expect(tables.first.locator("tbody tr td:nth-child(6)")).to_have_text(["MXN", "MXN", "USD", "USD"])
        expect(page.get_by_role("heading", name="Loan versions", exact=True)).to_be_visible()
        expect(tables.nth(1).locator("th").filter(has_text="Amount")).to_have_text(["Amount (MXN)"])  # X2, the newest
        assert page.errors == []


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
            expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text("Data date 2024-07-10")
            for report in registry.on_page(path):
                for chart in report.charts:
                    # (Plotly draws after the script has run: on a loaded machine, seconds later)
                    expect(page.locator(f".st-key-chart-{chart.key} .js-plotly-plot"), chart.key).to_have_count(1)
                if not report.charts and report.key != "summary":
                    expect(page.get_by_text(report.title, exact=True).first, report.key).to_be_visible()
            run_done(page)
            assert page.get_by_test_id("stException").count() == 0, path
            assert page.get_by_text("Page not found").count() == 0, path
            page.screenshot(path=str(out / f"{path}.png"), full_page=True)
        assert page.errors == []
        outside = [u for u in page.requests
                   if not re.match(r"^(http://127\.0\.0\.1:\d+/|ws://127\.0\.0\.1:\d+/|data:|blob:|about:)", u)]
        assert outside == [], outside
