"""An Apache Fineract export loaded through the shipped mapping (examples/mappings/fineract.toml;
issue 39), every figure by hand (METRICS v3). tests/fineract.py writes the export as PostgreSQL's
`\\copy (select * from T) to 'T.csv' csv header` does, with Fineract's columns and codes: m_client,
m_loan, m_loan_repayment_schedule, m_loan_repayment_schedule_history, m_loan_reschedule_request,
m_loan_transaction, m_loan_charge. Ten clients; 22 disbursed loans and 4 never disbursed (100
submitted, 200 approved, 400 withdrawn, 500 rejected: left out). Money in USD, dates 2024; the data
date is 06-15 (L18's last repayment). "k x 100 due the 10th" means k instalments from the month
after disbursal. Fineract's charge placement (a charge due in an instalment's period, its due date
included, is collected with it) is METRICS'.

  L1  300 on 01-10, 3 x 100 due the 10th, each paid on its day: closed (600) from 04-10.
  L2  300 on 01-15, 3 x 100 due the 15th; a fee of 15 (charge time 2) due 02-15: with instalment 1.
      115 on 02-15 pays fee 15 + principal 100; 100 on 03-15. At 04-30: DPD 15, past due 100.00,
      principal 100.00; at 06-15: DPD 61.
  L3  300 on 01-10, 3 x 100 due the 10th; instalment 1 late: a late-payment penalty of 10 (time 9,
      is_penalty t) due 02-13, with instalment 2 (its period 02-10..03-10). 100 on 02-20 pays
      instalment 1; 100 on 03-10 pays penalty 10 + principal 90, leaving 10 of instalment 2.
      02-15: DPD 5, past due 100.00 (the penalty is not due), principal 300.00. 03-15: DPD 5,
      past due 10.00, principal 110.00. 04-30: DPD 51 (since 03-10), past due 110.00. 06-15: DPD 97.
  L4  1200 at 12 % flat on 01-05: 3 x (400 + 12) due the 5th. Interest waived (type 4) 12 on 02-05,
      at the same moment as 400 paid (a waiver before a payment): instalment 1's interest goes, the
      400 pays its principal. 412 on 03-05 and 04-05: closed from 04-05. At 02-29: current, 800.00.
  L5  300 on 01-20, 3 x 100 due the 20th; a fee of 20 due 03-20 (instalment 2) waived (type 9, fee
      portion 20) on 03-18. 100 on 02-20 and 03-20. 04-30: DPD 10, past due 100.00, principal
      100.00; 06-15: DPD 56.
  L6  as L5's terms; instalment 1 late: a penalty of 15 due 02-23 (instalment 2), waived on business
      date 02-28 (type 9, penalty portion; Fineract dates it 02-23, the charge's due date). 100 on
      02-25, 03-20, 04-20: closed from 04-20. 02-24: DPD 4, past due 100.00, principal 300.00.
  L7  300 on 01-12, 3 x 100 due the 12th. 100 on 02-12 reversed on 02-16 (is_reversed t): void from
      the start. 100 on 02-22 and 03-12. 02-14: DPD 2, past due 100.00, principal 300.00; 02-29:
      current, 200.00; 04-30: DPD 18; 06-15: DPD 64.
  L8  600 on 01-08, 3 x 200 due the 8th; 200 on 02-08; written off (601, type 6) on 05-10 with 400.00
      outstanding at the end of 05-09; a recovery repayment (type 8) of 150 on 06-12. 04-30: DPD 53,
      past due 400.00, principal 400.00.
  L9  300 on 01-25, 3 x 100 due the 25th; nothing paid; written off on 05-28 (300.00). A recovery of
      60 on 06-05 reversed on 06-06, and 60 on 06-07: recovered 60.00. 04-30: DPD 65, past due 300.00.
  L10 300 on 02-01, 3 x 100 due the 1st; all 300 repaid early on 02-20: current at 02-19, closed
      from 02-20.
  L11 600 on 01-05, 6 x 100 due the 5th (02-05 .. 07-05); 100 on 02-05; 03-05 missed. A reschedule
      request (from instalment 2, submitted 03-20) approved on 2024-03-22 (entered on business date
      03-25, m_loan.rescheduledon_date): instalments 2-6 a month later (04-05 .. 08-05). Fineract
      writes a complete schedule (instalment 1 too: 600 in all) and archives the first one
      (history version 1). 03-21: DPD 16, past due 100.00, principal 500.00; 03-22: current (the
      new schedule, every event from the start: 02-05's 100 pays its instalment 1); 100 on 04-05
      and 05-05: 04-30 current with 400.00; 06-15: DPD 10, past due 100.00, principal 300.00.
  L12 300 on 02-10, 3 x 100 due the 10th; a rejected (500) and a pending (100) reschedule request:
      its schedule is the one it was issued with. 100 on 03-10 and 04-10. 06-15: DPD 36.
  L13 200 on 01-18, 2 x 100 due the 18th; 100 on 02-18, 150 on 03-18: overpaid (700) by 50 (a
      credit), closed from 03-18.
  L14 600 at 12 % flat on 02-01: 3 x (200 + 6) due the 1st. 206 on 03-01; instalment 2 late: a
      penalty of 10 due 04-04 (instalment 3); 206 on 04-08 pays instalment 2 (interest 6, principal
      200); 216 on 05-01 pays penalty 10, interest 6, principal 200: closed from 05-01. 04-05: DPD 4,
      past due 206.00, principal 400.00; 04-30: current, 200.00.
  L15 300 on 03-01, 3 x 100 due the 1st; a fee of 25 due 04-01 (instalment 1); 100 on 04-01 pays
      fee 25 and principal 75. 04-30: DPD 29, past due 25.00, principal 225.00; 06-15: DPD 75, past
      due 225.00.
  L16 300 on 03-05, 3 x 100 due the 5th; a fee of 10 due 04-05 (instalment 1); nothing paid. 04-30:
      DPD 25, past due 110.00 of which charges 10.00; 06-15: DPD 71, past due 310.00.
  L17 300 on 02-05, 3 x 100 due the 5th; a fee of 30 added 02-10 and removed 02-12 (is_active f: a
      charge and its reversal): void. 100 on 03-05 and 04-05: 04-30 current with 100.00; 06-15: DPD 41.
  L18 900 at 12 % flat on 03-15: 3 x (300 + 9) due the 15th, each paid on its day; a disbursement
      fee of 9 (time 1) paid at disbursal (type 5): both left out. Closed from 06-15.
  L19 1200 at 12 % flat on 01-10: 3 x (400 + 12); 412 on 02-10; written off on 04-30 with 800.00
      principal outstanding. 04-29: DPD 50, past due 824.00, principal 800.00.
  L20 300 on 02-15 (status 303, transfer in progress: active), 3 x 100 due the 15th; 100 on 03-15
      and 04-15. 06-15: DPD 31.
  L21 600 at 12 % flat on 03-01: 3 x (200 + 6) due the 1st. An interest waiver of 6 on 03-20,
      reversed on 03-22: void. 206 on 04-01; 200 on 05-01 pays interest 6, principal 194. 05-15:
      DPD 14, past due 6.00, principal 206.00; 06-15: DPD 45, past due 212.00.
  L22 200 on 02-01, 2 x 100 due the 1st. 150 paid 04-01; on 04-03 a repayment of 100 dated 03-01 is
      entered: Fineract re-processes, reverses the 150 (its portions change) and writes a copy (a
      new id) that pays principal 100 and overpays 50 (700). Loaded: the 03-01 payment, the 150
      and its reversal, the copy. 03-15: current, 100.00; closed from 04-01.

Write-offs: L19 800.00 (2024-04), L8 400.00 and L9 300.00 (2024-05). Recoveries: L8 150.00, L9
60.00: cohort 2024-04 0.00 of 800.00 (rate 0), 2024-05 210.00 of 700.00 (0.300000), all 210.00 of
1500.00 (0.140000).

Ingest, per file and [[files]] table (read = accepted + duplicates + rejected + left out):
m_client 10 clients. m_loan 26 rows: 22 active versions (4 never disbursed left out), 8 closed
(L1, L4, L6, L10, L14, L18: 600; L13, L22: 700), 3 written off (L8, L9, L19).
m_loan_charge 9: 8 charges (the disbursement fee left out), 1 reversal (L17's).
m_loan_repayment_schedule 79 rows (19 loans x 3, L11 6, L13 and L22 2, the never-disbursed 4 x 3,
records of no loan: unused); history 6 (L11's version 1).
m_loan_transaction 83 rows: 22 disbursements, 44 repayments, 3 recoveries, 2 interest waivers, 2
charge waivers (a fee, a penalty), 1 repayment at disbursement, 3 write-offs, 6 accruals. Payments
47 (44 + 3), payment reversals 3 (L7, L9, L22), waive_interest 2, waive_fee 1, waive_penalty 1,
adjustment reversals 1 (L21).

The loans whose charge is due with an instalment before the last (L2, L3, L15, L16; and the
instalments L5 and L6's waived charges sit on) are test_charges_due_before_the_last_instalment's:
a charge that names no instalment goes with the first due on or after its due date (METRICS §2).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import MAPPINGS, cli, snapshot
from tests.fineract import write_export

MAPPING = MAPPINGS / "fineract.toml"

# {as_of: {loan: (state, dpd, principal_outstanding, past_due_amount, charges_past_due)}}
EXPECTED = {
    "2024-02-14": {"7": ("overdue", 2, "300.00", "100.00", "0.00")},
    "2024-02-15": {"3": ("overdue", 5, "300.00", "100.00", "0.00")},
    "2024-02-19": {"10": ("current", 0, "300.00", "0.00", "0.00")},
    "2024-02-20": {"10": ("closed", 0, "0.00", "0.00", "0.00")},
    "2024-02-24": {"6": ("overdue", 4, "300.00", "100.00", "0.00")},
    "2024-02-29": {"4": ("current", 0, "800.00", "0.00", "0.00"), "7": ("current", 0, "200.00", "0.00", "0.00")},
    "2024-03-15": {"3": ("overdue", 5, "110.00", "10.00", "0.00"), "22": ("current", 0, "100.00", "0.00", "0.00")},
    "2024-03-21": {"11": ("overdue", 16, "500.00", "100.00", "0.00")},
    "2024-03-22": {"11": ("current", 0, "500.00", "0.00", "0.00")},
    "2024-04-05": {"14": ("overdue", 4, "400.00", "206.00", "0.00")},
    "2024-04-29": {"19": ("overdue", 50, "800.00", "824.00", "0.00")},
    "2024-04-30": {
        "1": ("closed", 0, "0.00", "0.00", "0.00"),
        "2": ("overdue", 15, "100.00", "100.00", "0.00"),
        "3": ("overdue", 51, "110.00", "110.00", "0.00"),
        "4": ("closed", 0, "0.00", "0.00", "0.00"),
        "5": ("overdue", 10, "100.00", "100.00", "0.00"),
        "6": ("closed", 0, "0.00", "0.00", "0.00"),
        "7": ("overdue", 18, "100.00", "100.00", "0.00"),
        "8": ("overdue", 53, "400.00", "400.00", "0.00"),
        "9": ("overdue", 65, "300.00", "300.00", "0.00"),
        "10": ("closed", 0, "0.00", "0.00", "0.00"),
        "11": ("current", 0, "400.00", "0.00", "0.00"),
        "12": ("current", 0, "100.00", "0.00", "0.00"),
        "13": ("closed", 0, "0.00", "0.00", "0.00"),
        "14": ("current", 0, "200.00", "0.00", "0.00"),
        "15": ("overdue", 29, "225.00", "25.00", "0.00"),
        "16": ("overdue", 25, "300.00", "110.00", "10.00"),
        "17": ("current", 0, "100.00", "0.00", "0.00"),
        "18": ("current", 0, "600.00", "0.00", "0.00"),
        "19": ("written_off", 0, "0.00", "0.00", "0.00"),
        "20": ("current", 0, "100.00", "0.00", "0.00"),
        "21": ("current", 0, "400.00", "0.00", "0.00"),
        "22": ("closed", 0, "0.00", "0.00", "0.00"),
    },
    "2024-05-15": {"21": ("overdue", 14, "206.00", "6.00", "0.00")},
    "2024-06-15": {
        "1": ("closed", 0, "0.00", "0.00", "0.00"),
        "2": ("overdue", 61, "100.00", "100.00", "0.00"),
        "3": ("overdue", 97, "110.00", "110.00", "0.00"),
        "4": ("closed", 0, "0.00", "0.00", "0.00"),
        "5": ("overdue", 56, "100.00", "100.00", "0.00"),
        "6": ("closed", 0, "0.00", "0.00", "0.00"),
        "7": ("overdue", 64, "100.00", "100.00", "0.00"),
        "8": ("written_off", 0, "0.00", "0.00", "0.00"),
        "9": ("written_off", 0, "0.00", "0.00", "0.00"),
        "10": ("closed", 0, "0.00", "0.00", "0.00"),
        "11": ("overdue", 10, "300.00", "100.00", "0.00"),
        "12": ("overdue", 36, "100.00", "100.00", "0.00"),
        "13": ("closed", 0, "0.00", "0.00", "0.00"),
        "14": ("closed", 0, "0.00", "0.00", "0.00"),
        "15": ("overdue", 75, "225.00", "225.00", "0.00"),
        "16": ("overdue", 71, "300.00", "310.00", "10.00"),
        "17": ("overdue", 41, "100.00", "100.00", "0.00"),
        "18": ("closed", 0, "0.00", "0.00", "0.00"),
        "19": ("written_off", 0, "0.00", "0.00", "0.00"),
        "20": ("overdue", 31, "100.00", "100.00", "0.00"),
        "21": ("overdue", 45, "206.00", "212.00", "0.00"),
        "22": ("closed", 0, "0.00", "0.00", "0.00"),
    },
}
# loans with a charge due with an instalment before the last: see the module's docstring
CHARGE_PLACEMENT = {"3", "15", "16"}

# (file, entity, read, accepted, duplicates, rejected, left out), in the order ingest reads them
ACCOUNTING = [
    ("m_client.csv", "clients", 10, 10, 0, 0, 0),
    ("m_loan.csv", "loans", 26, 22, 0, 0, 4),
    ("m_loan.csv", "loans", 26, 8, 0, 0, 18),
    ("m_loan.csv", "loans", 26, 3, 0, 0, 23),
    ("m_loan_charge.csv", "charges", 9, 8, 0, 0, 1),
    ("m_loan_charge.csv", "charges", 9, 1, 0, 0, 8),
    ("m_loan_repayment_schedule.csv", "instalments", 79, 79, 0, 0, 0),
    ("m_loan_repayment_schedule_history.csv", "instalments", 6, 6, 0, 0, 0),
    ("m_loan_transaction.csv", "payments", 83, 47, 0, 0, 36),
    ("m_loan_transaction.csv", "payments", 83, 3, 0, 0, 80),
    ("m_loan_transaction.csv", "adjustments", 83, 2, 0, 0, 81),
    ("m_loan_transaction.csv", "adjustments", 83, 1, 0, 0, 82),
    ("m_loan_transaction.csv", "adjustments", 83, 1, 0, 0, 82),
    ("m_loan_transaction.csv", "adjustments", 83, 1, 0, 0, 82),
]


def load(home: Path, *folders: Path):
    """Ingest the folders through the shipped mapping into a warehouse at home, one after the
    other, and build it. Returns the settings and, per folder, the FileResults."""
    from loanwatch.config import load_settings
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.ingest.mapping import load_mapping
    from loanwatch.transform.build import build
    from loanwatch.warehouse import open_writer

    settings = load_settings(home, environ={})
    results = []
    for folder in folders:
        with open_writer(settings) as con:
            results.append(ingest_paths(con, [folder], mapping=load_mapping(MAPPING)))
    result = build(settings)
    assert result.status == "success", result.errors
    return settings, results


def accounting(results) -> list[tuple]:
    return [(r.path.name, r.entity, r.rows_read, r.accepted, r.duplicates, r.rejected, r.filtered) for r in results]


@pytest.fixture(scope="module")
def fineract(tmp_path_factory):
    export = write_export(tmp_path_factory.mktemp("fineract_export") / "export")
    settings, (results,) = load(tmp_path_factory.mktemp("fineract"), export)
    return settings, results


@pytest.fixture(scope="module")
def con(fineract):
    with snapshot(fineract[0]) as c:
        yield c


def figures(con, as_of: str) -> dict[str, tuple]:
    from loanwatch.reports.delinquency import loans

    return {r["loan_id"]: (r["state"], r["dpd"], str(r["principal_outstanding"]), str(r["past_due_amount"]),
                           str(r["charges_past_due"]))
            for r in loans(con, dt.date.fromisoformat(as_of)).as_dicts()}


def test_every_table_loads_and_nothing_is_quarantined(fineract):
    _, results = fineract
    assert accounting(results) == ACCOUNTING
    for r in results:
        assert r.rows_read == r.accepted + r.duplicates + r.rejected + r.filtered
    # the code table is read with the schedule, not reported as a file no table matches
    assert "m_loan_reschedule_request.csv" not in {r.path.name for r in results}


@pytest.mark.parametrize("as_of", sorted(EXPECTED))
def test_loan_figures_by_hand(con, as_of):
    got = figures(con, as_of)
    for loan_id, expected in EXPECTED[as_of].items():
        if loan_id not in CHARGE_PLACEMENT:
            assert got[loan_id] == expected, (as_of, loan_id)
    # the never-disbursed loans (23-26) are not loans
    assert set(got) == {str(n) for n in range(1, 23)}


def test_charges_due_before_the_last_instalment(con):
    for as_of, loans in EXPECTED.items():
        got = figures(con, as_of)
        for loan_id, expected in loans.items():
            if loan_id in CHARGE_PLACEMENT:
                assert got[loan_id] == expected, (as_of, loan_id)
    d = Decimal
    # L2's 115 of 02-15: fee 15, principal 100; L15's 100 of 04-01: fee 25, principal 75
    assert allocations(con, ("2", "15")) == [
        ("2", dt.date(2024, 2, 15), d("0.00"), d("15.00"), d("0.00"), d("100.00"), d("0.00")),
        ("2", dt.date(2024, 3, 15), d("0.00"), d("0.00"), d("0.00"), d("100.00"), d("0.00")),
        ("15", dt.date(2024, 4, 1), d("0.00"), d("25.00"), d("0.00"), d("75.00"), d("0.00")),
    ]
    # L5's fee of 20 (waived) and L6's penalty of 15 (waived) are charged to instalment 2
    rows = con.execute("""SELECT loan_id, instalment_number, charged_amount, waived_amount FROM marts.fct_instalments
                          WHERE loan_id IN ('5', '6') ORDER BY loan_id, instalment_number""").fetchall()
    assert rows == [("5", 1, d("0.00"), d("0.00")), ("5", 2, d("20.00"), d("20.00")), ("5", 3, d("0.00"), d("0.00")),
                    ("6", 1, d("0.00"), d("0.00")), ("6", 2, d("15.00"), d("15.00")), ("6", 3, d("0.00"), d("0.00"))]


def allocations(con, loans: tuple[str, ...]) -> list[tuple]:
    return con.execute(f"""
        SELECT loan_id, paid_date, penalty_amount, fee_amount, interest_amount, principal_amount, credit_amount
        FROM marts.fct_payment_allocations WHERE loan_id IN ({', '.join('?' * len(loans))})
        ORDER BY length(loan_id), loan_id, paid_date, payment_id""", list(loans)).fetchall()


def test_payments_reversals_and_waivers(con):
    """Interest before principal (L4, L14, L21), the penalty first (L14's last), a credit (L13,
    L22's copy), reversed payments left out (L7's 02-12, L22's first 150); L4's waived interest."""
    d, day = Decimal, dt.date
    zero = d("0.00")
    assert allocations(con, ("4", "7", "13", "14", "21", "22")) == [
        ("4", day(2024, 2, 5), zero, zero, zero, d("400.00"), zero),
        ("4", day(2024, 3, 5), zero, zero, d("12.00"), d("400.00"), zero),
        ("4", day(2024, 4, 5), zero, zero, d("12.00"), d("400.00"), zero),
        ("7", day(2024, 2, 22), zero, zero, zero, d("100.00"), zero),
        ("7", day(2024, 3, 12), zero, zero, zero, d("100.00"), zero),
        ("13", day(2024, 2, 18), zero, zero, zero, d("100.00"), zero),
        ("13", day(2024, 3, 18), zero, zero, zero, d("100.00"), d("50.00")),
        ("14", day(2024, 3, 1), zero, zero, d("6.00"), d("200.00"), zero),
        ("14", day(2024, 4, 8), zero, zero, d("6.00"), d("200.00"), zero),
        ("14", day(2024, 5, 1), d("10.00"), zero, d("6.00"), d("200.00"), zero),
        ("21", day(2024, 4, 1), zero, zero, d("6.00"), d("200.00"), zero),
        ("21", day(2024, 5, 1), zero, zero, d("6.00"), d("194.00"), zero),
        ("22", day(2024, 3, 1), zero, zero, zero, d("100.00"), zero),
        ("22", day(2024, 4, 1), zero, zero, zero, d("100.00"), d("50.00")),
    ]
    rows = con.execute("""SELECT loan_id, instalment_number, paid_on_date, waived_amount FROM marts.fct_instalments
                          WHERE loan_id = '4' ORDER BY instalment_number""").fetchall()
    assert rows == [("4", 1, day(2024, 2, 5), d("12.00")), ("4", 2, day(2024, 3, 5), zero),
                    ("4", 3, day(2024, 4, 5), zero)]


def test_the_rescheduled_loan_shows_its_new_schedule(con):
    """L11: the schedule in force, as Fineract rewrote it (instalment 1 kept, paid 02-05)."""
    day, d = dt.date, Decimal
    rows = con.execute("""SELECT instalment_number, due_date, principal_amount, paid_on_date FROM marts.fct_instalments
                          WHERE loan_id = '11' ORDER BY instalment_number""").fetchall()
    assert rows == [(1, day(2024, 2, 5), d("100.00"), day(2024, 2, 5)), (2, day(2024, 4, 5), d("100.00"), day(2024, 4, 5)),
                    (3, day(2024, 5, 5), d("100.00"), day(2024, 5, 5)), (4, day(2024, 6, 5), d("100.00"), None),
                    (5, day(2024, 7, 5), d("100.00"), None), (6, day(2024, 8, 5), d("100.00"), None)]


def test_instalment_records_are_dated_by_the_approved_reschedule(fineract):
    """The current rows of L11 are in force from the request's approved_on_date (03-22), not its
    business date (03-25) nor a row's last_modified_on_utc (the day a repayment paid it); its
    history is the schedule it was issued with; L12's rejected and pending requests date nothing."""
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(fineract[0]) as wh:
        rows = wh.execute("""SELECT loan_id, effective_from, count(*), sum(principal), min(due_date), max(due_date)
                             FROM staging.instalments WHERE loan_id IN ('11', '12')
                             GROUP BY ALL ORDER BY 1, 2 NULLS FIRST""").fetchall()
    day, d = dt.date, Decimal
    assert rows == [("11", None, 6, d("600.00"), day(2024, 2, 5), day(2024, 7, 5)),
                    ("11", day(2024, 3, 22), 6, d("600.00"), day(2024, 2, 5), day(2024, 8, 5)),
                    ("12", None, 3, d("300.00"), day(2024, 3, 10), day(2024, 5, 10))]


def test_loans_their_versions_and_write_offs(fineract, con):
    """Each m_loan row: an active version at disbursal, and one for the state it reached."""
    d, day = Decimal, dt.date
    rows = con.execute("""SELECT loan_id, amount, interest_rate, issue_date, source_status, written_off_date
                          FROM marts.dim_loans ORDER BY length(loan_id), loan_id""").fetchall()
    rate = {"4": d("0.12"), "14": d("0.12"), "18": d("0.12"), "19": d("0.12"), "21": d("0.12")}
    status = {n: "closed" for n in ("1", "4", "6", "10", "13", "14", "18", "22")}
    status.update({"8": "written_off", "9": "written_off", "19": "written_off"})
    written = {"8": day(2024, 5, 10), "9": day(2024, 5, 28), "19": day(2024, 4, 30)}
    amount = {"4": 1200, "8": 600, "11": 600, "13": 200, "14": 600, "18": 900, "19": 1200, "21": 600, "22": 200}
    issued = {"1": "01-10", "2": "01-15", "3": "01-10", "4": "01-05", "5": "01-20", "6": "01-20", "7": "01-12",
              "8": "01-08", "9": "01-25", "10": "02-01", "11": "01-05", "12": "02-10", "13": "01-18", "14": "02-01",
              "15": "03-01", "16": "03-05", "17": "02-05", "18": "03-15", "19": "01-10", "20": "02-15", "21": "03-01",
              "22": "02-01"}
    assert rows == [(n, d(amount.get(n, 300)), rate.get(n, d(0)), day.fromisoformat(f"2024-{issued[n]}"),
                     status.get(n, "active"), written.get(n)) for n in map(str, range(1, 23))]
    assert con.execute("SELECT * FROM marts.fct_loan_write_offs ORDER BY written_off_date").fetchall() == [
        ("19", day(2024, 4, 30), "2024-04", d("800.00")), ("8", day(2024, 5, 10), "2024-05", d("400.00")),
        ("9", day(2024, 5, 28), "2024-05", d("300.00"))]
    assert con.execute("""SELECT loan_id, paid_date, recovery_amount FROM marts.fct_loan_recoveries
                          ORDER BY paid_date""").fetchall() == [
        ("9", day(2024, 6, 7), d("60.00")), ("8", day(2024, 6, 12), d("150.00"))]
    result = cli("report", "recoveries", "-f", "csv", home=fineract[0].home)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["cohort,loans,written_off_amount,recovered,recovery_rate",
                                          "2024-04,1,800.00,0.00,0.000000", "2024-05,2,700.00,210.00,0.300000",
                                          "(all),3,1500.00,210.00,0.140000"]


def test_no_check_finds_anything(fineract):
    """A rescheduled loan's schedule is complete (not warn_restructured_schedules'); no waiver goes
    beyond what was open; every reversal finds its record; the source statuses agree with the
    computed states at the data date. (warn_stale_data: the book ends in 2024.)"""
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(fineract[0]) as wh:
        failing = dict(wh.execute("""
            SELECT check_name, failing_rows FROM meta.dq_results
            WHERE build_id = (SELECT max(build_id) FROM meta.builds)""").fetchall())
    for name in ("warn_restructured_schedules", "warn_instalment_records", "check_schedule_principal_sums_to_amount",
                 "warn_waivers_beyond_open", "warn_reversals_not_applied", "warn_servicing_reversals_not_applied",
                 "reversals_of_unknown_payments", "reversals_of_unknown_charges", "reversals_of_unknown_adjustments",
                 "orphan_payments", "orphan_charges", "orphan_adjustments", "orphan_loans",
                 "warn_source_status_mismatch", "warn_unknown_source_status", "warn_interest_rate_looks_like_percent",
                 "warn_payments_outside_loan_life", "warn_reversal_amount_differs"):
        assert failing[name] == 0, name
    assert {name for name, n in failing.items() if n} <= {"warn_stale_data"}


def test_an_earlier_export_then_a_later_one_load_as_duplicates_and_new_records(tmp_path, con):
    """An export of 03-20 (before L11's reschedule, L22's replay, the write-offs and closures
    after it), then the export of 06-15: nothing conflicts. The later export's active versions,
    the schedule rows it shares (L11's first schedule now in its history), the payments, charges
    and waivers already loaded are duplicates; the closures, write-offs, new schedule, later
    events and reversals are new. The figures are those of the later export alone."""
    early = write_export(tmp_path / "early", as_of="2024-03-20")
    late = write_export(tmp_path / "late")
    settings, (first, second) = load(tmp_path / "home", early, late)
    assert accounting(first) == [
        ("m_client.csv", "clients", 10, 10, 0, 0, 0),
        ("m_loan.csv", "loans", 22, 22, 0, 0, 0),         # L23-26 not yet submitted
        ("m_loan.csv", "loans", 22, 2, 0, 0, 20),         # L10 closed 02-20, L13 overpaid 03-18
        ("m_loan.csv", "loans", 22, 0, 0, 0, 22),
        ("m_loan_charge.csv", "charges", 8, 7, 0, 0, 1),  # L14's penalty of 04-04 not yet
        ("m_loan_charge.csv", "charges", 8, 1, 0, 0, 7),
        ("m_loan_repayment_schedule.csv", "instalments", 67, 67, 0, 0, 0),
        ("m_loan_repayment_schedule_history.csv", "instalments", 0, 0, 0, 0, 0),
        ("m_loan_transaction.csv", "payments", 55, 25, 0, 0, 30),
        ("m_loan_transaction.csv", "payments", 55, 1, 0, 0, 54),
        ("m_loan_transaction.csv", "adjustments", 55, 2, 0, 0, 53),
        ("m_loan_transaction.csv", "adjustments", 55, 1, 0, 0, 54),
        ("m_loan_transaction.csv", "adjustments", 55, 1, 0, 0, 54),
        ("m_loan_transaction.csv", "adjustments", 55, 0, 0, 0, 55),
    ]
    assert [(r.path.name, r.status) for r in second][:1] == [("m_client.csv", "skipped")]  # the same file
    assert accounting(second[1:]) == [
        ("m_loan.csv", "loans", 26, 0, 22, 0, 4),
        ("m_loan.csv", "loans", 26, 6, 2, 0, 18),
        ("m_loan.csv", "loans", 26, 3, 0, 0, 23),
        ("m_loan_charge.csv", "charges", 9, 1, 7, 0, 1),
        ("m_loan_charge.csv", "charges", 9, 0, 1, 0, 8),
        ("m_loan_repayment_schedule.csv", "instalments", 79, 18, 61, 0, 0),  # L11's new 6, L23-26's 12
        ("m_loan_repayment_schedule_history.csv", "instalments", 6, 0, 6, 0, 0),
        ("m_loan_transaction.csv", "payments", 83, 22, 25, 0, 36),
        ("m_loan_transaction.csv", "payments", 83, 2, 1, 0, 80),      # L9's and L22's reversals are new
        ("m_loan_transaction.csv", "adjustments", 83, 0, 2, 0, 81),
        ("m_loan_transaction.csv", "adjustments", 83, 0, 1, 0, 82),
        ("m_loan_transaction.csv", "adjustments", 83, 0, 1, 0, 82),
        ("m_loan_transaction.csv", "adjustments", 83, 1, 0, 0, 82),   # L21's waiver reversed on 03-22
    ]
    with snapshot(settings) as both:
        for as_of in ("2024-03-15", "2024-04-30", "2024-06-15"):
            assert figures(both, as_of) == figures(con, as_of), as_of


def test_an_export_with_no_reschedule_request_yet_loads(tmp_path):
    """m_loan_reschedule_request.csv with its header alone (no request yet, 02-29): every schedule
    row loads with no effective_from; the code table is not reported as a file left alone."""
    export = write_export(tmp_path / "export", as_of="2024-02-29")
    assert (export / "m_loan_reschedule_request.csv").read_text().count("\n") == 1
    result = cli("ingest", "--mapping", MAPPING, "--dry-run", export, home=tmp_path / "home")
    assert result.exit_code == 0, result.output
    assert ("m_loan_repayment_schedule.csv: instalments: read 55, would be accepted 55, duplicates 0, "
            "would be rejected 0") in result.stdout
    assert "m_loan_reschedule_request.csv" not in result.stdout + result.stderr
