"""Every dashboard page on every kind of warehouse: loans only, calls only, a merchant ledger only,
or nothing at all (the warehouse with all of them is the golden one of test_dashboard.py). A page
without its data says what to load; none raises."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from loanwatch.reports import registry
from tests.conftest import GOLDEN, build_home
from tests.e2e.conftest import WAIT, served, shot
from tests.e2e.test_dashboard import open_page

pytestmark = pytest.mark.e2e

KINDS = {  # kind -> the golden files it holds
    "loans-only": ("clients", "loans", "payments"),
    "calls-only": ("calls",),
    "ledger-only": ("merchants", "merchant_events"),
    "empty": (),
}
LOAN_PAGES = {"overview", "delinquency", "vintages", "portfolio", "geography", "provisions", "lookup"}
NEEDS = {"calls": "No calls yet", "merchants": "No merchant ledger yet", **{p: "No loans yet" for p in LOAN_PAGES}}
HOLDS = {"loans-only": LOAN_PAGES, "calls-only": {"calls"}, "ledger-only": {"merchants"}, "empty": set()}


@pytest.fixture(scope="module", params=list(KINDS))
def kind_url(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    raw = root / "raw"
    raw.mkdir()
    for entity in KINDS[kind]:
        shutil.copy(GOLDEN / f"{entity}.jsonl", raw)
    with served(build_home(root / "home", raw)) as url:
        yield kind, url


def test_every_page_on_every_kind_of_warehouse(browser, kind_url):
    kind, url = kind_url
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT)
    try:
        for path in registry.PAGES:
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            open_page(page, f"{url}/{path}")  # (its run has ended: what it says is on the page)
            assert page.get_by_test_id("stException").count() == 0, (kind, path)
            assert errors == [], (kind, path, errors)
            alerts = " ".join(page.get_by_test_id("stAlert").all_inner_texts())
            if path in NEEDS and path not in HOLDS[kind]:
                assert NEEDS[path] in alerts and "loanwatch ingest" in alerts, (kind, path, alerts)
            else:
                assert "yet: load" not in alerts, (kind, path, alerts)
            if kind == "empty":
                expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text("Data date none")
            shot(page, f"{kind}-{path}")
            page.close()
    finally:
        context.close()
