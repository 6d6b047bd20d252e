"""Money near the top of the contract's range (DECIMAL(18,2)) and rates up to 1,000 %: every
schedule, allocation and figure is exact, and equals tests/reference.py (issue: hardening, 1)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from loanwatch import reports
from loanwatch.serve import open_snapshot
from tests import reference
from tests.conftest import build_home, cli

# (loan_id, amount, interest_rate, term_months, repayment): each was accepted by ingest before and
# then failed every build with an INT64 overflow, or lost cents to a double on the way.
BIG_LOANS = [
    ("IDR", "3100000000", "0.30", 12, "annuity"),          # a normal loan in IDR
    ("PAYDAY", "250000000", "4", 1, "bullet"),              # 400 % payday
    ("TOP_RATE", "9999999999999.99", "10", 12, "annuity"),  # 1,000 %
    ("TOP_AMOUNT", "8999999999999999.99", "0", 600, "annuity"),
    ("TOP_BULLET", "999999999999.99", "10", 24, "bullet"),
    ("LONG_HIGH", "123456789012.37", "10", 36, "annuity"),
    ("MID", "5555555555555.55", "1.5", 120, "annuity"),
    ("CENTS", "1234567890123456.78", "0.07", 360, "annuity"),
]


def _write(folder, loans, payments):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clients.jsonl").write_text(json.dumps(
        {"client_id": "C1", "name": "Big", "updated_at": "2024-01-01T00:00:00Z"}) + "\n")
    # numbers written as JSON numbers, exactly as given (not through a float)
    (folder / "loans.jsonl").write_text("".join(
        f'{{"loan_id": "{i}", "client_id": "C1", "amount": {a}, "interest_rate": {r}, '
        f'"issue_date": "2024-01-15", "term_months": {n}, "repayment": "{kind}", '
        f'"updated_at": "2024-01-15T00:00:00Z"}}\n' for i, a, r, n, kind in loans))
    (folder / "payments.jsonl").write_text("".join(
        f'{{"payment_id": "{p}", "loan_id": "{i}", "paid_at": "{t}", "amount": {a}}}\n'
        for p, i, t, a in payments))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    raw = tmp_path_factory.mktemp("big_raw")
    payments = []
    for k, (loan_id, amount, *_rest) in enumerate(BIG_LOANS):
        third = (D(amount) / 3).quantize(D("0.01"))
        payments.append((f"P{k}a", loan_id, "2024-02-15T00:00:00Z", third))
        payments.append((f"P{k}b", loan_id, "2024-04-20T00:00:00Z", third))
    # two payments of the largest amount on one loan: the running total passes 10^16
    payments.append(("PX1", "TOP_AMOUNT", "2024-05-15T00:00:00Z", "9999999999999999.99"))
    payments.append(("PX2", "TOP_AMOUNT", "2024-05-16T00:00:00Z", "9999999999999999.99"))
    _write(raw, BIG_LOANS, payments)
    return raw, build_home(tmp_path_factory.mktemp("big_home"), raw)


@pytest.mark.integration
def test_big_money_equals_the_reference(big):
    raw, settings = big
    con = open_snapshot(settings)
    try:
        got = [tuple(str(v) if isinstance(v, D) else v for v in r) for r in reports.overdue_monthly(con).rows]
        # the amounts arrive exactly: no cent lost to a double on the way in
        amounts = dict(con.execute("SELECT loan_id, amount::VARCHAR FROM marts.dim_loans").fetchall())
        schedule = con.execute(
            "SELECT instalment_number, principal_amount, interest_amount FROM core.int_instalments_scheduled "
            "WHERE loan_id = 'IDR' ORDER BY 1").fetchall() if _has(con, "core", "int_instalments_scheduled") else None
    finally:
        con.close()
    assert got == reference.overdue_monthly(raw)
    assert amounts["TOP_AMOUNT"] == "8999999999999999.99"
    assert amounts["CENTS"] == "1234567890123456.78"
    # by hand for the IDR loan: r = 0.025, A = 3,100,000,000 x 0.025 / (1 - 1.025^-12) = 302,210,093.66384...;
    # interest_1 = round(3,100,000,000 x 0.025) = 77,500,000.00; principal_1 = A - interest_1.
    ref = reference.schedule({"amount": D("3100000000"), "issue_date": "2024-01-15", "interest_rate": D("0.30"),
                              "term_months": 12, "repayment": "annuity"})
    assert ref[0][1:] == (D("224710093.66"), D("77500000.00"))
    assert sum(p for _, p, _ in ref) == D("3100000000")
    if schedule is not None:
        assert [(p, i) for _, p, i in schedule] == [(p, i) for _, p, i in ref]


def _has(con, schema, table):
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                       [schema, table]).fetchone()[0] > 0


@pytest.mark.integration
@pytest.mark.parametrize("loan, reason", [
    # 1,000 % over 50 years: each cent of rounding in the payment grows 1.83-fold a month
    (("HUGE_TERM", "12345678901.23", "10", 600, "annuity"), "the repayment schedule would exceed"),
    # a bullet whose interest alone is beyond the largest amount
    (("HUGE_BULLET", "9999999999999999.99", "10", 12, "bullet"), "the repayment schedule would exceed"),
])
def test_a_schedule_too_large_to_hold_is_quarantined_with_its_reason(tmp_path, loan, reason):
    _write(tmp_path / "raw", [loan, ("OK", "100", "0.1", 3, "annuity")], [])
    result = cli("ingest", tmp_path / "raw", home=tmp_path / "home")
    assert result.exit_code == 3
    assert f"loans.jsonl:1: amount {loan[1]} at interest_rate" in result.stderr
    assert reason in result.stderr
    rows = cli("rejects", "--format", "json", home=tmp_path / "home")
    assert [r["line"] for r in json.loads(rows.stdout)] == [1]
