"""Recoveries and the recovery rate by write-off cohort (METRICS §5), by hand, on the golden
provisions book (tests/golden/provisions/, described in test_provisions.py), through the CLI.

The book's two write-offs, both in March 2024 (one cohort, 2024-03):
  L4 cash 1000, written off 03-05 with 1000.00 on the book the day before; recoveries R05 300.00 on
     03-20 and R06 100.00 on 04-20.
  L5 cash 500, written off 03-28 with 500.00; a recovery R07 150.00 on 04-15.
The data date is 2024-04-30.

`recoveries` at the data date: 2 loans, 1500.00 written off, 300 + 100 + 150 = 550.00 recovered,
rate 550/1500 = 0.3666… → 0.366667; (all) the same.
As of 04-15: R06 (04-20) is after it: 450.00, 0.300000. As of 04-14: R07 (04-15) too: 300.00,
0.200000. As of 03-27: L5 (03-28) is not written off yet: 1 loan, 1000.00, 300.00, 0.300000. As of
03-04: nothing written off, no rows.
`--min-amount 600`: L4 alone (L5's amount is 500): 1000.00, 400.00, 0.400000.

`recoveries --period month` at the data date, cohort 2024-03:
  2024-03 (0 months since): R05 300.00 in the month, 300.00 to date, 0.200000
  2024-04 (1): R07 150 + R06 100 = 250.00, 550.00, 0.366667
and (all) per month the same (one cohort). As of 04-15: April 150.00, 450.00, 0.300000.
As of 2024-06-30 (a projection): the months end at the data date's, April.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import cli

COHORT_HEADER = "cohort,loans,written_off_amount,recovered,recovery_rate"
MONTH_HEADER = "cohort,month,months_since_write_off,loans,written_off_amount,recovered_in_month,recovered,recovery_rate"


def report(home, *args, code: int = 0, env: dict[str, str] | None = None):
    result = cli("report", "recoveries", *args, home=home, env=env)
    assert result.exit_code == code, result.stderr
    return result


def csv(home, *args) -> list[str]:
    return report(home, *args, "-f", "csv").stdout.splitlines()


def test_recoveries_by_cohort_by_hand(provisions_book):
    home = provisions_book.home
    assert csv(home) == [COHORT_HEADER, "2024-03,2,1500.00,550.00,0.366667", "(all),2,1500.00,550.00,0.366667"]
    assert csv(home, "--period", "cohort", "--as-of", "2024-04-30") == csv(home)


@pytest.mark.parametrize(("as_of", "rows"), [
    ("2024-04-20", ["2024-03,2,1500.00,550.00,0.366667"]),  # R06 paid that day: counted (on or before)
    ("2024-04-15", ["2024-03,2,1500.00,450.00,0.300000"]),  # R06 (04-20) after it: not counted
    ("2024-04-14", ["2024-03,2,1500.00,300.00,0.200000"]),  # R07 (04-15) neither
    ("2024-03-28", ["2024-03,2,1500.00,300.00,0.200000"]),  # L5 written off that day
    ("2024-03-27", ["2024-03,1,1000.00,300.00,0.300000"]),  # L5 not yet
    ("2024-03-19", ["2024-03,1,1000.00,0.00,0.000000"]),    # L4 written off, nothing recovered yet
])
def test_recoveries_to_the_as_of_date(provisions_book, as_of, rows):
    got = csv(provisions_book.home, "--as-of", as_of)
    assert got == [COHORT_HEADER, *rows, "(all)," + rows[0].split(",", 1)[1]]


def test_nothing_written_off_yet_is_no_rows(provisions_book):
    home = provisions_book.home
    assert csv(home, "--as-of", "2024-03-04") == [COHORT_HEADER]
    assert csv(home, "--as-of", "2024-03-04", "--period", "month") == [MONTH_HEADER]


def test_the_loan_filters_choose_the_loans(provisions_book):
    home = provisions_book.home
    assert csv(home, "--min-amount", "600") == [COHORT_HEADER, "2024-03,1,1000.00,400.00,0.400000",
                                                "(all),1,1000.00,400.00,0.400000"]
    assert csv(home, "--product", "cash") == csv(home)
    assert csv(home, "--product", "bnpl") == [COHORT_HEADER]  # bnpl loans were never written off


def test_recoveries_by_cohort_and_month_by_hand(provisions_book):
    home = provisions_book.home
    assert csv(home, "--period", "month") == [
        MONTH_HEADER,
        "2024-03,2024-03,0,2,1500.00,300.00,300.00,0.200000",
        "2024-03,2024-04,1,2,1500.00,250.00,550.00,0.366667",
        "(all),2024-03,,2,1500.00,300.00,300.00,0.200000",
        "(all),2024-04,,2,1500.00,250.00,550.00,0.366667"]
    # as of 04-15: R06 of 04-20 is not counted; the last row of the cohort is its row of --period cohort
    assert csv(home, "--period", "month", "--as-of", "2024-04-15")[1:3] == [
        "2024-03,2024-03,0,2,1500.00,300.00,300.00,0.200000",
        "2024-03,2024-04,1,2,1500.00,150.00,450.00,0.300000"]
    # as of 03-27: only L4 and only March
    assert csv(home, "--period", "month", "--as-of", "2024-03-27") == [
        MONTH_HEADER, "2024-03,2024-03,0,1,1000.00,300.00,300.00,0.300000", "(all),2024-03,,1,1000.00,300.00,300.00,0.300000"]
    # a projection: the months end at the data date's, and the line under the figures says so
    result = report(home, "--period", "month", "--as-of", "2024-06-30", "-f", "csv")
    assert result.stdout.splitlines() == csv(home, "--period", "month")
    assert "note: the months end at the data date 2024-04-30: no recovery after it is known" in result.stderr


def test_for_people_and_a_period_it_does_not_have(provisions_book):
    home = provisions_book.home
    text = " ".join(report(home, env={"COLUMNS": "200"}).stdout.split())
    assert "Recovered to date (USD)" in text and "1,500.00" in text and "36.7 %" in text
    assert "as of 2024-04-30 · money in USD · all loans" in text
    text = " ".join(report(home, "--period", "month", env={"COLUMNS": "250"}).stdout.split())
    assert "Recovered in the month (USD)" in text and "20.0 %" in text
    result = report(home, "--period", "week", code=2)
    assert "--period 'week': use one of cohort, month" in result.stderr
    assert "--period" in cli("report", "recoveries", "--help").stdout


def test_the_html_report_has_the_recoveries_sections(provisions_book, tmp_path):
    """`report html`: both sections on the Provisions page's part of the report, after the
    provisions, with their figures by hand and the recovery curves."""
    pytest.importorskip("plotly")
    out = tmp_path / "r.html"
    assert cli("report", "html", "--out", str(out), home=provisions_book.home).exit_code == 0
    text = out.read_text()
    sections = re.findall(r"<h2>([^<]+)</h2>", text)
    assert sections.index("Recoveries") > sections.index("Provisions (expected credit loss)")
    assert sections.index("Recoveries by month") == sections.index("Recoveries") + 1
    cohort = text[text.index("<h2>Recoveries</h2>"):text.index("<h2>Recoveries by month</h2>")]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", cohort) == ["2024-03", "2", "1,500.00", "550.00", "36.7 %",
                                                            "(all)", "2", "1,500.00", "550.00", "36.7 %"]
    assert "<th>Written off (USD)</th>" in cohort and "as of 2024-04-30 · money in USD · all loans" in cohort
    by_month = text[text.index("<h2>Recoveries by month</h2>"):]
    by_month = by_month[:by_month.index("<h2>", 4)] if "<h2>" in by_month[4:] else by_month
    assert 'id="recovery-curves"' in by_month and "<h3>Recovery curves by write-off cohort</h3>" in by_month
    assert re.findall(r"<td[^>]*>([^<]*)</td>", by_month)[:8] == [
        "2024-03", "2024-03", "0", "2", "1,500.00", "300.00", "300.00", "20.0 %"]
