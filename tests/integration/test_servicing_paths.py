"""The two forms of METRICS §2 agree: a generated portfolio built with every loan allocated event by
event (dbt var servicing_all, int_servicing_*) equals the usual build, where the loans with no
charge, waiver or schedule fee (most of them) take the cumulative form (fct_payment_allocations'
payment ranges)."""

from __future__ import annotations

import pytest

import loanwatch.transform as transform
from tests.conftest import build_home
from tests.integration.test_incremental import MARTS, _dump


@pytest.mark.integration
def test_event_by_event_equals_the_cumulative_form(tmp_path, small_portfolio, small_home, monkeypatch):
    plain = transform.dbt_vars
    monkeypatch.setattr(transform, "dbt_vars", lambda settings: {**plain(settings), "servicing_all": True})
    every_loan = build_home(tmp_path / "every_loan", small_portfolio)
    from loanwatch.serve import open_snapshot

    a, b = open_snapshot(every_loan), open_snapshot(small_home)
    # every loan went the event-by-event way in the first build; in the other, only those with
    # servicing events (the generator gives them to about one loan in ten)
    loans = a.execute("SELECT count(*) FROM marts.dim_loans WHERE NOT is_cancelled").fetchone()[0]
    assert _event_by_event(every_loan) == loans
    assert 0 < _event_by_event(small_home) < loans / 4
    for table, order in MARTS.items():
        rows = _dump(a, table, order)
        assert rows, table
        assert rows == _dump(b, table, order), table


def _event_by_event(settings) -> int:
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(settings) as wh:
        return wh.execute("SELECT count(*) FROM core.int_servicing_loans").fetchone()[0]


@pytest.mark.integration
def test_an_allocation_order_with_principal_first_applies_to_every_loan(tmp_path):
    """[warehouse] allocation_order = "principal, interest, fee, penalty": S1's payment of 105 on
    02-20 (tests/golden/test_servicing.py) repays instalment 1's 100 of principal first and 5 of
    its penalty of 10, so 200.00 is outstanding at 02-29 (205.00 in the default order) and 5.00
    still past due; and the loans without fees or waivers (the ten golden ones, built beside) are
    allocated event by event too."""
    import datetime as dt
    from decimal import Decimal

    from loanwatch.reports.delinquency import loans
    from loanwatch.serve import open_snapshot
    from tests.conftest import GOLDEN
    from tests.engine_checks import SERVICING

    home = build_home(tmp_path / "h", SERVICING, GOLDEN,
                      settings_env={"LOANWATCH_WAREHOUSE__ALLOCATION_ORDER": "principal, interest, fee, penalty"})
    con = open_snapshot(home)
    assert con.execute("""SELECT penalty_amount, principal_amount FROM marts.fct_payment_allocations
                          WHERE payment_id = 'S1-P1'""").fetchone() == (Decimal("5.00"), Decimal("100.00"))
    s1 = {r["loan_id"]: r for r in loans(con, dt.date(2024, 2, 29)).as_dicts()}["S1"]
    assert (s1["state"], s1["dpd"], s1["principal_outstanding"], s1["past_due_amount"], s1["charges_past_due"]) == (
        "overdue", 19, Decimal("200.00"), Decimal("5.00"), Decimal("5.00"))
    # the ten golden loans, which have no charge or waiver, went the event-by-event way too
    assert _event_by_event(home) == con.execute("SELECT count(*) FROM marts.dim_loans WHERE NOT is_cancelled").fetchone()[0] > 7


@pytest.mark.integration
def test_a_paid_on_date_with_a_tolerance_is_the_same_on_both_paths(tmp_path):
    """[warehouse] tolerance = 1.00. T1 and T2: 200 in 2 (100 due 02-10, 03-10), 99.50 paid 02-09
    (instalment 1 is paid then: 0.50 short, within the tolerance), then the rest on 03-12. T1 also
    has a fee of 5 on instalment 2 (so it is allocated event by event): its payment of 03-12 first
    takes the 0.50 instalment 1 still owed, which does not move instalment 1's paid-on date; T2 is
    on the cumulative path. Both: instalment 1 paid on 02-09, instalment 2 on 03-12."""
    import datetime as dt
    import json

    from loanwatch.serve import open_snapshot

    raw = tmp_path / "raw"
    raw.mkdir()
    loans = [{"loan_id": k, "client_id": "C1", "amount": 200, "issue_date": "2024-01-10", "term_months": 2,
              "updated_at": "2024-01-10T09:00:00Z"} for k in ("T1", "T2")]
    payments = [{"payment_id": f"{k}-P{n}", "loan_id": k, "paid_at": at, "amount": amount}
                for k, total in (("T1", 105.50), ("T2", 100.50))
                for n, at, amount in ((1, "2024-02-09T10:00:00Z", 99.50), (2, "2024-03-12T10:00:00Z", total))]
    charges = [{"charge_id": "T1-F1", "loan_id": "T1", "type": "fee", "amount": 5, "charged_at": "2024-01-12T10:00:00Z",
                "instalment": 2}]
    for name, rows in (("loans", loans), ("payments", payments), ("charges", charges)):
        (raw / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    home = build_home(tmp_path / "h", raw, settings_env={"LOANWATCH_WAREHOUSE__TOLERANCE": "1.00"})
    rows = open_snapshot(home).execute(
        "SELECT loan_id, instalment_number, paid_on_date FROM marts.fct_instalments ORDER BY 1, 2").fetchall()
    day = dt.date
    assert rows == [("T1", 1, day(2024, 2, 9)), ("T1", 2, day(2024, 3, 12)),
                    ("T2", 1, day(2024, 2, 9)), ("T2", 2, day(2024, 3, 12))]
    assert _event_by_event(home) == 1
