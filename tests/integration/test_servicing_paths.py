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
