"""Apache Fineract's own delinquency tests as golden cases (issue 39), by hand (METRICS v3 §2-§3).

Sources: apache/fineract at 4198b0bcf9a94e1c7aa0f386317ba71f40ceb1d9 (2024-10-24). Each scenario is
restated as data (no Fineract code is copied) and cited by file and line:
  F  = fineract-e2e-tests-runner/src/test/resources/features/LoanDelinquency.feature (the line of
       its `Scenario:`),
  IT = integration-tests/src/test/java/org/apache/fineract/integrationtests/ (the line of the test
       method).
One loan per scenario, all of client C1, all in one home built once. Fineract often checks a loan
before and after a transaction of the same business date; loanwatch's figures are at the end of a
day, so such a scenario has one loan per step (ids `…-0`, `…-1`, …, each with the events up to that
step). Figures are (state, DPD, bucket, principal_outstanding, past_due_amount, charges_past_due).

How Fineract's rule compares with METRICS §3 (fineract-loan/…/delinquency/service/
LoanDelinquencyDomainServiceImpl.java, getOverdueCollectionData):
  - the same: `pastDueDays` = D − the due date of the oldest instalment with anything outstanding
    that fell due before the business date D (no +1; an instalment due on D is not past due) is
    METRICS's DPD(D); `delinquentAmount` = all that those instalments owe, every component, is
    METRICS's past_due_amount. Fineract computes nothing for a loan that is closed or overpaid
    (status 700): METRICS's `closed`, with DPD 0 and 0 owed.
  - different, and each test that meets it says so and asserts METRICS, not Fineract:
    (a) grace: `delinquentDate` = overdue since + graceOnArrearsAgeing and `delinquentDays` =
        pastDueDays − grace (3 days in the E2E product): Fineract calls the loan NO_DELINQUENCY for
        its first 3 days past due; METRICS has no grace: overdue, bucket 1-30, from the first day.
    (b) pauses (delinquency actions PAUSE/RESUME): the paused days are subtracted from
        delinquentDays (a finished pause counts end − start, a running one D − start), and the
        classification is frozen while a pause runs. METRICS has no pause (nor the contract).
    (c) ranges: Fineract's classification is a configurable range of delinquentDays (E2E: RANGE_1
        1-3, RANGE_3 4-30, RANGE_30 31-60, RANGE_60 61-90, RANGE_90 91-120, …; each IT its own),
        per loan or per instalment (installment level: each instalment by its own days, no grace,
        minus every paused day); METRICS's bucket is the loan's, by DPD: current, 1-30, 31-60,
        61-90, 91-180, 181+.
    (d) tolerance: the IT products' inArrearsTolerance 3 is not used by Fineract's delinquency
        figures (exact zero), nor by METRICS (`tolerance` 0.00).

Schedules, restated:
  E2E  product LP2_DOWNPAYMENT_ADV_PMT_ALLOC_PROGRESSIVE_LOAN_SCHEDULE_HORIZONTAL_INSTALLMENT_LEVEL_
       DELINQUENCY (fineract-e2e-tests-core/…/initializer/global/LoanProductGlobalInitializerStep.java
       l.404-427 on LoanProductsRequestFactory.defaultLoanProductsRequestLP2, l.660: 25 % down
       payment not repaid automatically, graceOnArrearsAgeing 3): 1000 EUR at 0 % issued 2023-10-01,
       3 repayments every 15 days: 250 due 10-01 (the down payment, due on the day of disbursement),
       10-16, 10-31, 11-15. Unpaid: DPD(D) = D − 10-01; past due 250 through 10-16, 500 from 10-17,
       750 from 11-01, 1000 from 11-16.
  B    DelinquencyBucketsIntegrationTest createLoanAccount (l.1620, l.1600): 10000 over 12 months
       from the disbursement, 2 % a month on the declining balance, equal principal: principal
       833.33 (the last 833.37), interest 200.00, 183.33, 166.67, 150.00, 133.33, 116.67, 100.00,
       83.33, 66.67, 50.00, 33.33, 16.67. #1 owes 1033.33 and #1 + #2 2049.99, the test's own
       figures; no later instalment enters a figure below.
  B2000 the same file, l.1468: 2000 over 5 months at 12.3 % a month (30/360), equal instalments:
       METRICS §1's annuity at r = 0.123 gives the test's #1, 312.95 principal + 246.00 interest,
       then (351.44, 207.51), (394.67, 164.28), (443.21, 115.74), (497.73, 61.22).
  I    InstallmentLevelDelinquencyAPIIntegrationTests: 1250 issued 2023-01-01, 30-day periods:
       312 due 01-31, 312 due 03-02, 312 due 04-01, 314 due 05-01 (as the test lists them).
  N    LoanDelinquencyForNonActiveAccountsTest: 1000 issued 2024-05-06, 30-day periods: 250 due
       06-05, 07-05, 08-04, 09-03.
  A    DelinquencyActionIntegrationTests: 25 % down payment repaid automatically at disbursement (a
       payment on the issue date), then 3 instalments; 0 %.
Tests whose dates are relative to the machine's date (Utils.getLocalDateOfTenant()) are fixed at
"today" = 2012-03-01 (B510, B620, B1356, B1468).

Figures by hand (D: state DPD bucket principal past-due [charges]):
  F269   12-16: overdue 76 61-90 1000.00 1000.00
  F286   11-16: 46 31-60 1000/1000; 12-16: 76 61-90 1000/1000
  F311   12-16: 76 61-90 1000/1000; 1000 paid 12-17: closed, 0 owed
  F332   10-25: 24 1-30 1000/500; 250 paid 10-26 pays #1: 10-26: 10 1-30 750/250
  F397   charges: penalty 20 due 10-05 (charged 10-01) → #2, fee 20 due 10-20 (charged 10-20) → #3;
         12-16: 76 61-90 1000/1040 [40]
  F417   11-16: 46, 11-17: 47, 11-30: 60 (31-60, 1000/1000); 2024-01-01: 92 91-180 1000/1000
  F462   11-16: 46, 11-17: 47 (31-60); 12-01: 61 61-90; all 1000/1000
  F537   10-02: 1, 10-04: 3, 10-05: 4, 10-06: 5 (past due 250); 10-30: 29, 10-31: 30 (500); 1-30,
         principal 1000
  F608   10-15: 14 (250); 10-26: 25 (500); 1-30
  F649   10-15: 14 (250); 10-26: 25 (500) 1-30; 11-13: 43, 11-14: 44 (750) 31-60; 11-30: 60
         (1000) 31-60; 12-01: 61 (1000) 61-90
  F770   -0 10-16: 15 1-30 1000/250; -1 (500 paid 10-16): 10-06: 5 250; 10-16: current 500/0
  F816   -0 10-16: 15 250; -1 (150 paid 10-16): 10-06: 5 250; 10-16: 15 1-30 850/100
  F865   -0 10-16: 15 250; -1 (250 paid 10-16): 10-06: 5; 10-16: current 750/0; 10-26: 10 750/250;
         11-15: 30 1-30 750/500
  F948   10-30: 29, 10-31: 30 (500) 1-30
  F1014  10-25: 24, 10-27: 26 (500) 1-30
  F1049  250 paid 10-01: 10-01: current 750/0; 10-26: 10, 10-27: 11, 10-28: 12, 10-29: 13 (250)
  F1136  12-01: 61 61-90 1000/1000
  B314   issued 2012-01-11 (#1 due 02-11), at 03-01: -0 19 1-30 10000.00/1033.33; -1 (100 paid
         03-01, all interest) 19 10000.00/933.33; -2 (and 1000 more: #1 paid, 66.67 of #2's
         interest) current 9166.67/0
  B413   issued 2012-01-27 (#1 02-27, #2 03-27), at 04-01: -0 34 31-60 10000.00/2049.99;
         -1 (2049.99 paid 04-01) current 8333.34/0; -2 (then a fee of 12 due 03-14, added 04-01
         after the payment → #2, due 03-27) 5 1-30 8333.34/12.00 [12.00]
  B510   issued 2011-12-07 (#1 01-07, #2 02-07, #3 03-07), at 03-01: -0 54 31-60 10000.00/2049.99;
         -1 (1050 paid 02-29: #1, and 16.67 of #2's interest) 23 1-30 9166.67/999.99;
         -2 (and 1020: #2, and 20.01 of #3's interest) current 8333.34/0
  B620   issued 2012-01-11, at 03-01: -0 19 1-30 10000.00/1033.33; -1 (1050 paid 03-01) current
         9166.67/0; -2 (the 1050 reversed) 19 1-30 10000.00/1033.33
  B809   issued 2012-03-01 (#1 04-01): 04-01: current 10000.00/0; 04-04: 3 1-30 10000.00/1033.33
  B913, B994  issued 2012-01-01: 01-31: current 10000.00/0
  B1085, B1137, B1192, B1275  issued 2012-01-01 (#1 02-01, #2 03-01): 02-06: 5, 02-09: 8, 02-13: 12,
         02-23: 22 (1-30, 1033.33); 03-12: 40, 03-14: 42 (31-60, 2049.99); principal 10000.00
  B1356  issued 2012-01-24 (#1 02-24), at 03-01: 6 1-30 10000.00/1033.33
  B1468  issued 2012-01-11 (#1 02-11), payments on 01-11, at 03-01: -0 19 1-30 2000.00/558.95;
         -1 (120: interest) 19 2000.00/438.95; -2 (and 330.72: 126.00 interest, 204.72 principal)
         19 1795.28/108.23; -3 (and 108.23) current 1687.05/0; -4 (the 108.23 reversed) as -2
  A264   1000 issued 2022-12-25: 250 due 12-25 (paid that day), 2023-01-24, 02-23, 03-25;
         at 01-30: 6 1-30 750.00/250.00
  A327   100 issued 2023-11-01: 25 due 11-01 (paid that day), 11-16, 12-01, 12-16; at 11-26:
         10 1-30 75.00/25.00
  N140   at 06-17: -0 12 1-30 1000.00/250.00; -1 (1000 paid 06-17) closed
  N184   -0 as N140-0; -1 (1200 paid 06-17: overpaid, 200 of credit) closed
  I55    at 05-31: -0 120 91-180 1250.00/1250.00; -1 (626: #1, #2 and 2 of #3) 60 31-60 624/624;
         -2 (and 100) 60 31-60 524/524; -3 (and 524) closed
  I118   313 paid 05-31 (#1 and 1 of #2): 90 61-90 937.00/937.00
  I207   02-01: 1 1-30 1250.00/312.00; 02-02: 2

A charge that names no instalment goes with the first due on or after its due_date
(docs/contract.md, METRICS §2): Fineract's instalment ranges place F397's charges on #2 and #3
(test_f397_the_charges_go_with_…), and B413-2's fee is on #2: 5 days past due on 04-01.

Left out, and why:
  F l.5, 26, 47, 69, 84, 99, 162, 179, 190, 207, 224: the pause API (creating, reading, validating
    PAUSE/RESUME actions): no delinquency figure, and loanwatch has no pauses. l.114, 139: pause or
    resume on a loan that is not active is an error (API validation). l.505, 523: permissions.
  F l.241 and l.1194: @Skip upstream (their expectations are not run).
  F l.354, 375: goodwill credit. The contract has no goodwill credit: as a payment it would count as
    money collected, a waiver forgives one component only. With a payment in its place the figures
    are those of l.311 and l.332.
  F l.1006: a product validation error. l.1104, 1120: the nextPaymentDueDate setting, and l.1167:
    lastRepaymentAmount, are not loanwatch figures. l.1152, 1179: applications never disbursed
    (the contract carries disbursed loans; `cancelled` ones are left out of every figure).
  IT DelinquencyBucketsIntegrationTest l.110-264 (ranges, buckets, products), l.1408 (an application
    never disbursed), l.717 testLoanClassificationJob (both the business date and the loan are
    relative to the machine's date; its rule, no range before the first due date and a range after
    it, is l.809's). InstallmentLevelDelinquencyAPIIntegrationTests l.395, 486, 516, 552, 576
    (setting validations). DelinquencyActionIntegrationTests l.64-232, 302 (the pause API).
    LoanDelinquencyForNonActiveAccountsTest l.42, 86 (rejected applications, never disbursed).
    DelinquencyAndChargebackIntegrationTest (chargebacks, transaction type 25, have no counterpart
    in contract v3; nor Fineract's quirk that a chargeback can make an instalment not yet due
    delinquent). LoanDelinquencyDetailsNextPaymentDateConfigurationTest (next payment due date).
  The unit tests under fineract-provider/src/test (LoanDelinquencyDomainServiceTest, …) test the
    Java service with mocks, not a loan's history.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from tests.conftest import build_home, snapshot

FEATURE = "fineract-e2e-tests-runner/src/test/resources/features/LoanDelinquency.feature"
IT = "integration-tests/src/test/java/org/apache/fineract/integrationtests/"

LOANS: dict[str, dict] = {}
INSTALMENTS: list[dict] = []
PAYMENTS: list[dict] = []
CHARGES: list[dict] = []


def _months_after(day: str, k: int) -> str:
    d = dt.date.fromisoformat(day)
    month = d.month - 1 + k
    return d.replace(year=d.year + month // 12, month=month % 12 + 1).isoformat()  # every day used is ≤ 28


def _loan(loan_id: str, amount: str, issue_date: str, schedule: list[tuple], payments=(), charges=()) -> None:
    """One loan of client C1 with its instalment records (due_date, principal[, interest]), its
    payments (paid_at, amount[, reverses]) and charges (charged_at, type, amount, due_date)."""
    assert loan_id not in LOANS
    LOANS[loan_id] = {"loan_id": loan_id, "client_id": "C1", "product": "fineract", "amount": amount,
                      "currency": "EUR", "issue_date": issue_date, "repayment": "schedule", "status": "active",
                      "updated_at": f"{issue_date}T00:00:00Z"}
    for number, (due, principal, *interest) in enumerate(schedule, start=1):
        INSTALMENTS.append({"loan_id": loan_id, "number": number, "due_date": due, "principal": principal,
                            "interest": interest[0] if interest else "0"})
    for k, (paid_at, amount_paid, *reverses) in enumerate(payments, start=1):
        record = {"payment_id": f"{loan_id}-P{k}", "loan_id": loan_id, "paid_at": paid_at, "amount": amount_paid}
        if reverses:
            record.update(type="reversal", reverses=f"{loan_id}-P{reverses[0]}")
        PAYMENTS.append(record)
    for k, (charged_at, kind, amount_charged, due_date) in enumerate(charges, start=1):
        CHARGES.append({"charge_id": f"{loan_id}-C{k}", "loan_id": loan_id, "type": kind, "amount": amount_charged,
                        "charged_at": charged_at, "due_date": due_date})


def _noon(day: str) -> str:
    return f"{day}T12:00:00Z"


# E2E: 1000 issued 2023-10-01; 250 due 10-01 (down payment), 10-16, 10-31, 11-15.
E2E = [("2023-10-01", "250"), ("2023-10-16", "250"), ("2023-10-31", "250"), ("2023-11-15", "250")]

# B: 10000 over 12 months, 2 % a month on the declining balance, equal principal.
B_INTEREST = ["200.00", "183.33", "166.67", "150.00", "133.33", "116.67", "100.00", "83.33", "66.67", "50.00",
              "33.33", "16.67"]


def b_schedule(issue_date: str) -> list[tuple]:
    return [(_months_after(issue_date, k), "833.33" if k < 12 else "833.37", B_INTEREST[k - 1]) for k in range(1, 13)]


def b2000_schedule(issue_date: str) -> list[tuple]:
    parts = [("312.95", "246.00"), ("351.44", "207.51"), ("394.67", "164.28"), ("443.21", "115.74"), ("497.73", "61.22")]
    return [(_months_after(issue_date, k), p, i) for k, (p, i) in enumerate(parts, start=1)]


I_1250 = [("2023-01-31", "312"), ("2023-03-02", "312"), ("2023-04-01", "312"), ("2023-05-01", "314")]
N_1000 = [("2024-06-05", "250"), ("2024-07-05", "250"), ("2024-08-04", "250"), ("2024-09-03", "250")]

# --- LoanDelinquency.feature (E2E) ---------------------------------------------------------------
for _id in ("F269", "F286", "F417", "F462", "F537", "F608", "F649", "F948", "F1014", "F1136",
            "F770-0", "F816-0", "F865-0"):
    _loan(_id, "1000", "2023-10-01", E2E)
_loan("F311", "1000", "2023-10-01", E2E, payments=[(_noon("2023-12-17"), "1000")])
_loan("F332", "1000", "2023-10-01", E2E, payments=[(_noon("2023-10-26"), "250")])
_loan("F397", "1000", "2023-10-01", E2E, charges=[("2023-10-01T10:00:00Z", "penalty", "20", "2023-10-05"),
                                                  ("2023-10-20T10:00:00Z", "fee", "20", "2023-10-20")])
_loan("F770-1", "1000", "2023-10-01", E2E, payments=[(_noon("2023-10-16"), "500")])
_loan("F816-1", "1000", "2023-10-01", E2E, payments=[(_noon("2023-10-16"), "150")])
_loan("F865-1", "1000", "2023-10-01", E2E, payments=[(_noon("2023-10-16"), "250")])
_loan("F1049", "1000", "2023-10-01", E2E, payments=[(_noon("2023-10-01"), "250")])

# --- DelinquencyBucketsIntegrationTest (B) -------------------------------------------------------
_loan("B314-0", "10000", "2012-01-11", b_schedule("2012-01-11"))
_loan("B314-1", "10000", "2012-01-11", b_schedule("2012-01-11"), payments=[(_noon("2012-03-01"), "100")])
_loan("B314-2", "10000", "2012-01-11", b_schedule("2012-01-11"),
      payments=[(_noon("2012-03-01"), "100"), ("2012-03-01T12:30:00Z", "1000")])
_loan("B413-0", "10000", "2012-01-27", b_schedule("2012-01-27"))
_loan("B413-1", "10000", "2012-01-27", b_schedule("2012-01-27"), payments=[(_noon("2012-04-01"), "2049.99")])
_loan("B413-2", "10000", "2012-01-27", b_schedule("2012-01-27"), payments=[(_noon("2012-04-01"), "2049.99")],
      charges=[("2012-04-01T13:00:00Z", "fee", "12", "2012-03-14")])
_loan("B510-0", "10000", "2011-12-07", b_schedule("2011-12-07"))
_loan("B510-1", "10000", "2011-12-07", b_schedule("2011-12-07"), payments=[(_noon("2012-02-29"), "1050")])
_loan("B510-2", "10000", "2011-12-07", b_schedule("2011-12-07"),
      payments=[(_noon("2012-02-29"), "1050"), ("2012-02-29T12:30:00Z", "1020")])
_loan("B620-0", "10000", "2012-01-11", b_schedule("2012-01-11"))
_loan("B620-1", "10000", "2012-01-11", b_schedule("2012-01-11"), payments=[(_noon("2012-03-01"), "1050")])
_loan("B620-2", "10000", "2012-01-11", b_schedule("2012-01-11"),
      payments=[(_noon("2012-03-01"), "1050"), ("2012-03-01T12:30:00Z", "1050", 1)])
_loan("B809", "10000", "2012-03-01", b_schedule("2012-03-01"))
for _id in ("B913", "B994", "B1085", "B1137", "B1192", "B1275"):
    _loan(_id, "10000", "2012-01-01", b_schedule("2012-01-01"))
_loan("B1356", "10000", "2012-01-24", b_schedule("2012-01-24"))
_B1468_PAID = [(_noon("2012-01-11"), "120"), ("2012-01-11T12:10:00Z", "330.72"), ("2012-01-11T12:20:00Z", "108.23")]
_loan("B1468-0", "2000", "2012-01-11", b2000_schedule("2012-01-11"))
_loan("B1468-1", "2000", "2012-01-11", b2000_schedule("2012-01-11"), payments=_B1468_PAID[:1])
_loan("B1468-2", "2000", "2012-01-11", b2000_schedule("2012-01-11"), payments=_B1468_PAID[:2])
_loan("B1468-3", "2000", "2012-01-11", b2000_schedule("2012-01-11"), payments=_B1468_PAID)
_loan("B1468-4", "2000", "2012-01-11", b2000_schedule("2012-01-11"),
      payments=[*_B1468_PAID, ("2012-01-11T12:30:00Z", "108.23", 3)])

# --- DelinquencyActionIntegrationTests (A) -------------------------------------------------------
_loan("A264", "1000", "2022-12-25", [("2022-12-25", "250"), ("2023-01-24", "250"), ("2023-02-23", "250"),
                                     ("2023-03-25", "250")], payments=[(_noon("2022-12-25"), "250")])
_loan("A327", "100", "2023-11-01", [("2023-11-01", "25"), ("2023-11-16", "25"), ("2023-12-01", "25"),
                                    ("2023-12-16", "25")], payments=[(_noon("2023-11-01"), "25")])

# --- LoanDelinquencyForNonActiveAccountsTest (N) -------------------------------------------------
_loan("N140-0", "1000", "2024-05-06", N_1000)
_loan("N140-1", "1000", "2024-05-06", N_1000, payments=[(_noon("2024-06-17"), "1000")])
_loan("N184-0", "1000", "2024-05-06", N_1000)
_loan("N184-1", "1000", "2024-05-06", N_1000, payments=[(_noon("2024-06-17"), "1200")])

# --- InstallmentLevelDelinquencyAPIIntegrationTests (I) ------------------------------------------
_I55_PAID = [(_noon("2023-05-31"), "626"), ("2023-05-31T12:10:00Z", "100"), ("2023-05-31T12:20:00Z", "524")]
for _k in range(4):
    _loan(f"I55-{_k}", "1250", "2023-01-01", I_1250, payments=_I55_PAID[:_k])
_loan("I118", "1250", "2023-01-01", I_1250, payments=[(_noon("2023-05-31"), "313")])
_loan("I207", "1250", "2023-01-01", I_1250)


def _jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def fineract_home(tmp_path_factory):
    raw = tmp_path_factory.mktemp("fineract_raw")
    _jsonl(raw / "clients.jsonl", [{"client_id": "C1", "name": "Fineract", "updated_at": "2011-01-01T00:00:00Z"}])
    _jsonl(raw / "loans.jsonl", LOANS.values())
    _jsonl(raw / "instalments.jsonl", INSTALMENTS)
    _jsonl(raw / "payments.jsonl", PAYMENTS)
    _jsonl(raw / "charges.jsonl", CHARGES)
    return build_home(tmp_path_factory.mktemp("fineract"), raw)


@pytest.fixture(scope="module")
def con(fineract_home):
    with snapshot(fineract_home) as c:
        yield c


_ROWS: dict[str, dict] = {}


def at(con, loan_id: str, day: str) -> tuple:
    """loanwatch's figures of a loan at the end of a day: (state, dpd, bucket, principal_outstanding,
    past_due_amount, charges_past_due), money as strings with 2 decimals."""
    from loanwatch.reports.delinquency import loans

    if day not in _ROWS:
        _ROWS[day] = {r["loan_id"]: r for r in loans(con, dt.date.fromisoformat(day)).as_dicts()}
    r = _ROWS[day][loan_id]
    return (r["state"], r["dpd"], r["bucket"], str(r["principal_outstanding"]), str(r["past_due_amount"]),
            str(r["charges_past_due"]))


def overdue(dpd: int, bucket: str, principal: str, past_due: str, charges: str = "0.00") -> tuple:
    return ("overdue", dpd, bucket, principal, past_due, charges)


def current(principal: str) -> tuple:
    return ("current", 0, "current", principal, "0.00", "0.00")


CLOSED = ("closed", 0, None, "0.00", "0.00", "0.00")


def check(con, loan_id: str, expected: dict[str, tuple]) -> None:
    got = {day: at(con, loan_id, day) for day in expected}
    assert got == expected, loan_id


def test_the_fixture_loads_whole_and_every_schedule_adds_up(fineract_home, con):
    """Every loan restated above is loaded (none quarantined), and no check names a schedule that
    does not add up to its loan."""
    from loanwatch.warehouse import read_warehouse

    loaded = dict(con.execute("SELECT loan_id, amount FROM marts.dim_loans").fetchall())
    assert loaded == {k: Decimal(v["amount"]) for k, v in LOANS.items()}
    with read_warehouse(fineract_home) as wh:
        results = dict(wh.execute("""
            SELECT check_name, failing_rows FROM meta.dq_results
            WHERE build_id = (SELECT max(build_id) FROM meta.builds)""").fetchall())
    assert results["warn_instalment_records"] == 0


# ================================ LoanDelinquency.feature ======================================

def test_f269_installment_level_loan_goes_into_delinquency_bucket(con):
    """F l.269 "Verify Installment level loan delinquency - loan goes into delinquency bucket".

    Fineract classifies per instalment (no grace at instalment level): at 2023-12-16 #1 is 76 days
    and #2 61 days past due (RANGE_60 61-90, 500), #3 46 and #4 31 (RANGE_30 31-60, 500). METRICS
    has one bucket per loan, by its oldest overdue instalment: DPD = 12-16 − 10-01 = 76 → 61-90;
    past due 4 × 250 = 1000.00."""
    # Fineract 12-16: INSTALLMENT level RANGE_30 500.00, RANGE_60 500.00
    check(con, "F269", {"2023-12-16": overdue(76, "61-90", "1000.00", "1000.00")})


def test_f286_installment_level_loan_goes_from_one_bucket_to_another(con):
    """F l.286 "Verify Installment level loan delinquency - loan goes from one delinquency bucket
    to an other".

    Fineract's instalment ranges at 11-16: #4 1 day (RANGE_1 250), #3 16 (RANGE_3 250), #2 31 and
    #1 46 (RANGE_30 500). METRICS: DPD 46 (11-16 − 10-01) → 31-60, past due 1000.00 (#4, due 11-15,
    is overdue on 11-16); at 12-16 DPD 76 → 61-90."""
    # Fineract 11-16: RANGE_1 250.00, RANGE_3 250.00, RANGE_30 500.00
    # Fineract 12-16: RANGE_30 500.00, RANGE_60 500.00
    check(con, "F286", {"2023-11-16": overdue(46, "31-60", "1000.00", "1000.00"),
                        "2023-12-16": overdue(76, "61-90", "1000.00", "1000.00")})


def test_f311_loan_goes_out_of_delinquency_by_late_repayment(con):
    """F l.311 "Verify Installment level loan delinquency - loan goes out from delinquency by late
    repayment": 1000 paid on 12-17 pays every instalment: closed, nothing past due (as Fineract)."""
    # Fineract 12-16: RANGE_30 500.00, RANGE_60 500.00; after the repayment of 12-17: INSTALLMENT level null
    check(con, "F311", {"2023-12-16": overdue(76, "61-90", "1000.00", "1000.00"), "2023-12-17": CLOSED})


def test_f332_some_installments_go_out_of_delinquency_by_late_repayment(con):
    """F l.332 "Verify Installment level loan delinquency - some of the installments go out from
    delinquency by late repayment".

    At 10-25 #1 (24 days) and #2 (9 days) are past due: DPD 24, 500.00. 250 paid on 10-26 pays #1
    (due-date order), so #2 (due 10-16) is the oldest: DPD 10, past due 250.00, principal 750.00."""
    # Fineract 10-25: RANGE_3 500.00; after the repayment of 10-26: RANGE_3 250.00
    check(con, "F332", {"2023-10-25": overdue(24, "1-30", "1000.00", "500.00"),
                        "2023-10-26": overdue(10, "1-30", "750.00", "250.00")})


def test_f397_installment_level_loan_with_charges_goes_into_delinquency_bucket(con):
    """F l.397 "Verify Installment level loan delinquency - loan with charges goes into delinquency
    bucket".

    LOAN_NSF_FEE is a penalty, LOAN_SNOOZE_FEE a fee, both specified-due-date charges
    (fineract-e2e-tests-core/…/initializer/global/ChargeGlobalInitializerStep.java l.102-112): the
    penalty of 20 (added 10-01, due 10-05) goes with #2, the first instalment due on or after
    10-05, and the fee of 20 (added 10-20, due 10-20) with #3 (due 10-31): Fineract's schedule puts
    them there too (its ranges hold 520 = 250 + 20 each). At 12-16 every instalment is past due:
    1000 + 40 = 1040.00, of which charges 40.00; DPD 76 → 61-90."""
    # Fineract 12-16: INSTALLMENT level RANGE_30 520.00 (#3 with the fee, #4), RANGE_60 520.00 (#1, #2 with the penalty)
    check(con, "F397", {"2023-12-16": overdue(76, "61-90", "1000.00", "1040.00", "40.00")})


def test_f397_the_charges_go_with_the_instalments_fineract_puts_them_on(con):
    """F l.397, as above: Fineract's instalment ranges on 12-16 (520.00 = #1 250 + #2 270 in RANGE_60,
    520.00 = #3 270 + #4 250 in RANGE_30) hold the penalty with #2 and the fee with #3, the first
    instalments due on or after their due dates (10-05, 10-20): METRICS §2's placement too."""
    charged = dict(con.execute("""
        SELECT instalment_number, charged_amount FROM marts.fct_instalments
        WHERE loan_id = 'F397' ORDER BY instalment_number""").fetchall())
    assert charged == {1: Decimal("0.00"), 2: Decimal("20.00"), 3: Decimal("20.00"), 4: Decimal("0.00")}


def test_f417_installment_level_loan_goes_into_delinquency_pause(con):
    """F l.417 "Verify Installment level loan delinquency - loan goes into delinquency pause".

    Differs (pause): a PAUSE from 11-17 to 11-30 freezes Fineract's instalment ranges at their 11-16
    values through 11-30, and on 2024-01-01 it subtracts the 13 paused days from every instalment
    (#1 92 − 13 = 79 and #2 77 − 13 = 64: RANGE_60; #3 62 − 13 = 49 and #4 47 − 13 = 34: RANGE_30).
    METRICS has no pause: DPD = D − 10-01 = 46, 47, 60 (31-60) and 92 (91-180) on 2024-01-01."""
    # Fineract 11-16, 11-17, 11-30: RANGE_1 250.00, RANGE_3 250.00, RANGE_30 500.00
    # Fineract 2024-01-01: RANGE_30 500.00, RANGE_60 500.00
    check(con, "F417", {"2023-11-16": overdue(46, "31-60", "1000.00", "1000.00"),
                        "2023-11-17": overdue(47, "31-60", "1000.00", "1000.00"),
                        "2023-11-30": overdue(60, "31-60", "1000.00", "1000.00"),
                        "2024-01-01": overdue(92, "91-180", "1000.00", "1000.00")})


def test_f462_installment_level_pause_then_resume(con):
    """F l.462 "Verify Installment level loan delinquency - loan goes into delinquency pause then
    will be resumed".

    Differs (pause): paused from 11-17, resumed 12-01 (14 days), Fineract's ranges at 12-01 are still
    RANGE_1 250 (#4: 16 − 14 = 2 days), RANGE_3 250 (#3: 31 − 14 = 17), RANGE_30 500 (#2: 46 − 14,
    #1: 61 − 14 = 47). METRICS: DPD 12-01 − 10-01 = 61 → 61-90."""
    # Fineract 11-16, 11-17 and 12-01: RANGE_1 250.00, RANGE_3 250.00, RANGE_30 500.00
    check(con, "F462", {"2023-11-16": overdue(46, "31-60", "1000.00", "1000.00"),
                        "2023-11-17": overdue(47, "31-60", "1000.00", "1000.00"),
                        "2023-12-01": overdue(61, "61-90", "1000.00", "1000.00")})


def test_f537_full_pause_period(con):
    """F l.537 "Verify Loan delinquency pause E2E - full PAUSE period".

    Fineract's pastDueDays (1, 3, 4, 5, 29, 30) and delinquentAmount (250, 250, 250, 250, 500,
    500) are METRICS's DPD and past due: #2 (due 10-16) counts from 10-17, #3 (due 10-31) not yet on
    10-31. Differs (grace, pause): with graceOnArrearsAgeing 3 Fineract's delinquentDate is 10-04 and
    the loan is NO_DELINQUENCY on 10-02 and 10-04 (delinquentDays 0), RANGE_1 from 10-05
    (delinquentDays 4 − 3 = 1); the pause 10-06 to 10-30 (24 days) keeps it there: 10-31 is
    30 − 3 − 24 = 3 delinquent days. METRICS: overdue, bucket 1-30, from 10-02."""
    # Fineract (classification, delinquentAmount, delinquentDate, delinquentDays, pastDueDays):
    # 10-02: NO_DELINQUENCY 250.0 2023-10-04 0 1      10-04: NO_DELINQUENCY 250.0 2023-10-04 0 3
    # 10-05: RANGE_1 250.0 2023-10-04 1 4 (INSTALLMENT level RANGE_3 250.00)
    # 10-06: RANGE_1 250.0 2023-10-04 2 5             10-30: RANGE_1 500.0 2023-10-04 2 29
    # 10-31: RANGE_1 500.0 2023-10-04 3 30
    check(con, "F537", {"2023-10-02": overdue(1, "1-30", "1000.00", "250.00"),
                        "2023-10-04": overdue(3, "1-30", "1000.00", "250.00"),
                        "2023-10-05": overdue(4, "1-30", "1000.00", "250.00"),
                        "2023-10-06": overdue(5, "1-30", "1000.00", "250.00"),
                        "2023-10-30": overdue(29, "1-30", "1000.00", "500.00"),
                        "2023-10-31": overdue(30, "1-30", "1000.00", "500.00")})


def test_f608_pause_period_with_resume(con):
    """F l.608 "Verify Loan delinquency pause E2E - PAUSE period with RESUME".

    Differs (grace, pause): Fineract's delinquentDays are 14 − 3 = 11 on 10-15 and 25 − 3 − 10 = 12
    on 10-26 (paused 10-15 to the resume on 10-25), and the loan is NO_DELINQUENCY both days.
    METRICS: DPD 14 and 25 (its pastDueDays), overdue, 1-30."""
    # Fineract 10-15: NO_DELINQUENCY 250.0 2023-10-04 11 14;  10-26: NO_DELINQUENCY 500.0 2023-10-04 12 25
    check(con, "F608", {"2023-10-15": overdue(14, "1-30", "1000.00", "250.00"),
                        "2023-10-26": overdue(25, "1-30", "1000.00", "500.00")})


def test_f649_pause_with_resume_and_second_pause(con):
    """F l.649 "Verify Loan delinquency pause E2E - PAUSE period with RESUME and second PAUSE".

    Differs (grace, pause, ranges): Fineract's delinquentDays = pastDueDays − 3 − paused days: 11-13:
    43 − 3 − 10 = 30 (RANGE_3, 4-30); 11-14: 44 − 13 = 31, yet still RANGE_3 because the second pause
    (11-14 to 11-30) has begun and freezes the range; 11-30: 60 − 13 − 16 = 31; 12-01: 32 → RANGE_30.
    METRICS: DPD 43, 44 and 60 → 31-60 (from 11-01, DPD 31), 61 → 61-90 on 12-01; past due 750
    (#1-#3) on 11-13 and 11-14, 1000 from 11-16."""
    # Fineract 10-15: NO_DELINQUENCY 250.0 11 14     10-26: NO_DELINQUENCY 500.0 12 25
    # 11-13: RANGE_3 750.0 30 43 (INSTALLMENT level RANGE_1 250, RANGE_3 250, RANGE_30 250)
    # 11-14: RANGE_3 750.0 31 44     11-30: RANGE_3 1000.0 31 60
    # 12-01: RANGE_30 1000.0 32 61 (INSTALLMENT level RANGE_3 500, RANGE_30 250)
    check(con, "F649", {"2023-10-15": overdue(14, "1-30", "1000.00", "250.00"),
                        "2023-10-26": overdue(25, "1-30", "1000.00", "500.00"),
                        "2023-11-13": overdue(43, "31-60", "1000.00", "750.00"),
                        "2023-11-14": overdue(44, "31-60", "1000.00", "750.00"),
                        "2023-11-30": overdue(60, "31-60", "1000.00", "1000.00"),
                        "2023-12-01": overdue(61, "61-90", "1000.00", "1000.00")})


def test_f770_full_repayment_of_late_and_due_installments_during_pause(con):
    """F l.770 "Verify Loan delinquency pause E2E - full repayment (late/due date) during PAUSE
    period": 500 paid on 10-16 pays #1 (late) and #2 (due that day): nothing past due, current with
    500.00 (as Fineract). Before the payment on 10-16 (loan F770-0): DPD 15, 250.00.

    Differs (grace, pause) only in delinquentDays (2 on 10-06: 5 − 3, the pause beginning that
    day) and the classification NO_DELINQUENCY; METRICS: overdue 1-30."""
    # Fineract 10-06: NO_DELINQUENCY 250.0 2023-10-04 2 5; 10-16 before the repayment: NO_DELINQUENCY 250.0 2 15
    # after: NO_DELINQUENCY 0.0 null 0 0, INSTALLMENT level null
    check(con, "F770-0", {"2023-10-16": overdue(15, "1-30", "1000.00", "250.00")})
    check(con, "F770-1", {"2023-10-06": overdue(5, "1-30", "1000.00", "250.00"),
                          "2023-10-16": current("500.00")})


def test_f816_partial_repayment_during_pause(con):
    """F l.816 "Verify Loan delinquency pause E2E - partial repayment during PAUSE period": 150 paid
    on 10-16 leaves 100 of #1 (due 10-01): DPD 15, past due 100.00, principal 850.00, as Fineract's
    pastDueDays and delinquentAmount. Differs (grace, pause): delinquentDays 2 (RANGE_1)."""
    # Fineract 10-16 before: NO_DELINQUENCY 250.0 2 15; after: RANGE_1 100.0 2023-10-04 2 15 (INSTALLMENT RANGE_3 100.00)
    check(con, "F816-0", {"2023-10-16": overdue(15, "1-30", "1000.00", "250.00")})
    check(con, "F816-1", {"2023-10-06": overdue(5, "1-30", "1000.00", "250.00"),
                          "2023-10-16": overdue(15, "1-30", "850.00", "100.00")})


def test_f865_full_repayment_of_late_installment_during_pause_then_resume(con):
    """F l.865 "Verify Loan delinquency pause E2E - full repayment (only late) during PAUSE period
    then RESUME".

    250 paid on 10-16 pays #1; #2, due that day, is not past due: current with 750.00. #2 counts
    from 10-17: DPD 10 on 10-26 (250.00), 30 on 11-15 (#2 and #3, 500.00; #4 is due that day).
    Differs (grace, pause): Fineract's delinquentDate is 10-16 + 3 = 10-19; delinquentDays 0 on
    10-26 (10 − 3 − 19 paused days, 10-06 to the resume on 10-25, below 0) and 30 − 3 − 19 = 8
    (RANGE_3) on 11-15. METRICS: overdue, 1-30, both days."""
    # Fineract 10-16 before: NO_DELINQUENCY 250.0 2 15; after: NO_DELINQUENCY 0.0 null 0 0
    # 10-26: NO_DELINQUENCY 250.0 2023-10-19 0 10;  11-15: RANGE_3 500.0 2023-10-19 8 30 (INSTALLMENT RANGE_3 250.00)
    check(con, "F865-0", {"2023-10-16": overdue(15, "1-30", "1000.00", "250.00")})
    check(con, "F865-1", {"2023-10-06": overdue(5, "1-30", "1000.00", "250.00"),
                          "2023-10-16": current("750.00"),
                          "2023-10-26": overdue(10, "1-30", "750.00", "250.00"),
                          "2023-11-15": overdue(30, "1-30", "750.00", "500.00")})


def test_f948_resume_on_the_day_continuous_pauses_meet(con):
    """F l.948 "Verify that in case of resume on end/start date of continous pause periods first
    period ends automatically, second period ended by resume".

    Differs (grace, pause): Fineract's delinquentDays 21 on 10-30 (29 − 3 − 5 paused from 10-25) and
    22 on 10-31 (30 − 3 − 5), NO_DELINQUENCY. METRICS: DPD 29 and 30 (#3, due 10-31, not yet past
    due), 500.00, 1-30."""
    # Fineract 10-30: NO_DELINQUENCY 500.0 2023-10-04 21 29;  10-31: NO_DELINQUENCY 500.0 2023-10-04 22 30
    check(con, "F948", {"2023-10-30": overdue(29, "1-30", "1000.00", "500.00"),
                        "2023-10-31": overdue(30, "1-30", "1000.00", "500.00")})


def test_f1014_backdated_pause(con):
    """F l.1014 "Verify Backdated Pause Delinquency - Event Trigger: LoanDelinquencyRangeChangeBusinessEvent,
    LoanAccountDelinquencyPauseChangedBusinessEvent check".

    Differs (grace, pause): delinquentDays 21 on 10-25 (24 − 3) and still 21 on 10-27 (26 − 3 − 2: a
    pause entered on 10-27 from 10-25). METRICS: DPD 24 and 26, 500.00, 1-30."""
    # Fineract 10-25: RANGE_3 500.0 2023-10-04 21 24;  10-27: RANGE_3 500.0 2023-10-04 21 26
    check(con, "F1014", {"2023-10-25": overdue(24, "1-30", "1000.00", "500.00"),
                         "2023-10-27": overdue(26, "1-30", "1000.00", "500.00")})


def test_f1049_pause_uses_the_business_date(con):
    """F l.1049 "Verify that for pause period calculations business date is being used instead of COB
    date".

    250 paid on the day of disbursement pays the down payment: current with 750.00 on 10-01. #2
    (due 10-16) is past due from 10-17: DPD 10, 11, 12, 13 on 10-26 … 10-29, 250.00. Differs (grace,
    pause): Fineract's delinquentDate 10-19 and a pause 10-16 to 10-25 (9 days) keep the loan
    NO_DELINQUENCY through 10-28 (10 − 3 − 9 < 0 … 12 − 3 − 9 = 0) and RANGE_1 on 10-29 (13 − 12 = 1).
    METRICS: overdue 1-30 on all four days."""
    # Fineract 10-26: NO_DELINQUENCY 250.0 2023-10-19 0 10;  10-27: … 0 11;  10-28: … 0 12
    # 10-29: RANGE_1 250.0 2023-10-19 1 13 (INSTALLMENT level RANGE_3 250.00)
    check(con, "F1049", {"2023-10-01": current("750.00"),
                         "2023-10-26": overdue(10, "1-30", "750.00", "250.00"),
                         "2023-10-27": overdue(11, "1-30", "750.00", "250.00"),
                         "2023-10-28": overdue(12, "1-30", "750.00", "250.00"),
                         "2023-10-29": overdue(13, "1-30", "750.00", "250.00")})


def test_f1136_delinquency_range_is_set_for_a_delinquent_loan(con):
    """F l.1136 "Verify that delinquencyRange field in LoanAccountDelinquencyRangeDataV1 is not null
    in case of delinquent Loan".

    Differs (grace, range boundary): on 12-01 Fineract counts 61 − 3 = 58 delinquent days: RANGE_30
    (31-60). METRICS: DPD 61 → 61-90."""
    # Fineract 12-01: RANGE_30 1000.0 2023-10-04 58 61
    check(con, "F1136", {"2023-12-01": overdue(61, "61-90", "1000.00", "1000.00")})


# ============================ DelinquencyBucketsIntegrationTest =================================

def test_b314_loan_classification_realtime(con):
    """IT DelinquencyBucketsIntegrationTest.java l.314 testLoanClassificationRealtime: business date
    2012-03-01, loan disbursed 50 days before (2012-01-11; #1 1033.33 due 02-11), ranges 1-3, 4-60.

    At 03-01: DPD 19 (Fineract: range 4-60, no grace in this product). 100 paid on 03-01 goes to #1's
    interest (penalty, fee, interest, principal): 933.33 still past due, principal 10000.00, still
    4-60 in Fineract. 1000 more pays #1 (1100 − 1033.33 = 66.67 to #2's interest): current with
    10000 − 833.33 = 9166.67 (Fineract: no range). Fineract's 4-60 spans METRICS's 1-30 and
    31-60."""
    # Fineract: after disbursement range 4-60; after 100: 4-60; after 1000 more: delinquencyRange null
    check(con, "B314-0", {"2012-03-01": overdue(19, "1-30", "10000.00", "1033.33")})
    check(con, "B314-1", {"2012-03-01": overdue(19, "1-30", "10000.00", "933.33")})
    check(con, "B314-2", {"2012-03-01": current("9166.67")})


def test_b413_loan_classification_realtime_with_charges(con):
    """IT DelinquencyBucketsIntegrationTest.java l.413 testLoanClassificationRealtimeWithCharges:
    business date 2012-04-01, loan disbursed 2 months and 5 days before (2012-01-27: #1 due 02-27,
    #2 03-27), ranges 1-3, 4-60.

    At 04-01: DPD 34 (02-27 → 03-27 is 29 days in 2012, then 5), 2049.99 past due: Fineract range
    4-60, METRICS 31-60. 2049.99 paid on 04-01 pays #1 and #2: current with 8333.34 (Fineract: no
    range). The charge that follows: next test."""
    # Fineract: after disbursement range 4-60; after the repayment of 2049.99: delinquencyRange null
    check(con, "B413-0", {"2012-04-01": overdue(34, "31-60", "10000.00", "2049.99")})
    check(con, "B413-1", {"2012-04-01": current("8333.34")})


def test_b413_a_charge_due_before_the_business_date_makes_the_loan_delinquent_again(con):
    """IT DelinquencyBucketsIntegrationTest.java l.413 testLoanClassificationRealtimeWithCharges, its
    last step: after the repayment, a specified-due-date fee (ChargesHelper.getLoanSpecifiedDueDateJSON
    (1, "30", false): flat, not a penalty; applied with amount 12) due 2012-03-14 (04-01 − 18 days)
    is added on 04-01. It goes with #2 (the first instalment due on or after 03-14, due 03-27),
    which owes 12.00 again: on 04-01 DPD 5 (03-27 → 04-01), past due 12.00, all of it a fee;
    principal 8333.34 (Fineract: range 4-60 again, 5 days and no grace; METRICS 1-30)."""
    # Fineract after the charge: delinquencyRange 4-60
    check(con, "B413-2", {"2012-04-01": overdue(5, "1-30", "8333.34", "12.00", "12.00")})


def test_b510_loan_classification_realtime_older_loan(con):
    """IT DelinquencyBucketsIntegrationTest.java l.510 testLoanClassificationRealtimeOlderLoan (dates
    relative to the machine's date, fixed at today = 2012-03-01): disbursed 85 days before
    (2011-12-07: #1 due 01-07, #2 02-07, #3 03-07), ranges 4-30, 31-60, 61-90; repayments dated the
    day before today (02-29).

    At 03-01: DPD 54 (01-07 → 02-07 → 03-01: 31 + 23), 2049.99: 31-60 in both. 1050 pays #1
    (1033.33) and 16.67 of #2's interest: #2 owes 166.66 + 833.33 = 999.99, DPD 23 → Fineract 4-30,
    METRICS 1-30; principal 9166.67. 1020 more pays #2 and 20.01 of #3's interest (#3 is due 03-07):
    current with 8333.34 (Fineract: no range)."""
    # Fineract: after disbursement 31-60; after 1050: 4-30; after 1020 more: delinquencyRange null
    check(con, "B510-0", {"2012-03-01": overdue(54, "31-60", "10000.00", "2049.99")})
    check(con, "B510-1", {"2012-03-01": overdue(23, "1-30", "9166.67", "999.99")})
    check(con, "B510-2", {"2012-03-01": current("8333.34")})


def test_b620_loan_classification_realtime_with_reversed_repayment(con):
    """IT DelinquencyBucketsIntegrationTest.java l.620 testLoanClassificationRealtimeWithReversedRepayment
    (relative dates, today = 2012-03-01): disbursed 50 days before (2012-01-11, #1 due 02-11), range
    4-30.

    At 03-01 DPD 19, 1033.33 (Fineract 4-30). 1050 paid that day: current with 9166.67 (Fineract: no
    range). The repayment reversed: void from the start, the loan is as before it: DPD 19, 1033.33,
    10000.00 (Fineract: 4-30 again)."""
    # Fineract: after disbursement 4-30; after the repayment: null; after its reversal: 4-30
    check(con, "B620-0", {"2012-03-01": overdue(19, "1-30", "10000.00", "1033.33")})
    check(con, "B620-1", {"2012-03-01": current("9166.67")})
    check(con, "B620-2", {"2012-03-01": overdue(19, "1-30", "10000.00", "1033.33")})


def test_b809_loan_classification_step_as_part_of_cob(con):
    """IT DelinquencyBucketsIntegrationTest.java l.809 testLoanClassificationStepAsPartOfCOB:
    business date 2012-04-01, loan disbursed 31 days before (2012-03-01, #1 due 04-01), ranges 1-3,
    4-60. On 04-01 #1 is due, not past due: current (Fineract: no range). On 04-04: DPD 3, 1033.33
    (Fineract: range 1-3; METRICS 1-30)."""
    # Fineract: COB on 04-01: delinquencyRange null; COB on 04-04: range 1-3
    check(con, "B809", {"2012-04-01": current("10000.00"),
                        "2012-04-04": overdue(3, "1-30", "10000.00", "1033.33")})


def test_b913_b994_no_delinquency_before_the_first_due_date(con):
    """IT DelinquencyBucketsIntegrationTest.java l.913 testLoanClassificationToValidateNegatives and
    l.994 testLoanClassificationUsingAgeingArrears: disbursed 2012-01-01 (#1 due 02-01), at 01-31
    delinquentDays 0 and pastDueDays 0: current, DPD 0. l.994 changes the product's in-arrears
    tolerance from 3 to 0, which neither Fineract's delinquency nor METRICS uses."""
    # Fineract 01-31: delinquentDays 0, pastDueDays 0 (both tests)
    check(con, "B913", {"2012-01-31": current("10000.00")})
    check(con, "B994", {"2012-01-31": current("10000.00")})


def _b_pause_figures(*days: str) -> dict[str, tuple]:
    """Loans issued 2012-01-01 without a payment: #1 (1033.33) due 02-01, #2 (1016.66) due 03-01."""
    figures = {"2012-02-06": overdue(5, "1-30", "10000.00", "1033.33"),
               "2012-02-09": overdue(8, "1-30", "10000.00", "1033.33"),
               "2012-02-13": overdue(12, "1-30", "10000.00", "1033.33"),
               "2012-02-23": overdue(22, "1-30", "10000.00", "1033.33"),
               "2012-03-12": overdue(40, "31-60", "10000.00", "2049.99"),
               "2012-03-14": overdue(42, "31-60", "10000.00", "2049.99")}
    return {day: figures[day] for day in days}


def test_b1085_pause_letting_pause_expire(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1085 testDelinquencyWithPauseLettingPauseExpire:
    disbursed 2012-01-01, ranges 1-3, 4-60, in-arrears tolerance 3.

    Differs (pause): paused 02-06 to 02-10, Fineract's delinquentDays stay 5 on 02-09 (8 − 3 days of
    the running pause) and are 40 − 4 = 36 on 03-12. METRICS: DPD 5, 8, 40 (02-01 → 03-12 in a leap
    year: 28 + 12); past due 1033.33, then 2049.99 with #2 (due 03-01)."""
    # Fineract (delinquentDate, delinquentAmount, delinquentDays): 02-06: 2012-02-01 1033.33 5;
    # 02-09: 2012-02-01 1033.33 5;  03-12: 2012-02-01 2049.99 36
    check(con, "B1085", _b_pause_figures("2012-02-06", "2012-02-09", "2012-03-12"))


def test_b1137_pause_resumed_before_it_expires(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1137 testDelinquencyWithPauseResumeBeforePauseExpires.

    Differs (pause): paused 02-06 to 03-10, resumed on 02-10 (4 days): Fineract 5, 5, 36 delinquent
    days on 02-06, 02-09, 03-12. METRICS: DPD 5, 8, 40."""
    # Fineract: 02-06: 2012-02-01 1033.33 5;  02-09: 1033.33 5;  03-12: 2049.99 36
    check(con, "B1137", _b_pause_figures("2012-02-06", "2012-02-09", "2012-03-12"))


def test_b1192_multiple_pause_periods(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1192 testDelinquencyWithMultiplePausePeriods.

    Differs (pause): paused 02-06 to the resume of 02-10 (4 days), 02-13 to 02-18 (5), 02-23 to the
    resume of 02-25 (2): Fineract's delinquentDays 5 (02-06), 5 (02-09, paused), 12 − 4 = 8 (02-13),
    22 − 9 = 13 (02-23), 40 − 11 = 29 (03-12). METRICS: DPD 5, 8, 12, 22, 40."""
    # Fineract: 02-06: 1033.33 5;  02-09: 1033.33 5;  02-13: 1033.33 8;  02-23: 1033.33 13;  03-12: 2049.99 29
    check(con, "B1192", _b_pause_figures("2012-02-06", "2012-02-09", "2012-02-13", "2012-02-23", "2012-03-12"))


def test_b1275_multiple_pause_periods_installment_level(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1275
    testDelinquencyWithMultiplePausePeriodsWithInstallmentLevelDelinquency: the same pauses, the last
    check on 03-14.

    Differs (pause, ranges): Fineract 5, 5, 8, 13, then 42 − 11 = 31 delinquent days on 03-14, with
    the instalments in two ranges (1016.66 and 1033.33). METRICS: DPD 5, 8, 12, 22, 42 (31-60), past
    due 2049.99 on 03-14."""
    # Fineract 03-14: delinquentAmount 2049.99, delinquentDate 2012-02-01, delinquentDays 31;
    # INSTALLMENT level 1016.66 and 1033.33
    check(con, "B1275", _b_pause_figures("2012-02-06", "2012-02-09", "2012-02-13", "2012-02-23", "2012-03-14"))


def test_b1356_loan_classification_only_for_active_loan(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1356 testLoanClassificationOnlyForActiveLoan
    (relative dates, today = 2012-03-01): disbursed 37 days before (2012-01-24, #1 due 02-24).
    Fineract asserts delinquentDays and delinquentAmount other than 0 once disbursed (the check
    before disbursement has no counterpart: the contract carries disbursed loans). METRICS: DPD 6,
    1033.33."""
    # Fineract after disbursement: delinquentDays != 0, delinquentAmount != 0
    check(con, "B1356", {"2012-03-01": overdue(6, "1-30", "10000.00", "1033.33")})


def test_b1468_delinquent_amount_per_portion(con):
    """IT DelinquencyBucketsIntegrationTest.java l.1468 testLoanDelinquencyDataWithAmountPerPortions
    (relative dates, today = 2012-03-01): 2000 disbursed 50 days before (2012-01-11; #1 312.95
    principal + 246.00 interest due 02-11), repayments dated the day of disbursement. The loan's
    strategy (due-penalty-interest-principal-fee-in-advance-penalty-interest-principal-fee) pays
    interest before principal, as METRICS's allocation_order.

    At 03-01 #1 is 19 days past due. 120 pays interest: 438.95 past due (Fineract: principal 312.95,
    interest 126). 330.72 more pays 126.00 interest and 204.72 principal: 108.23 of principal past
    due, principal outstanding 2000 − 204.72 = 1795.28 (Fineract 108.23 / 0). 108.23 more: current
    with 1687.05 (Fineract 0 / 0, no range). That repayment reversed: as before it (108.23 / 0)."""
    # Fineract (delinquentPrincipal, delinquentInterest): 312.95 246; after 120: 312.95 126;
    # after 330.72: 108.23 0; after 108.23: 0 0 and no range; after its reversal: 108.23 0
    check(con, "B1468-0", {"2012-03-01": overdue(19, "1-30", "2000.00", "558.95")})
    check(con, "B1468-1", {"2012-03-01": overdue(19, "1-30", "2000.00", "438.95")})
    check(con, "B1468-2", {"2012-03-01": overdue(19, "1-30", "1795.28", "108.23")})
    check(con, "B1468-3", {"2012-03-01": current("1687.05")})
    check(con, "B1468-4", {"2012-03-01": overdue(19, "1-30", "1795.28", "108.23")})


# ============================ DelinquencyActionIntegrationTests =================================

def test_a264_backdated_pause_recalculates_delinquency(con):
    """IT DelinquencyActionIntegrationTests.java l.264
    testVerifyLoanDelinquencyRecalculationForBackdatedPauseDelinquencyAction: business date
    2023-01-30; 1000 disbursed 2022-12-25 with a 25 % down payment repaid automatically that day,
    then 250 due every 30 days (2023-01-24, 02-23, 03-25); ranges 1-3, 4-10, 11-60, 61+.

    Fineract: 6 delinquent days (range 4-10, 250) before a pause from 01-27 is entered, then
    6 − 3 = 3 (range 1-3). Differs (pause): METRICS DPD 6 (01-24 → 01-30), past due 250.00,
    principal 750.00."""
    # Fineract 01-30: delinquentDays 6, INSTALLMENT level 4-10 250.0; after the backdated pause: 3, 1-3 250.0
    check(con, "A264", {"2023-01-30": overdue(6, "1-30", "750.00", "250.00")})


def test_a327_delinquency_after_the_pause_ended(con):
    """IT DelinquencyActionIntegrationTests.java l.327
    testLoanAndInstallmentDelinquencyCalculationForCOBAfterPausePeriodEndTest: 100 disbursed
    2023-11-01 (of 1000 approved) with 25 down and repaid that day, then 25 due every 15 days (11-16,
    12-01, 12-16); graceOnArrearsAgeing 0.

    Differs (pause): paused 11-16 to 11-25 (9 days), on 11-26 Fineract counts 10 − 9 = 1 delinquent
    day (range 1-3, 25). METRICS: DPD 10, past due 25.00, principal 75.00."""
    # Fineract 11-26: delinquentDays 1, INSTALLMENT level 1-3 25.0
    check(con, "A327", {"2023-11-26": overdue(10, "1-30", "75.00", "25.00")})


# ========================= LoanDelinquencyForNonActiveAccountsTest ==============================

def test_n140_closed_loan_has_no_delinquency(con):
    """IT LoanDelinquencyForNonActiveAccountsTest.java l.140 testDelinquencyCalculationsForClosedLoanAccount:
    1000 disbursed (back-dated) 2024-05-06 on business date 06-17: #1 (250, due 06-05) is 12 days
    past due. 1000 paid on 06-17 closes the loan: closed, 0 owed (as Fineract)."""
    # Fineract 06-17: 12 days, 250.0 (INSTALLMENT level 11-30 250.0); after the repayment: 0, 0.0
    check(con, "N140-0", {"2024-06-17": overdue(12, "1-30", "1000.00", "250.00")})
    check(con, "N140-1", {"2024-06-17": CLOSED})


def test_n184_overpaid_loan_has_no_delinquency(con):
    """IT LoanDelinquencyForNonActiveAccountsTest.java l.184 testDelinquencyCalculationsForOverPaidLoanAccount:
    as l.140, but 1200 paid: every instalment is paid and 200 is a credit balance. Fineract's status
    is OVERPAID (700), whose delinquency is 0; METRICS: no instalment open, so closed."""
    # Fineract 06-17: 12 days, 250.0; after the over-payment: 0, 0.0
    check(con, "N184-0", {"2024-06-17": overdue(12, "1-30", "1000.00", "250.00")})
    check(con, "N184-1", {"2024-06-17": CLOSED})


# ======================= InstallmentLevelDelinquencyAPIIntegrationTests =========================

def test_i55_four_ranges_in_the_bucket(con):
    """IT InstallmentLevelDelinquencyAPIIntegrationTests.java l.55
    testInstallmentLevelDelinquencyFourRangesInTheBucket (and l.168, 253, 298, 347, 419, which check
    the same loan's 120 days and 1250.0 with the installment-level setting on or off): 1250 issued
    2023-01-01, ranges 1-10, 11-30, 31-60, 61+, business date 05-31.

    Fineract's loan-level delinquentDays are the days past due here (120, 60, 60, 0), as METRICS's
    DPD. At 05-31 every instalment is past due: DPD 120 (01-31 → 05-31), 1250.00, 91-180. 626 pays #1,
    #2 and 2 of #3: #3 (310, due 04-01) and #4 (314): DPD 60, 624.00, 31-60, principal 624.00. 100
    more: 524.00. 524 more: closed."""
    # Fineract: 120 1250.0 (11-30: 314, 31-60: 312, 61+: 624); after 626: 60 624.0 (11-30: 314, 31-60: 310);
    # after 100: 60 524.0 (314, 210); after 524: 0 0.0
    check(con, "I55-0", {"2023-05-31": overdue(120, "91-180", "1250.00", "1250.00")})
    check(con, "I55-1", {"2023-05-31": overdue(60, "31-60", "624.00", "624.00")})
    check(con, "I55-2", {"2023-05-31": overdue(60, "31-60", "524.00", "524.00")})
    check(con, "I55-3", {"2023-05-31": CLOSED})


def test_i118_two_ranges_in_the_bucket(con):
    """IT InstallmentLevelDelinquencyAPIIntegrationTests.java l.118
    testInstallmentLevelDelinquencyTwoRangesInTheBucket: before the payment as l.55 (120, 1250.0).
    313 paid on 05-31 pays #1 and 1 of #2: #2 (due 03-02) is the oldest: DPD 90, 937.00, 61-90."""
    # Fineract after 313: 90 937.0 (1-60: 626, 61+: 311)
    check(con, "I118", {"2023-05-31": overdue(90, "61-90", "937.00", "937.00")})


def test_i207_installment_level_updated_when_cob_is_executed(con):
    """IT InstallmentLevelDelinquencyAPIIntegrationTests.java l.207
    testInstallmentLevelDelinquencyUpdatedWhenCOBIsExecuted: ranges 1-1, 2+; on 02-01 #1 (312, due
    01-31) is 1 day past due, on 02-02 2 days (Fineract moves it to the second range). METRICS: DPD
    1 and 2, 312.00, 1-30 both days."""
    # Fineract 02-01: 1 312.0 (1-1: 312);  02-02: 2 312.0 (2+: 312)
    check(con, "I207", {"2023-02-01": overdue(1, "1-30", "1250.00", "312.00"),
                        "2023-02-02": overdue(2, "1-30", "1250.00", "312.00")})
