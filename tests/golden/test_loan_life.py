"""The loan lookup's life table (reports.lookup.loan_life), by hand: one row per event of a loan in
time order, each with the loan's state, DPD, principal outstanding and past-due amount at the end
of the event's day (the figures of tests/golden/test_servicing.py's docstring, day by day).

Servicing loans (tests/golden/servicing/, built here once):
  S1 cash 300, 3 × 100 due 02-10, 03-10, 04-10. Penalty S1-N1 of 10 on instalment 1 on 02-15:
     instalment 1 (due 02-10) owes 110 and is overdue: DPD 15 - 10 = 5, past due 110.00, principal
     300.00. S1-P1 105 on 02-20: 10 to the penalty, 95 to principal, so instalment 1 still owes 5:
     overdue, DPD 20 - 10 = 10, past due 5.00, principal 205.00. S1-P2 5 on 03-05 pays it: current,
     200.00, nothing past due (instalment 2 is due 03-10).
  S2 cash 200 (100 due 02-05, 03-05). S2-P1 250 on 02-01: 200 to principal, 50 of credit: closed.
     Fee S2-F1 30 on 02-10 (due that day) paid from the credit: still closed. Penalty S2-N1 40 on
     03-10 takes the last 20 of credit, 20 open on instalment 2, due 03-05: overdue, DPD 10 - 5 = 5,
     past due 20.00, principal 0.00.
  S5 cash 100 due 02-01; S5-P1 100 on 02-03: closed. Penalty S5-N1 25 on 02-05, reversed by S5-R1 on
     02-10: listed, voided (it never counted): closed after it, and after the reversal.
  S7 cash 100 due 02-01; principal waiver S7-W1 of 40 on 01-10, reversed by S7-R1 on 01-20: voided,
     principal stays 100.00. S7-P1 60 on 02-01, the due day: current at its end (overdue from the
     next day), principal 40.00.
Ten loans (tests/golden/ten_loans/, the session's golden build):
  L07 300 due 05-05; P13 300 on 05-05, voided by P14 on 05-08: current at the end of 05-05 (due that
     day), overdue at 05-08 with DPD 3 and 300.00 past due; P15 300 on 06-10 closes it.
  L08 800 (400 due 02-05, 03-05); P16 400 on 02-05: current, 400.00. Version 2 (status written_off)
     on 05-20 10:00, then at the same instant the write-off with 400.00 on the book (the principal
     the day before): written off, nothing outstanding.
  L09 cancelled by version 2: both versions listed, state cancelled.
Provisions book (tests/golden/provisions/): L4 cash 1000, written off 03-05 with 1000.00 on the
book; recoveries R05 300 (03-20) and R06 100 (04-20), to principal.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.reports import registry
from loanwatch.reports.lookup import LIFE_EVENTS, loan_detail, loan_life
from tests.conftest import build_home, snapshot

FIXTURE = Path(__file__).parent / "servicing"
COLUMNS = ["at", "event", "id", "amount", "detail", "state_after", "dpd_after", "principal_outstanding_after",
           "past_due_after", "is_voided"]


@pytest.fixture(scope="module")
def servicing_home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("life"), FIXTURE)


@pytest.fixture(scope="module")
def servicing_con(servicing_home):
    with snapshot(servicing_home) as con:
        yield con


def rows(con, loan_id: str) -> list[tuple]:
    table = loan_life(con, loan_id)
    assert table.columns == COLUMNS
    return table.rows


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def life(*events) -> list[tuple]:
    """Hand-written rows, (at, event, id, amount, voided, detail, state, dpd, principal, past due), in
    the table's order of columns (voided last)."""
    return [(at(t), e, i, Decimal(a), d, s, dpd, Decimal(p), Decimal(due), v) for t, e, i, a, v, d, s, dpd, p, due in events]


ACTIVE_CASH = "annuity over {} months, rate 0 %, status active"


def test_s1_penalty_then_a_payment_that_leaves_instalment_1_owing(servicing_con):
    assert rows(servicing_con, "S1") == life(
        ("2024-01-10 09:00", "version", "v1", "300.00", False, "issued 2024-01-10, " + ACTIVE_CASH.format(3),
         "current", 0, "300.00", "0.00"),
        ("2024-02-15 10:00", "charge", "S1-N1", "10.00", False, "penalty on instalment 1", "overdue", 5, "300.00", "110.00"),
        ("2024-02-20 10:00", "payment", "S1-P1", "105.00", False, "to penalty 10.00, principal 95.00",
         "overdue", 10, "205.00", "5.00"),
        ("2024-03-05 10:00", "payment", "S1-P2", "5.00", False, "to principal 5.00", "current", 0, "200.00", "0.00"),
    )


def test_s2_credit_then_charges(servicing_con):
    assert rows(servicing_con, "S2") == life(
        ("2024-01-05 09:00", "version", "v1", "200.00", False, "issued 2024-01-05, " + ACTIVE_CASH.format(2),
         "current", 0, "200.00", "0.00"),
        ("2024-02-01 09:00", "payment", "S2-P1", "250.00", False, "to principal 200.00, credit 50.00", "closed", 0, "0.00", "0.00"),
        ("2024-02-10 09:00", "charge", "S2-F1", "30.00", False, "fee due 2024-02-10", "closed", 0, "0.00", "0.00"),
        ("2024-03-10 09:00", "charge", "S2-N1", "40.00", False, "penalty due 2024-03-10", "overdue", 5, "0.00", "20.00"),
    )


def test_s5_a_reversed_charge_is_listed_voided(servicing_con):
    assert rows(servicing_con, "S5") == life(
        ("2024-01-01 09:00", "version", "v1", "100.00", False, "issued 2024-01-01, annuity over 1 month, rate 0 %, status active",
         "current", 0, "100.00", "0.00"),
        ("2024-02-03 10:00", "payment", "S5-P1", "100.00", False, "to principal 100.00", "closed", 0, "0.00", "0.00"),
        ("2024-02-05 10:00", "charge", "S5-N1", "25.00", True, "penalty due 2024-02-05; voided by S5-R1, never counted",
         "closed", 0, "0.00", "0.00"),
        ("2024-02-10 10:00", "reversal", "S5-R1", "25.00", False, "reverses S5-N1", "closed", 0, "0.00", "0.00"),
    )


def test_s7_a_reversed_waiver_is_listed_voided_and_the_due_day_is_not_overdue(servicing_con):
    assert rows(servicing_con, "S7") == life(
        ("2024-01-01 09:00", "version", "v1", "100.00", False, "issued 2024-01-01, annuity over 1 month, rate 0 %, status active",
         "current", 0, "100.00", "0.00"),
        ("2024-01-10 10:00", "waiver", "S7-W1", "40.00", True, "waive_principal; voided by S7-R1, never counted",
         "current", 0, "100.00", "0.00"),
        ("2024-01-20 10:00", "reversal", "S7-R1", "40.00", False, "reverses S7-W1", "current", 0, "100.00", "0.00"),
        ("2024-02-01 10:00", "payment", "S7-P1", "60.00", False, "to principal 60.00", "current", 0, "40.00", "0.00"),
    )


def test_l07_a_reversed_payment_and_l09_cancelled(golden_con):
    assert rows(golden_con, "L07") == life(
        ("2024-04-05 10:00", "version", "v1", "300.00", False, "issued 2024-04-05, its own schedule, rate 0 %, status active",
         "current", 0, "300.00", "0.00"),
        ("2024-05-05 09:00", "payment", "P13", "300.00", True, "voided by P14, never counted", "current", 0, "300.00", "0.00"),
        ("2024-05-08 09:00", "reversal", "P14", "300.00", False, "reverses P13", "overdue", 3, "300.00", "300.00"),
        ("2024-06-10 09:00", "payment", "P15", "300.00", False, "to principal 300.00", "closed", 0, "0.00", "0.00"),
    )
    assert [(r[1], r[2], r[4], r[5]) for r in rows(golden_con, "L09")] == [
        ("version", "v1", "issued 2024-03-01, " + ACTIVE_CASH.format(2), "cancelled"),
        ("version", "v2", "status cancelled", "cancelled")]


def test_l08_the_write_off_follows_its_version_at_the_same_instant(golden_con):
    assert rows(golden_con, "L08") == life(
        ("2024-01-05 10:00", "version", "v1", "800.00", False, "issued 2024-01-05, " + ACTIVE_CASH.format(2),
         "current", 0, "800.00", "0.00"),
        ("2024-02-05 09:00", "payment", "P16", "400.00", False, "to principal 400.00", "current", 0, "400.00", "0.00"),
        ("2024-05-20 10:00", "version", "v2", "800.00", False, "status written_off", "written_off", 0, "0.00", "0.00"),
        ("2024-05-20 10:00", "write-off", "v2", "400.00", False, "written off with 400.00 on the book",
         "written_off", 0, "0.00", "0.00"),
    )


def test_l4_recoveries_after_the_write_off(provisions_book):
    with snapshot(provisions_book) as con:
        got = rows(con, "L4")
    assert got == life(
        ("2024-01-10 10:00", "version", "v1", "1000.00", False, "issued 2024-01-10, annuity over 2 months, rate 0 %, status active",
         "current", 0, "1000.00", "0.00"),
        ("2024-03-05 10:00", "version", "v2", "1000.00", False, "status written_off", "written_off", 0, "0.00", "0.00"),
        ("2024-03-05 10:00", "write-off", "v2", "1000.00", False, "written off with 1,000.00 on the book",
         "written_off", 0, "0.00", "0.00"),
        ("2024-03-20 12:00", "recovery", "R05", "300.00", False, "recovery, to principal 300.00", "written_off", 0, "0.00", "0.00"),
        ("2024-04-20 12:00", "recovery", "R06", "100.00", False, "recovery, to principal 100.00", "written_off", 0, "0.00", "0.00"),
    )


def test_every_event_kind_is_one_of_the_documented_order(servicing_con):
    events = {r[1] for loan in ("S1", "S2", "S3", "S4", "S5", "S6", "S7") for r in rows(servicing_con, loan)}
    assert events <= set(LIFE_EVENTS)
    assert LIFE_EVENTS == ("version", "charge", "waiver", "payment", "reversal", "write-off", "recovery")


def test_loan_detail_shows_the_life_first_and_the_registry_declares_every_column(servicing_con):
    detail = loan_detail(servicing_con, "S2")
    assert list(detail)[0] == "life"
    for name, table in detail.items():
        _title, columns = registry.LOOKUP[name]
        assert table.columns == [c.name for c in columns], name
    schedule = detail["schedule"].as_dicts()
    assert [(r["instalment_number"], r["fee_amount"], r["penalty_amount"], r["charged_amount"], r["waived_amount"])
            for r in schedule] == [(1, Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
                                   (2, Decimal("0.00"), Decimal("0.00"), Decimal("70.00"), Decimal("0.00"))]
    s1 = loan_detail(servicing_con, "S1")["payments"].as_dicts()
    assert [(r["payment_id"], r["penalty_amount"], r["fee_amount"], r["principal_amount"]) for r in s1] == [
        ("S1-P1", Decimal("10.00"), Decimal("0.00"), Decimal("95.00")), ("S1-P2", Decimal("0.00"), Decimal("0.00"), Decimal("5.00"))]
    help_after = {c.name: c.help for c in registry.LOOKUP["life"][1] if c.name.endswith("_after")}
    assert len(help_after) == 4 and all("end of the event's day" in h for h in help_after.values())


LIFE_TABLES = ("core.loan_versions", "core.charges", "core.adjustments", "core.payments", "marts.dim_loans",
               "marts.fct_loan_states", "marts.fct_payment_allocations", "marts.fct_loan_recoveries",
               "marts.fct_loan_write_offs")


def test_a_reversal_that_names_no_record_of_the_loan_is_listed_as_not_applied(servicing_home):
    """A copy of the snapshot's tables in memory, with two more reversals on S5: one naming a charge
    loanwatch has never seen, one naming S2's fee (another loan's): neither voids anything."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS snap (READ_ONLY)", [str(servicing_home.serving_path)])
        con.execute("CREATE SCHEMA memory.core; CREATE SCHEMA memory.marts")
        for table in LIFE_TABLES:
            con.execute(f"CREATE TABLE memory.{table} AS SELECT * FROM snap.{table}")
        con.execute("USE memory")
        con.execute("""INSERT INTO core.charges (charge_id, loan_id, reversed_charge_id, charge_type, amount, charged_at,
                                                 due_date, is_reversed, is_effective)
                       VALUES ('S5-R2', 'S5', '<b>x</b>', 'reversal', 1, '2024-02-11 10:00', '2024-02-11', false, false),
                              ('S5-R3', 'S5', 'S2-F1', 'reversal', 30, '2024-02-11 10:00', '2024-02-11', false, false)""")
        got = [(r[2], r[4], r[5], r[9]) for r in rows(con, "S5")[-3:]]
    finally:
        con.close()
    assert got == [("S5-R1", "reverses S5-N1", "closed", False),
                   ("S5-R2", "reverses <b>x</b> (not applied: no such charge of this loan)", "closed", False),
                   ("S5-R3", "reverses S2-F1 (not applied: no such charge of this loan)", "closed", False)]
