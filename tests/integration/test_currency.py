"""A portfolio with loans in two currencies: money is never added across currencies.

The fixture (`two_currencies`, tests/conftest.py): the ten golden loans in USD (no currency given:
[warehouse] default_currency) and two loans in MXN, neither paid. X2's issue makes the data date
2024-07-10, inside July (a partial month):
- X1: 2000 MXN issued 2024-05-15, two monthly instalments; the first, due 06-15, is unpaid: DPD 25.
- X2: 1000 MXN issued 2024-07-10; its first instalment is due 08-10: current.
So in MXN at 07-10: 2 loans issued, 2 active, 1 overdue (share 50.0 %), principal 3,000.00, PAR30 0.
In USD: 9 loans issued (L09 was cancelled); active L03 300 (DPD 60 at 06-30, 70 now), L04 500 (81, now
91) and L10 400 (first due 07-20, current); principal 1,200.00, PAR30 800 / 1200, NPL (DPD > 90) L04's
500 / 1200.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli

pytestmark = pytest.mark.integration


def summary(home, *args):
    result = cli("report", "summary", "-f", "json", *args, home=home)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)[0], result.stderr


def test_the_default_currency_holds_the_most_principal_and_says_what_is_left_out(two_currencies):
    """No [reports] currency: the currency holding the most principal outstanding, MXN's 3,000.00
    against USD's 1,200.00 (though USD has more loans, 9 against 2, and is [warehouse] default_currency)."""
    mxn, warning = summary(two_currencies.home)
    assert (mxn["loans"], mxn["principal_outstanding"]) == (2, 3000.0)
    assert "money is shown in MXN only: loans in USD (9 loans) are left out" in warning
    assert "--currency USD" in warning


def test_usd_on_request_leaves_mxn_out_and_says_so(two_currencies):
    usd, warning = summary(two_currencies.home, "--currency", "USD")
    assert (usd["loans"], usd["active"], usd["overdue"], usd["principal_outstanding"]) == (9, 3, 2, 1200.0)
    assert (usd["as_of"], usd["par30"], usd["npl"]) == ("2024-07-10", 0.666667, 0.416667)
    assert "money is shown in USD only: loans in MXN (2 loans) are left out" in warning
    assert "--currency MXN" in warning
    monthly = cli("report", "overdue-monthly", "-f", "csv", home=two_currencies.home)
    assert "MXN" in monthly.stderr  # the same default in every report


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
    assert "2,000.00" in late and "66.7 %" in late  # X1, DPD 25
    assert "2024-07 is partial (data to 2024-07-10)" not in table  # no month in this table
    monthly = cli("report", "overdue-monthly", "--currency", "USD", home=two_currencies.home, env={"COLUMNS": "120"}).stdout
    assert "2024-07 is partial (data to 2024-07-10)" in monthly


def test_the_one_currency_of_a_book_requested_in_lower_case(golden):
    """A book all in USD asked for `--currency usd`: its figures, not the zeros of loans in "usd"."""
    usd, warning = summary(golden.home, "--currency", "usd")
    assert (usd["loans"], usd["principal_outstanding"]) == (9, 1200.0) and warning == ""


def test_the_reporting_currency_is_a_setting(two_currencies):
    result = cli("report", "summary", "-f", "json", home=two_currencies.home, env={"LOANWATCH_REPORTS__CURRENCY": "usd"})
    assert json.loads(result.stdout)[0]["principal_outstanding"] == 1200.0


def test_a_currency_no_loan_has_is_a_usage_error(two_currencies):
    result = cli("report", "summary", "--currency", "EUR", home=two_currencies.home)
    assert result.exit_code == 2
    assert "--currency EUR: no loan is in it; the loans' currencies: MXN, USD" in result.stderr  # most principal first


def test_the_html_report_is_in_one_currency(two_currencies, tmp_path):
    out = tmp_path / "r.html"
    assert cli("report", "html", "--out", out, "--currency", "MXN", home=two_currencies.home).exit_code == 0
    text = out.read_text()
    assert "Principal outstanding (MXN)" in text and "3,000.00" in text and "left out" in text
