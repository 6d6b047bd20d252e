"""The dashboard in a real browser: KPIs, the amount filter, every page, offline, escaping."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shot
from tests.golden.test_ten_loans import EXPECTED, EXPECTED_500_1000

pytestmark = pytest.mark.e2e



def settle(page):
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60000)
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')", timeout=60000)


def open_page(page, url: str):
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=30000)
    page.wait_for_selector("[data-testid='stCaptionContainer']", timeout=30000)  # the data-date line
    settle(page)


def kpis(page) -> dict[str, str]:
    page.wait_for_selector("[data-testid='stMetric']", timeout=30000)
    labels = page.locator("[data-testid='stMetricLabel']").all_inner_texts()
    values = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    return dict(zip([k.strip() for k in labels], [v.strip() for v in values]))


def type_amount_bounds(page, low: str, high: str):
    """Type the sidebar's exact amount inputs, min then max, each confirmed with Enter."""
    for label, value in (("min amount", low), ("max amount", high)):
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        settle(page)


def chart_series(page, name: str) -> list[float]:
    """The y values of a trace of the overdue-share chart, read from the plotly graph."""
    page.wait_for_function(
        """name => [...document.querySelectorAll('.js-plotly-plot')]
                     .some(el => el.data && el.data.some(t => t.name === name))""", arg=name, timeout=30000)
    return page.evaluate(
        """name => { const g = [...document.querySelectorAll('.js-plotly-plot')]
                       .find(el => el.data && el.data.some(t => t.name === name));
                     return g ? g.data.find(t => t.name === name).y : null; }""",
        name,
    )


def test_overview_kpis_and_headline_chart(page, dashboard_url):
    open_page(page, dashboard_url)
    # hand-computed at 2024-06-30: L03 300 (DPD 60), L04 500 (DPD 81), L10 400 (current)
    assert kpis(page) == {"Active loans": "3", "Principal outstanding (USD)": "1,200.00", "Overdue share": "66.7 %",
                          "PAR30": "66.7 %", "NPL (PAR90)": "0.0 %"}
    assert chart_series(page, "overdue share (loans)") == [float(r[3]) for r in EXPECTED]
    assert "Data date 2024-06-30" in page.locator("[data-testid='stCaptionContainer']").first.inner_text()
    shot(page, "overview")


def test_amount_filter_recomputes_chart_and_kpis(page, dashboard_url):
    open_page(page, dashboard_url)
    kpis(page)
    type_amount_bounds(page, "500", "1000")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].map(e => e.innerText).includes('800.00')",
        timeout=30000,
    )
    # 500..1000 keeps L03 (300 left, DPD 60) and L04 (500, DPD 81) on the book at 06-30
    assert kpis(page) == {"Active loans": "2", "Principal outstanding (USD)": "800.00", "Overdue share": "100.0 %",
                          "PAR30": "100.0 %", "NPL (PAR90)": "0.0 %"}
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.data && g.data[0].y[1] === 0.2)",
        timeout=30000,
    )
    assert chart_series(page, "overdue share (loans)") == [float(r[3]) for r in EXPECTED_500_1000]
    assert chart_series(page, "overdue share (principal)") == [float(r[6]) for r in EXPECTED_500_1000]
    shot(page, "overview-filtered")


def test_amount_bounds_the_wrong_way_round_say_so(page, dashboard_url):
    open_page(page, dashboard_url)
    kpis(page)
    type_amount_bounds(page, "1000", "500")
    page.wait_for_selector("[data-testid='stAlert']", timeout=30000)
    assert "No loan can match: the amount range is empty: from 1000.0 to 500.0." in \
        page.locator("[data-testid='stAlert']").first.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    # no zeros that look like figures, and no empty chart with a -100 % to 400 % axis
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert page.locator(".js-plotly-plot").count() == 0


# Every page, offline, with every chart the registry puts on it, at 1280 and 1920 px:
# test_dashboard_committee.py (on a warehouse with two currencies and a partial month).


def test_geography_map_draws_regions_from_shipped_outlines(page, dashboard_url):
    open_page(page, f"{dashboard_url}/geography")
    page.wait_for_selector(".js-plotly-plot")
    texts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(g => (g.data || []).flatMap(t => t.text || []))""")
    joined = " ".join(str(t) for t in texts)
    assert "Татарстан" in joined and "California" in joined


def test_lookup_shows_a_loan_and_keeps_names_as_text(page, dashboard_url):
    open_page(page, f"{dashboard_url}/lookup")
    box = page.get_by_label("Loan id, client id or client name")
    box.fill("Ömer")
    box.press("Enter")
    page.wait_for_selector("text=Dpd history", timeout=30000)
    settle(page)
    assert page.locator("b", has_text="Ömer").count() == 0  # <b>Ömer</b> is data, not markup
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "lookup-omer")


def test_a_new_snapshot_shows_without_a_restart(browser, tmp_path):
    """Publishing a build while the dashboard runs: the next page load shows the new data date."""
    import json

    from loanwatch.dashboard import start, wait_until_ready
    from tests.conftest import GOLDEN, build_home, cli
    from tests.e2e.conftest import _free_port

    settings = build_home(tmp_path / "home", GOLDEN)
    port = _free_port()
    proc = start(settings, port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ready(url)
        context = browser.new_context()
        page = context.new_page()
        open_page(page, url)
        assert "Data date 2024-06-30" in page.locator("[data-testid='stCaptionContainer']").first.inner_text()
        # a build runs and publishes while the dashboard has the old snapshot open
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "calls_2.jsonl").write_text(json.dumps(
            {"call_id": "K2", "client_id": "C4", "loan_id": "L04", "called_at": "2024-07-15T10:00:00Z", "outcome": "busy"}) + "\n")
        assert cli("ingest", str(extra), home=settings.home).exit_code == 0
        assert cli("build", home=settings.home).exit_code == 0
        open_page(page, url)
        assert "Data date 2024-07-15" in page.locator("[data-testid='stCaptionContainer']").first.inner_text()
        # at 07-15: L03 DPD 75, L04 96 (> 90), L10 current: NPL = 500 / 1200
        assert kpis(page)["NPL (PAR90)"] == "41.7 %"
        context.close()
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_damaged_snapshot_says_what_to_do(browser, golden, tmp_path):
    """A serving file cut short (a full disk while copying it by hand, say): the page names it and
    says to build again, with no exception (issue: hardening, 9)."""
    import shutil

    from loanwatch.dashboard import start, wait_until_ready
    from tests.e2e.conftest import _free_port

    home = tmp_path / "home"
    shutil.copytree(golden.home, home, ignore=shutil.ignore_patterns("*.lock"))
    (home / "serving.duckdb").write_bytes(b"\0" * 4096)
    from loanwatch.config import load_settings

    port = _free_port()
    proc = start(load_settings(home, environ={}), port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ready(url)
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("text=is damaged or cut short", timeout=60000)
        assert "run `loanwatch build`" in page.content() or "loanwatch build" in page.inner_text("body")
        assert page.locator("[data-testid='stException']").count() == 0
        context.close()
    finally:
        proc.terminate()
        proc.wait(20)


def test_call_centre_and_merchants_pages_draw_their_charts(page, dashboard_url):
    open_page(page, f"{dashboard_url}/calls")
    for key in ("calls-calls", "calls-connect_rate", "calls-login_rate_48h"):
        assert page.locator(f".st-key-chart-{key} .js-plotly-plot").count() == 1, key
    assert page.get_by_text("Agents", exact=True).count() == 1
    open_page(page, f"{dashboard_url}/merchants")
    page.wait_for_selector(".st-key-chart-merchant-balance .js-plotly-plot", timeout=30000)
    assert page.locator(".st-key-chart-merchant-flows .js-plotly-plot").count() == 1
    assert page.get_by_text("Lowest balances", exact=True).count() == 1
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "merchants-golden")
