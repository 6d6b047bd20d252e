"""`loanwatch docs`: dbt's documentation site, one file that names every mart and opens offline."""

from __future__ import annotations

import pytest

from loanwatch.transform import PROJECT_DIR
from tests.conftest import cli
from tests.e2e.conftest import WAIT, shot

pytestmark = pytest.mark.e2e


def test_docs_name_every_mart_and_open_with_no_network(browser, golden, tmp_path):
    result = cli("docs", "--out", tmp_path / "site", home=golden.home)
    assert result.exit_code == 0, result.stderr
    index = tmp_path / "site" / "index.html"
    marts = sorted(p.stem for p in (PROJECT_DIR / "models" / "marts").glob("*.sql"))
    assert {"fct_calls", "fct_loan_states", "dim_loans"} <= set(marts)

    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(index.as_uri())
        page.get_by_text("fct_loan_states").first.wait_for(state="attached")
        # every mart has its page, with its columns
        for mart in marts:
            page.goto(index.as_uri() + f"#!/model/model.loanwatch.{mart}")
            page.locator("h1", has_text=mart).first.wait_for()
        page.goto(index.as_uri() + "#!/model/model.loanwatch.fct_calls")
        page.get_by_text("is_cured_7d").first.wait_for()
        assert [u for u in requests if not u.startswith(("file://", "data:", "blob:"))] == []
        assert errors == []
        shot(page, "docs-fct-calls")
    finally:
        context.close()


def test_docs_before_any_build_say_what_to_do(tmp_path):
    result = cli("docs", "--out", tmp_path / "site", home=tmp_path / "home")
    assert result.exit_code == 1
    assert "loanwatch build" in result.stderr
