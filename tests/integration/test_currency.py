"""A portfolio with loans in two currencies: money is never added across currencies.

The ten golden loans are in USD (no currency given: [warehouse] default_currency). Two loans in MXN
join them, neither paid, with the golden data date 2024-06-30:
- X1: 2000 MXN issued 2024-05-15, two monthly instalments; the first, due 06-15, is unpaid: DPD 15.
- X2: 1000 MXN issued 2024-06-01; its first instalment is due 07-01: current.
So in MXN at 06-30: 2 loans issued, 2 active, 1 overdue (share 50.0 %), principal 3,000.00, PAR30 0.
In USD the figures are the golden ones: 9 loans issued (L09 was cancelled), active L03, L04, L10, principal
1,200.00.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import GOLDEN, build_home, cli

pytestmark = pytest.mark.integration

MXN_LOANS = [
    {"loan_id": "X1", "client_id": "C1", "product": "cash", "amount": 2000, "currency": "MXN", "issue_date": "2024-05-15",
     "term_months": 2, "status": "active", "updated_at": "2024-05-15T10:00:00Z"},
    {"loan_id": "X2", "client_id": "C1", "product": "cash", "amount": 1000, "currency": "MXN", "issue_date": "2024-06-01",
     "term_months": 2, "status": "active", "updated_at": "2024-06-01T10:00:00Z"},
]


@pytest.fixture(scope="module")
def two_currencies(tmp_path_factory):
    extra = tmp_path_factory.mktemp("mxn")
    (extra / "loans_mxn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MXN_LOANS))
    return build_home(tmp_path_factory.mktemp("two_currencies"), GOLDEN, extra)


def summary(home, *args):
    result = cli("report", "summary", "-f", "json", *args, home=home)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)[0], result.stderr


def test_the_default_currency_leaves_the_other_out_and_says_so(two_currencies):
    usd, warning = summary(two_currencies.home)
    assert (usd["loans"], usd["active"], usd["overdue"], usd["principal_outstanding"]) == (9, 3, 2, 1200.0)
    assert "money is shown in USD only: loans in MXN (2 loans) are left out" in warning
    assert "--currency MXN" in warning


def test_another_currency_on_request(two_currencies):
    mxn, warning = summary(two_currencies.home, "--currency", "mxn")
    assert (mxn["loans"], mxn["active"], mxn["overdue"]) == (2, 2, 1)
    assert (mxn["overdue_share"], mxn["principal_outstanding"], mxn["par30"]) == (0.5, 3000.0, 0.0)
    assert "USD (9 loans) are left out" in warning
    table = cli("report", "buckets", "--currency", "MXN", home=two_currencies.home, env={"COLUMNS": "120"}).stdout
    assert "Principal outstanding (MXN)" in table and "money in MXN" in table
    current = next(line for line in table.splitlines() if "current" in line)
    late = next(line for line in table.splitlines() if "1-30" in line)
    assert "1,000.00" in current and "33.3 %" in current  # X2
    assert "2,000.00" in late and "66.7 %" in late  # X1, DPD 15


def test_the_reporting_currency_is_a_setting(two_currencies):
    result = cli("report", "summary", "-f", "json", home=two_currencies.home, env={"LOANWATCH_REPORTS__CURRENCY": "MXN"})
    assert json.loads(result.stdout)[0]["principal_outstanding"] == 3000.0


def test_a_currency_no_loan_has_is_a_usage_error(two_currencies):
    result = cli("report", "summary", "--currency", "EUR", home=two_currencies.home)
    assert result.exit_code == 2
    assert "--currency EUR: no loan is in it; the loans' currencies: USD, MXN" in result.stderr


def test_the_html_report_is_in_one_currency(two_currencies, tmp_path):
    out = tmp_path / "r.html"
    assert cli("report", "html", "--out", out, "--currency", "MXN", home=two_currencies.home).exit_code == 0
    text = out.read_text()
    assert "Principal outstanding (MXN)" in text and "3,000.00" in text and "left out" in text
