"""Browser tests: the dashboard served on a free port against the golden warehouse, driven by
Playwright in Debian's chromium. Screenshots go to test-artifacts/.

Waiting: a test waits for the element or figure it reads (Playwright's expect, wait_for_selector,
wait_for_function on that thing), never for a time. On a loaded machine a page can take far longer
than on an idle one, so every wait may last up to WAIT; it ends as soon as the thing is there.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from loanwatch.dashboard import start, wait_until_ready

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# As root, in a closed network: no sandbox, and no background traffic to Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# How long any wait may last, in milliseconds (Playwright's unit): generous, for a busy machine.
WAIT = 180_000
expect.set_options(timeout=WAIT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def stop(proc) -> None:
    """End a server this test started: terminated, killed if it does not end in a minute."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ready(url: str) -> bool:
    """The server answers its health check (waiting up to WAIT)."""
    return wait_until_ready(url, timeout=WAIT / 1000)


@contextlib.contextmanager
def served(settings) -> Iterator[str]:
    """The dashboard of a warehouse, served on a free port for the duration: its URL."""
    port = _free_port()
    proc = start(settings, port)
    url = f"http://127.0.0.1:{port}"
    try:
        if not ready(url):
            pytest.fail("the dashboard did not start")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def dashboard_url(golden):
    with served(golden) as url:
        yield url


@pytest.fixture(scope="session")
def partial_month_home(tmp_path_factory):
    """A generated portfolio of 300 clients (seed 7) whose data date, 2024-12-11, falls inside a
    month, with loans up to 120,000.00 and regions in Mexico, Russia and the United States."""
    import datetime as dt

    from loanwatch.generate.portfolio import generate
    from loanwatch.generate.write import write_portfolio
    from tests.conftest import build_home

    raw = tmp_path_factory.mktemp("partial_raw")
    write_portfolio(generate(300, seed=7, start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 10)), raw)
    return build_home(tmp_path_factory.mktemp("partial_home"), raw)


@pytest.fixture(scope="session")
def partial_month_url(partial_month_home):
    with served(partial_month_home) as url:
        yield url


@contextlib.contextmanager
def browsing(browser, width: int = 1400, height: int = 1000, **options):
    """A page at this viewport whose waits last up to WAIT, recording its errors and requests
    (page.errors, page.requests); closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    context.set_default_timeout(WAIT)
    pg = context.new_page()
    pg.errors, pg.requests = [], []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture()
def page(browser, dashboard_url):
    with browsing(browser, accept_downloads=True) as pg:
        yield pg


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
