"""The HTML report opens in headless Chromium with no network and shows the headline chart."""

from __future__ import annotations

import pytest

from tests.conftest import cli
from tests.e2e.conftest import shot
from tests.golden.test_ten_loans import EXPECTED, EXPECTED_500_1000

pytestmark = pytest.mark.e2e


def _open_offline(browser, path):
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("() => { const g = document.getElementById('overdue-share'); return g && g.data; }",
                           timeout=30000)
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
