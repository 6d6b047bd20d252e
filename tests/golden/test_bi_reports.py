"""Every BI report on the ten-loan fixture, against figures computed by hand.

The loans are described in test_ten_loans.py. Active loans at each month end (from there):
01-31: L01 1000, L02 600, L05 1000, L08 800 (all current)
02-29: L01 669.98, L02 600 (DPD 19), L03 900, L05 750, L06 2000, L08 400
03-31: L01 336.66, L03 750 (DPD 30), L04 500, L06 2000, L08 400 (DPD 26); L02, L05 closed in March
04-30: L03 600 (DPD 29), L04 500 (20), L06 1080 (15), L07 300, L08 400 (56); L01 closed 04-30
05-31: L03 300 (30), L04 500 (51), L07 300 (26); L06 closed 05-20, L08 written off 05-20
06-30: L03 300 (60), L04 500 (81), L10 400; L07 closed 06-10
"""

from __future__ import annotations

from decimal import Decimal as D

from loanwatch import reports
from loanwatch.reports import LoanFilter, registry


def rows(table):
    return [tuple(str(v) if isinstance(v, D) else v for v in r) for r in table.rows]


def test_buckets_and_par(golden_con):
    # 06-30: L10 400 current, L03 300 in 31-60, L04 500 in 61-90; total 1200
    assert rows(reports.buckets(golden_con)) == [
        ("current", 1, "400.00", "0.333333"),
        ("1-30", 0, "0.00", "0.000000"),
        ("31-60", 1, "300.00", "0.250000"),
        ("61-90", 1, "500.00", "0.416667"),
        ("91-180", 0, "0.00", "0.000000"),
        ("181+", 0, "0.00", "0.000000"),
        ("PAR30", 2, "800.00", "0.666667"),   # DPD > 30: L03 (60), L04 (81)
        ("PAR60", 1, "500.00", "0.416667"),   # DPD > 60: L04
        ("PAR90", 0, "0.00", "0.000000"),
        ("NPL", 0, "0.00", "0.000000"),
    ]


def test_roll_rates_and_cure_rate(golden_con):
    got = {(r[0], r[1], r[2]): r[3:] for r in rows(reports.roll_rates(golden_con))}
    # February: all four current at 01-31 (3400); L02 rolls to 1-30, the rest stay current
    assert got[("2024-02", "current", "current")] == (3, "1819.98", "3400.00", "0.535288")  # 669.98 + 750 + 400
    assert got[("2024-02", "current", "1-30")] == (1, "600.00", "3400.00", "0.176471")
    # March: current at 02-29 = 669.98 + 900 + 750 + 2000 + 400 = 4719.98
    assert got[("2024-03", "current", "current")] == (2, "2336.66", "4719.98", "0.495057")  # L01 336.66 + L06 2000
    assert got[("2024-03", "current", "1-30")] == (2, "1150.00", "4719.98", "0.243645")  # L03 750 + L08 400
    assert got[("2024-03", "current", "closed")] == (1, "750.00", "4719.98", "0.158899")  # L05, its 750 at 02-29
    assert got[("2024-03", "1-30", "closed")] == (1, "600.00", "600.00", "1.000000")  # L02
    assert got[("2024-03", "overdue", "cured")] == (1, "600.00", "600.00", "1.000000")
    # April: from 1-30 (L03 750, L08 400): L03 stays (600 now), L08 rolls to 31-60 (400)
    assert got[("2024-04", "1-30", "1-30")] == (1, "600.00", "1150.00", "0.521739")
    assert got[("2024-04", "1-30", "31-60")] == (1, "400.00", "1150.00", "0.347826")
    assert got[("2024-04", "overdue", "cured")] == (0, "0.00", "1150.00", "0.000000")
    # May: L08 (31-60 at 04-30) is written off; L06 (1-30) closes
    assert got[("2024-05", "31-60", "written_off")] == (1, "400.00", "400.00", "1.000000")
    assert got[("2024-05", "1-30", "closed")][:2] == (1, "1080.00")
    # the cure-rates report is those 'overdue -> cured' rows, filter included
    for f in (None, LoanFilter(min_amount=D("600"))):
        cured = [r[:1] + r[3:] for r in rows(reports.roll_rates(golden_con, f=f)) if r[1] == "overdue"]
        assert rows(reports.cure_rates(golden_con, f=f)) == cured
    by_month = {r[0]: r for r in rows(reports.cure_rates(golden_con))}
    assert by_month["2024-03"] == ("2024-03", 1, "600.00", "600.00", "1.000000")  # L02 closed


def test_write_offs(golden_con):
    # L08 (800 in 2 instalments, the first paid 02-05) is written off on 05-20 with 400 on the book
    assert rows(registry.get("write-offs").run(golden_con)) == [("2024-05", 1, "400.00")]
    # a filter that leaves L08 out leaves no write-off
    assert rows(registry.get("write-offs").run(golden_con, f=LoanFilter(min_amount=D("900")))) == []


def test_vintages(golden_con):
    got = {(r[0], r[1]): r[2:] for r in rows(reports.vintages(golden_con))}
    # cohort 2024-01 = L01 1000 + L02 600 + L05 1000 + L08 800; L08 passes DPD 30 at 04-30 (k = 3)
    assert got[("2024-01", 2)] == (4, "3400.00", "0.000000", "0.000000", "0.000000")
    assert got[("2024-01", 3)] == (4, "3400.00", "0.235294", "0.000000", "0.000000")  # 800 / 3400
    assert got[("2024-01", 5)] == (4, "3400.00", "0.235294", "0.000000", "0.000000")
    # cohort 2024-02 = L03 900 + L06 2000; L03 passes 30 only at 06-30 (DPD 60, k = 4), never 60
    assert got[("2024-02", 3)] == (2, "2900.00", "0.000000", "0.000000", "0.000000")
    assert got[("2024-02", 4)] == (2, "2900.00", "0.310345", "0.000000", "0.000000")
    # cohort 2024-03 = L04 500: DPD 81 at 06-30, k = 3 -> ever 30 and ever 60, not 90
    assert got[("2024-03", 3)] == (1, "500.00", "1.000000", "1.000000", "0.000000")
    assert ("2024-03", 4) not in got  # no month on book beyond the data date


def test_disbursed(golden_con):
    assert rows(reports.disbursed(golden_con)) == [
        ("2024-01", 4, "3400.00"), ("2024-02", 2, "2900.00"), ("2024-03", 1, "500.00"),  # L09 cancelled
        ("2024-04", 1, "300.00"), ("2024-06", 1, "400.00"),
    ]


def test_revenue_and_collection_efficiency(golden_con):
    got = {r[0]: r[1:] for r in rows(reports.revenue(golden_con))}
    # interest: Feb P01 10.00; Mar P02 6.70; Apr P03 3.37 + P11 80.00
    # due in Feb: L01 340.02, L02 300, L05 250, L08 400 = 1290.02, all paid since
    assert got["2024-02"] == ("10.00", "1290.02", "1290.02", "1.000000")
    # due in Mar: L01 340.02, L02 300, L03 300, L05 250, L08 400 = 1590.02; L08's 400 unpaid
    assert got["2024-03"] == ("6.70", "1590.02", "1190.02", "0.748431")
    # due in Apr: L01 340.03, L03 300, L04 500, L05 250, L06 2080 = 3470.03; L04 unpaid
    assert got["2024-04"] == ("83.37", "3470.03", "2970.03", "0.855909")
    # due in May: L03 300 (unpaid), L05 250, L07 300 = 850
    assert got["2024-05"] == ("0.00", "850.00", "550.00", "0.647059")


def test_regions(golden_con):
    # C4 moved to Татарстан (current version): L04 overdue 500, L08 written off
    assert rows(reports.regions(golden_con)) == [
        ("Татарстан", 2, 1, 1, "500.00", "500.00", "1.000000", "1.000000"),
        ("Jalisco", 3, 1, 0, "400.00", "0.00", "0.000000", "0.000000"),  # L01, L05 closed; L10 current
        ("California", 2, 1, 1, "300.00", "300.00", "1.000000", "1.000000"),
        ("Texas", 2, 0, 0, "0.00", "0.00", None, None),
    ]


def test_risk_bands(golden_con):
    # no scores in the fixture: one band; 2 of 3 active overdue; L04 ever > 60; L08 written off; of 9
    assert rows(reports.risk(golden_con)) == [
        ("risk_score", "(none)", 9, "0.666667", "0.111111", "0.111111"),
        ("fraud_score", "(none)", 9, "0.666667", "0.111111", "0.111111"),
    ]


def test_products_terms(golden_con):
    got = rows(reports.products(golden_con))
    assert got[0] == ("cash", "2", 2, "1400.00", "0.222222")  # L02 600 + L08 800, of 9 loans
    assert ("bnpl", "schedule", 1, "300.00", "0.111111") in got  # L07's explicit schedule
    assert sum(r[2] for r in got) == 9


def test_clients_repeat_profit_and_rates(golden_con):
    # nth loan by issue date: C1 L05 then L01, C2 L02 then L06, C3 L03 then L07, C4 L08 then L04, C5 L10.
    # Borrowed again: of the 5 clients with a 1st loan, 4 took a 2nd; of those 4, none took a 3rd.
    assert rows(reports.clients(golden_con)) == [("1", 5, "0.555556", "0.800000"), ("2", 4, "0.444444", "0.000000")]
    profit = rows(reports.clients(golden_con, view="profit", top=2))
    # C2: paid 600 + 2080, lent 2600; C1: 340.02 + 340.02 + 340.03 + 1000 - 2000
    assert profit[:2] == [
        ("top", 1, "C2", "Robert'); DROP TABLE loans;--", 2, "2600.00", "2680.00", "80.00"),
        ("top", 2, "C1", "Ana López", 2, "2000.00", "2020.07", "20.07"),
    ]
    # C4: lent 1300, paid 400; C5: lent 400 (L09 cancelled), paid nothing
    assert [r[2] for r in profit[2:]] == ["C4", "C5"]
    assert rows(reports.clients(golden_con, view="rates")) == [
        ("0-10%", 7, 1, "0.142857"),  # L08 written off (L04 reached 81 days, not more than 90)
        ("10-20%", 1, 0, "0.000000"),  # L01 at 12 %
        ("20-30%", 1, 0, "0.000000"),  # L06 at 24 %
    ]


def test_loan_grain_filters_apply_everywhere(golden_con):
    # product cash: L02, L03, L04, L08 (L09 cancelled); at 06-30 only L03 and L04 are on the book
    f = LoanFilter(product="cash")
    assert rows(reports.buckets(golden_con, f=f))[6] == ("PAR30", 2, "800.00", "1.000000")
    assert [r[0] for r in rows(reports.disbursed(golden_con, f=f))] == ["2024-01", "2024-02", "2024-03"]
    # Texas is C2: in February L02 (overdue) and L06 (issued 02-15, current)
    assert rows(reports.overdue_monthly(golden_con, f=LoanFilter(region="Texas")))[1][1:3] == (2, 1)
    f = LoanFilter(issued_from=__import__("datetime").date(2024, 6, 1))
    assert rows(reports.buckets(golden_con, f=f))[0] == ("current", 1, "400.00", "1.000000")  # L10 only
    assert rows(reports.products(golden_con, view="merchants", f=f)) == [("M1", "<i>Tienda</i> & Co", 1, "400.00", 1, "0.000000")]


def test_merchant_preference(golden_con):
    # M1 financed L05 (1000, closed), L07 (300, closed) and L10 (400, current) by 06-30
    assert rows(reports.products(golden_con, view="merchants")) == [
        ("M1", "<i>Tienda</i> & Co", 3, "1700.00", 1, "0.000000")]
    # at 05-31 L07 (300) was overdue and L10 not yet issued: 2 loans, 1 active, all overdue
    import datetime as dt
    assert rows(reports.products(golden_con, view="merchants", as_of=dt.date(2024, 5, 31))) == [
        ("M1", "<i>Tienda</i> & Co", 2, "1300.00", 1, "1.000000")]
