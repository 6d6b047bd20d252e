"""The Operations page: the runs of `loanwatch run`, builds, checks and quarantine over time."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from loanwatch.config import load_settings
from tests.conftest import GOLDEN, cli
from tests.e2e.conftest import browsing, served, shot
from tests.e2e.test_dashboard import open_page

pytestmark = pytest.mark.e2e


def _trace(page, key: str, name: str):
    """A trace of a chart, once the chart has drawn it."""
    page.wait_for_function(
        """([key, name]) => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`);
                             return g && g.data && g.data.some(t => t.name === name); }""", arg=[key, name])
    return page.evaluate(
        """([key, name]) => { const g = document.querySelector(`.st-key-chart-${key} .js-plotly-plot`);
                             const t = g && g.data && g.data.find(t => t.name === name);
                             return t ? {x: t.x, y: t.y} : null; }""", [key, name])


def test_operations_page_shows_runs_builds_and_quarantine(browser, tmp_path):
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    for f in GOLDEN.iterdir():
        shutil.copy(f, inbox)
    (inbox / "payments_2.jsonl").write_text(
        json.dumps({"payment_id": "P90", "loan_id": "L01", "paid_at": "2024-07-06T10:00:00Z", "amount": 5}) + "\n"
        + '{"payment_id": "P91", "loan_id": "L01", "paid_at": "not a date", "amount": 5}\n')
    assert cli("run", "--inbox", inbox, home=home).exit_code == 3
    assert cli("run", "--inbox", inbox, home=home).exit_code == 0  # nothing new: no build

    with served(load_settings(home, environ={})) as url, browsing(browser, 1280, 1600, accept_downloads=True) as page:
        open_page(page, f"{url}/operations")
        builds = _trace(page, "builds", "seconds")
        assert builds["x"] == ["1"] and builds["y"][0] > 0
        assert sum(_trace(page, "ingest", "quarantined")["y"]) == 1
        assert sum(_trace(page, "ingest", "accepted")["y"]) == 41  # the golden 40 rows and P90
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV: Runs").click()
        rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
        assert [(r["run_id"], r["status"], r["exit_code"], r["ingest"], r["build"]) for r in rows] == [
            ("2", "nothing_new", "0", "ok", "skipped"), ("1", "quarantined", "3", "quarantined", "ok")]
        assert page.errors == []
        shot(page, "operations")
