"""The ten-record test: ten loans whose every figure was computed by hand (METRICS §1-4).

The loans (tests/golden/ten_loans), data date 2024-06-30 (a call that day):
L01 annuity 1000 at 12 %, 3 months, issued 2024-01-31 (due dates clamp: 02-29, 03-31, 04-30).
    r = 0.01, A = round(1000 r / (1 - 1.01^-3), 2) = round(340.0221, 2) = 340.02.
    k=1: interest 10.00, principal 330.02, balance 669.98
    k=2: interest round(6.6998) = 6.70, principal 333.32, balance 336.66
    k=3: interest round(3.3666) = 3.37, principal 336.66 (the balance) -> due 340.03
    Paid on every due date -> closed 2024-04-30.                      (on time, annuity with interest)
L02 600 / 2 months from 2024-01-10: 300 due 02-10 and 03-10; paid 03-05 and 03-20. (late, then paid)
L03 900 / 3 from 2024-02-01: 300 due 03-01, 04-01, 05-01; paid 150 (03-01), 150 (04-10), 300 (05-01).
    Cumulative 300 on 04-10 pays instalment 1; 600 on 05-01 pays instalment 2; 3 never.  (partial)
L04 500 / 1 from 2024-03-10, due 04-10, never paid.                               (never paid)
L05 1000 / 4 from 2024-01-20: 250 due 02-20, 03-20, 04-20, 05-20; paid 250 (02-20), 750 (03-01)
    -> everything paid on 03-01.                                                     (prepaid)
L06 bullet 2000 at 24 % for 2 months from 2024-02-15: one instalment due 04-15, interest
    round(2000 x 0.24 x 2 / 12) = 80.00. Paid 1000 (04-15: 80 interest + 920 principal),
    1080 (05-20) -> closed 05-20.                                                     (bullet)
L07 explicit schedule, 300 due 2024-05-05; P13 300 on 05-05 reversed on 05-08 by P14; P15 300 on
    06-10 -> closed 06-10, and overdue at 05-31 (the reversal voids P13 retroactively). (reversal)
L08 800 / 2 from 2024-01-05: 400 due 02-05 (paid 02-05), 400 due 03-05 never paid;
    a version with status written_off updated 2024-05-20.                          (write-off)
L09 700, cancelled by its latest version: excluded everywhere.                    (cancellation)
L10 400 / 2 from 2024-06-20: first due 07-20.                                  (not yet due)
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

from loanwatch import reports
from tests.conftest import cli

COLUMNS = ["month", "loans_active", "loans_overdue", "overdue_share",
           "principal_outstanding", "principal_overdue", "overdue_amount_share"]

# month: (active, overdue, share, outstanding, overdue principal, amount share)
EXPECTED = [
    # 01-31: L01 1000, L02 600, L05 1000, L08 800 all current
    ("2024-01", 4, 0, "0.000000", "3400.00", "0.00", "0.000000"),
    # 02-29: L01 669.98, L02 600 (overdue since 02-10), L03 900, L05 750, L06 2000, L08 400
    ("2024-02", 6, 1, "0.166667", "5319.98", "600.00", "0.112782"),
    # 03-31: L01 336.66, L03 750 (overdue since 03-01), L04 500, L06 2000, L08 400 (overdue since 03-05)
    ("2024-03", 5, 2, "0.400000", "3986.66", "1150.00", "0.288462"),
    # 04-30: L03 600 (o), L04 500 (o), L06 1080 (o), L07 300, L08 400 (o)
    ("2024-04", 5, 4, "0.800000", "2880.00", "2580.00", "0.895833"),
    # 05-31: L03 300 (o), L04 500 (o), L07 300 (o); L06 closed, L08 written off
    ("2024-05", 3, 3, "1.000000", "1100.00", "1100.00", "1.000000"),
    # 06-30: L03 300 (o), L04 500 (o), L10 400
    ("2024-06", 3, 2, "0.666667", "1200.00", "800.00", "0.666667"),
]

# amount filter 500..1000 keeps L01, L02, L03, L04, L05, L08 (and the cancelled L09)
EXPECTED_500_1000 = [
    ("2024-01", 4, 0, "0.000000", "3400.00", "0.00", "0.000000"),
    ("2024-02", 5, 1, "0.200000", "3319.98", "600.00", "0.180724"),
    ("2024-03", 4, 2, "0.500000", "1986.66", "1150.00", "0.578861"),
    ("2024-04", 3, 3, "1.000000", "1500.00", "1500.00", "1.000000"),
    ("2024-05", 2, 2, "1.000000", "800.00", "800.00", "1.000000"),
    ("2024-06", 2, 2, "1.000000", "800.00", "800.00", "1.000000"),
]

# loan: (state, dpd, bucket, principal outstanding, past due) at 2024-06-30
LOANS_AT_END = {
    "L01": ("closed", 0, None, "0.00", "0.00"),
    "L02": ("closed", 0, None, "0.00", "0.00"),
    "L03": ("overdue", 60, "31-60", "300.00", "300.00"),
    "L04": ("overdue", 81, "61-90", "500.00", "500.00"),
    "L05": ("closed", 0, None, "0.00", "0.00"),
    "L06": ("closed", 0, None, "0.00", "0.00"),
    "L07": ("closed", 0, None, "0.00", "0.00"),
    "L08": ("written_off", 0, None, "0.00", "0.00"),
    "L09": ("cancelled", 0, None, "0.00", "0.00"),
    "L10": ("current", 0, "current", "400.00", "0.00"),
}

# At 2024-05-15, a date that is neither a month end nor the data date.
LOANS_AT_MAY_15 = {
    "L03": ("overdue", 14, "300.00"),   # instalment 3 due 05-01
    "L04": ("overdue", 35, "500.00"),   # due 04-10
    "L06": ("overdue", 30, "1080.00"),  # due 04-15, 1000 of 2080 paid
    "L07": ("overdue", 10, "300.00"),   # due 05-05, the payment was reversed
    "L08": ("overdue", 71, "400.00"),   # since 03-05; written off only on 05-20
    "L10": ("not_issued", 0, "0.00"),
}


def _rows(table):
    return [tuple(str(v) if isinstance(v, D) else v for v in row) for row in table.rows]


def test_overdue_monthly_matches_hand_computed(golden_con):
    table = reports.overdue_monthly(golden_con)
    assert table.columns == COLUMNS
    assert _rows(table) == [tuple(r) for r in EXPECTED]


def test_overdue_monthly_with_amount_filter(golden_con):
    table = reports.overdue_monthly(golden_con, min_amount=D("500"), max_amount=D("1000"))
    assert _rows(table) == [tuple(r) for r in EXPECTED_500_1000]


def test_filter_bounds_are_inclusive_and_filter_before_aggregation(golden_con):
    # max 500 keeps only L04 (500) among active loans; L07 (300) and L10 (400) are below min 450.
    table = reports.overdue_monthly(golden_con, min_amount=D("450"), max_amount=D("500"))
    by_month = {r[0]: r for r in _rows(table)}
    assert by_month["2024-03"][1:3] == (1, 0)  # L04 issued 03-10, current at 03-31
    assert by_month["2024-06"][1:4] == (1, 1, "1.000000")
    # no loan selected in January: the month is still listed, with null shares
    assert by_month["2024-01"] == ("2024-01", 0, 0, None, "0.00", "0.00", None)


def test_each_loan_state_and_dpd_at_the_data_date(golden_con):
    table = reports.loans(golden_con)
    assert table.columns == ["loan_id", "client_id", "amount", "state", "dpd", "bucket",
                             "principal_outstanding", "past_due_amount", "charges_past_due"]
    got = {r[0]: (r[3], r[4], r[5], str(r[6]), str(r[7])) for r in table.rows}
    assert got == LOANS_AT_END
    # no charge, fee or penalty in this fixture (contract v2)
    assert {str(r[8]) for r in table.rows} == {"0.00"}


def test_each_loan_at_a_date_between_snapshots(golden_con):
    got = {r[0]: (r[3], r[4], str(r[6])) for r in reports.loans(golden_con, as_of=dt.date(2024, 5, 15)).rows}
    for loan, expected in LOANS_AT_MAY_15.items():
        assert got[loan] == expected, loan


def test_custom_as_of_uses_that_date_for_its_month(golden_con):
    table = reports.overdue_monthly(golden_con, as_of=dt.date(2024, 5, 15))
    rows = _rows(table)
    assert [r[0] for r in rows] == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    assert rows[:4] == [tuple(r) for r in EXPECTED[:4]]
    # 05-15: L03 300, L04 500, L06 1080, L07 300, L08 400, all overdue
    assert rows[4] == ("2024-05", 5, 5, "1.000000", "2580.00", "2580.00", "1.000000")


def test_as_of_path_equals_precomputed_snapshots(golden_con):
    """The report's on-the-fly state lookup agrees with the mart at every precomputed date."""
    dates = [r[0] for r in golden_con.execute("SELECT snapshot_date FROM marts.snapshot_dates").fetchall()]
    for d in dates:
        mart = golden_con.execute(
            """SELECT loan_id, state, dpd, principal_outstanding_amount, past_due_amount
               FROM marts.fct_loan_snapshots WHERE snapshot_date = ? AND is_active ORDER BY loan_id""", [d]
        ).fetchall()
        lookup = [
            (r[0], r[3], r[4], r[6], r[7]) for r in reports.loans(golden_con, as_of=d).rows
            if r[3] in ("current", "overdue")
        ]
        assert mart == lookup, d


def test_schedule_of_the_annuity_with_interest(golden_con):
    rows = golden_con.execute(
        """SELECT instalment_number, due_date, principal_amount, interest_amount
           FROM marts.fct_instalments WHERE loan_id = 'L01' ORDER BY 1"""
    ).fetchall()
    assert rows == [
        (1, dt.date(2024, 2, 29), D("330.02"), D("10.00")),
        (2, dt.date(2024, 3, 31), D("333.32"), D("6.70")),
        (3, dt.date(2024, 4, 30), D("336.66"), D("3.37")),
    ]


def test_allocation_of_the_bullet_loan(golden_con):
    rows = golden_con.execute(
        """SELECT payment_id, interest_amount, principal_amount, credit_amount
           FROM marts.fct_payment_allocations WHERE loan_id = 'L06' ORDER BY 1"""
    ).fetchall()
    assert rows == [("P11", D("80.00"), D("920.00"), D("0.00")), ("P12", D("0.00"), D("1080.00"), D("0.00"))]


def test_paid_on_dates(golden_con):
    rows = dict(
        ((r[0], r[1]), r[2]) for r in golden_con.execute(
            "SELECT loan_id, instalment_number, paid_on_date FROM marts.fct_instalments"
        ).fetchall()
    )
    assert rows[("L03", 1)] == dt.date(2024, 4, 10)
    assert rows[("L03", 2)] == dt.date(2024, 5, 1)
    assert rows[("L03", 3)] is None
    assert rows[("L05", 4)] == dt.date(2024, 3, 1)  # prepaid
    assert rows[("L07", 1)] == dt.date(2024, 6, 10)  # the reversed payment does not count


def test_history_keeps_every_version(golden_con):
    versions = golden_con.execute(
        "SELECT region, valid_from, valid_to, is_current FROM core.client_versions WHERE client_id = 'C4' ORDER BY valid_from"
    ).fetchall()
    assert versions == [
        ("Москва", dt.datetime(2024, 1, 1, 8), dt.datetime(2024, 4, 1, 8), False),
        ("Татарстан", dt.datetime(2024, 4, 1, 8), None, True),
    ]
    assert golden_con.execute(
        "SELECT count(*) FROM core.loan_versions WHERE loan_id IN ('L02', 'L08', 'L09')"
    ).fetchone()[0] == 6


def test_names_are_data(golden_con):
    names = {r[0] for r in golden_con.execute("SELECT client_name FROM core.clients").fetchall()}
    assert "Robert'); DROP TABLE loans;--" in names
    assert "<b>Ömer</b>" in names
    assert '=HYPERLINK("http://evil.example","click")' in names


def test_cli_report_formats(golden):
    out = cli("report", "overdue-monthly", "--format", "csv", home=golden.home)
    assert out.exit_code == 0
    lines = out.stdout.strip().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[2] == "2024-02,6,1,0.166667,5319.98,600.00,0.112782"
    js = json.loads(cli("report", "overdue-monthly", "-f", "json", "--min-amount", "500", "--max-amount", "1000",
                        home=golden.home).stdout)
    assert js[1] == {"month": "2024-02", "loans_active": 5, "loans_overdue": 1, "overdue_share": 0.2,
                     "principal_outstanding": 3319.98, "principal_overdue": 600.0, "overdue_amount_share": 0.180724}
    loans = json.loads(cli("report", "loans", "--as-of", "2024-04-30", "-f", "json", home=golden.home).stdout)
    dpd = {r["loan_id"]: r["dpd"] for r in loans}
    assert (dpd["L03"], dpd["L04"], dpd["L06"], dpd["L08"]) == (29, 20, 15, 56)
    # people: human titles, separators, money with its currency, shares as percentages with one
    # decimal, what the figures are of, and every line within a 100-column terminal
    table = cli("report", "overdue-monthly", home=golden.home, env={"COLUMNS": "100"})
    lines = table.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines)
    row = next(line for line in lines if "2024-02" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["2024-02", "6", "1", "16.7 %", "5,319.98", "600.00", "11.3 %"]
    assert "as of 2024-06-30 · money in USD · all loans" in table.stdout
    assert "Principal" in table.stdout and "(USD)" in table.stdout and "overdue_share" not in table.stdout
    narrow = cli("report", "loans", "--as-of", "2024-04-30", home=golden.home, env={"COLUMNS": "60"})
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines())
    assert "not shown at this width" in narrow.stdout and "--format csv" in narrow.stdout
    assert "L03" in narrow.stdout  # the first columns stay


def test_cli_report_with_bounds_the_wrong_way_round_is_a_usage_error(golden):
    out = cli("report", "overdue-monthly", "--min-amount", "1000", "--max-amount", "500", home=golden.home)
    assert out.exit_code == 2
    assert "the amount range is empty: from 1000.0 to 500.0" in out.stderr
    out = cli("report", "loans", "--issued-from", "2024-06-01", "--issued-to", "2024-01-31", home=golden.home)
    assert out.exit_code == 2
    assert "the issue date range is empty: from 2024-06-01 to 2024-01-31" in out.stderr
    # equal bounds are a range of one value: L04 is the only loan of 500, L01 the only one issued
    # on 2024-01-31
    loans = json.loads(cli("report", "loans", "--min-amount", "500", "--max-amount", "500", "-f", "json",
                           home=golden.home).stdout)
    assert [r["loan_id"] for r in loans] == ["L04"]
    loans = json.loads(cli("report", "loans", "--issued-from", "2024-01-31", "--issued-to", "2024-01-31",
                           "-f", "json", home=golden.home).stdout)
    assert [r["loan_id"] for r in loans] == ["L01"]


def test_cli_report_warns_of_a_filter_value_no_loan_has(golden):
    out = cli("report", "overdue-monthly", "--product", "instalment", "-f", "csv", home=golden.home)
    # a warning, not an error: the report is still printed, all zeros, for programs to read
    assert out.exit_code == 0
    assert 'no loan has product "instalment"; products of loans: bnpl, cash, installment, payday' in out.stderr
    assert out.stdout.splitlines()[1] == "2024-01,0,0,,0.00,0.00,"
    # values are data, not markup: shown as typed
    out = cli("report", "loans", "--region", "[bold]Texas[/bold]", "--merchant", "M2", home=golden.home)
    # regions are the clients' current ones: C4 moved from Москва to Татарстан
    assert 'no loan has region "[bold]Texas[/bold]"; regions of loans: California, Jalisco, Texas, Татарстан' in out.stderr
    assert 'no loan has merchant "M2"; merchants of loans: M1' in out.stderr
    assert 'no loan has region "Москва"' in cli("report", "loans", "--region", "Москва", home=golden.home).stderr
    for args in (("--product", "payday"), ("--region", "Татарстан"), ("--merchant", "<i>Tienda</i> & Co")):
        out = cli("report", "loans", *args, home=golden.home)
        assert out.exit_code == 0 and "warning" not in out.stderr, args


def test_summary(golden_con):
    s = reports.summary(golden_con)
    assert (s["loans"], s["active"], s["overdue"]) == (9, 3, 2)
    assert str(s["overdue_share"]) == "0.666667"
    assert str(s["principal_outstanding"]) == "1200.00"
    # DPD > 30: L03 (60, 300) and L04 (81, 500) -> 800 / 1200
    assert str(s["par30"]) == "0.666667"


def test_dpd_counts_due_day_option(tmp_path):
    from loanwatch.serve import open_snapshot
    from tests.conftest import GOLDEN, build_home

    settings = build_home(tmp_path, GOLDEN, settings_env={"LOANWATCH_WAREHOUSE__DPD_COUNTS_DUE_DAY": "true"})
    con = open_snapshot(settings)
    got = {r[0]: r[4] for r in reports.loans(con).rows}
    assert (got["L03"], got["L04"]) == (61, 82)
    got = {r[0]: r[4] for r in reports.loans(con, as_of=dt.date(2024, 5, 15)).rows}
    assert got["L07"] == 11
