"""The merchant ledger (METRICS §8) by hand: daily inflow, outflow, net change and running balance,
a late event for an earlier day rebuilding its merchant's later rows, and `report merchant-balance`.

Batch 1 (M1 in USD, M2 in EUR):
  E1 03-01 order_paid 100   E2 03-01 fee 3        -> 03-01: in 100, out 3, net 97, balance 97
  E3 03-02 payout 97                              -> 03-02: out 97, net -97, balance 0
  E4 03-04 23:30 at UTC-3 = 03-05 02:30 UTC, order_paid 50 -> 03-05: in 50, balance 50
  E5 03-06 refund 20                              -> 03-06: out 20, balance 30
  E6 M2 03-01 order_paid 5.50                     -> 03-01: 5.50
  M3 (USD): E9 03-01 payout 30 -> balance -30 (below the floor, 0); 03-02 four orders 1, 1, 1, 1000 ->
  in 1003, balance 973; the order of 1000 is 1000 x the median of M3's orders (1): an outlier (factor 20)
Batch 2, late: E7 03-03 order_paid 10 (a day before the last kept one), E8 03-06 payout_reversed 97
  -> 03-03: in 10, balance 0 + 10 = 10; 03-05: 10 + 50 = 60; 03-06: in 97, out 20, net 77, 60 + 77 = 137
  M2 is unchanged: 5.50.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from loanwatch.ingest.load import ingest_paths
from loanwatch.quality import check_rows
from loanwatch.reports.ledger import LedgerFilter, merchant_balance
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build
from loanwatch.warehouse import open_writer
from tests.conftest import build_home, cli

D = Decimal
BATCH_1 = [
    ("E1", "M1", "order_paid", 100, "USD", "2024-03-01T10:00:00Z"),
    ("E2", "M1", "fee", 3, "USD", "2024-03-01T10:01:00Z"),
    ("E3", "M1", "payout", 97, "USD", "2024-03-02T09:00:00Z"),
    ("E4", "M1", "order_paid", 50, "USD", "2024-03-04T23:30:00-03:00"),
    ("E5", "M1", "refund", 20, "USD", "2024-03-06T08:00:00Z"),
    ("E6", "M2", "order_paid", 5.5, "EUR", "2024-03-01T12:00:00Z"),
    ("E9", "M3", "payout", 30, "USD", "2024-03-01T08:00:00Z"),
    ("E10", "M3", "order_paid", 1, "USD", "2024-03-02T08:00:00Z"),
    ("E11", "M3", "order_paid", 1, "USD", "2024-03-02T08:01:00Z"),
    ("E12", "M3", "order_paid", 1, "USD", "2024-03-02T08:02:00Z"),
    ("E13", "M3", "order_paid", 1000, "USD", "2024-03-02T08:03:00Z"),
]
M3_ROWS = [
    (dt.date(2024, 3, 1), "M3", "USD", 1, Decimal("0.00"), Decimal("30.00"), Decimal("-30.00"), Decimal("-30.00")),
    (dt.date(2024, 3, 2), "M3", "USD", 4, Decimal("1003.00"), Decimal("0.00"), Decimal("1003.00"), Decimal("973.00")),
]
BATCH_2 = [
    ("E7", "M1", "order_paid", 10, "USD", "2024-03-03T15:00:00Z"),
    ("E8", "M1", "payout_reversed", 97, "USD", "2024-03-06T09:00:00Z"),
]


def _write(folder, name, events):
    folder.mkdir(parents=True, exist_ok=True)
    keys = ("event_id", "merchant_id", "event_type", "amount", "currency", "occurred_at")
    (folder / name).write_text("".join(json.dumps(dict(zip(keys, e))) + "\n" for e in events))
    return folder


def _rows(settings, f=None):
    con = open_snapshot(settings)
    try:
        return merchant_balance(con, f).rows
    finally:
        con.close()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    first = _write(root / "b1", "merchant_events.jsonl", BATCH_1)
    second = _write(root / "b2", "merchant_events_late.jsonl", BATCH_2)
    settings = build_home(root / "home", first)
    before = _rows(settings)
    with open_writer(settings) as con:
        ingest_paths(con, [second])
    assert build(settings).status == "success"
    return settings, before, build_home(root / "once", first, second)


@pytest.mark.integration
def test_daily_rows_and_running_balance_by_hand(ledger):
    _, before, _ = ledger
    assert before == [
        (dt.date(2024, 3, 1), "M1", "USD", 2, D("100.00"), D("3.00"), D("97.00"), D("97.00")),
        (dt.date(2024, 3, 2), "M1", "USD", 1, D("0.00"), D("97.00"), D("-97.00"), D("0.00")),
        (dt.date(2024, 3, 5), "M1", "USD", 1, D("50.00"), D("0.00"), D("50.00"), D("50.00")),
        (dt.date(2024, 3, 6), "M1", "USD", 1, D("0.00"), D("20.00"), D("-20.00"), D("30.00")),
        (dt.date(2024, 3, 1), "M2", "EUR", 1, D("5.50"), D("0.00"), D("5.50"), D("5.50")),
        *M3_ROWS,
    ]


@pytest.mark.integration
def test_a_late_event_rewrites_the_later_days_and_equals_one_build(ledger):
    settings, _, once = ledger
    after = _rows(settings)
    assert after == [
        (dt.date(2024, 3, 1), "M1", "USD", 2, D("100.00"), D("3.00"), D("97.00"), D("97.00")),
        (dt.date(2024, 3, 2), "M1", "USD", 1, D("0.00"), D("97.00"), D("-97.00"), D("0.00")),
        (dt.date(2024, 3, 3), "M1", "USD", 1, D("10.00"), D("0.00"), D("10.00"), D("10.00")),
        (dt.date(2024, 3, 5), "M1", "USD", 1, D("50.00"), D("0.00"), D("50.00"), D("60.00")),
        (dt.date(2024, 3, 6), "M1", "USD", 2, D("97.00"), D("20.00"), D("77.00"), D("137.00")),
        (dt.date(2024, 3, 1), "M2", "EUR", 1, D("5.50"), D("0.00"), D("5.50"), D("5.50")),
        *M3_ROWS,
    ]
    assert after == _rows(once)


@pytest.mark.integration
def test_ledger_checks_warn_below_the_floor_outliers_and_unknown_merchants(ledger):
    settings, _, _ = ledger
    below = check_rows(settings, "warn_merchant_balance_below_floor").as_dicts()
    assert [(r["merchant_id"], r["balance_date"], r["balance_amount"]) for r in below] == [
        ("M3", dt.date(2024, 3, 1), D("-30.00"))]
    outliers = check_rows(settings, "warn_merchant_amount_outliers").as_dicts()
    assert [(r["event_id"], r["median_amount"]) for r in outliers] == [("E13", 1)]
    # no merchants file: every merchant of the ledger is unknown (a warning, not an error)
    unknown = check_rows(settings, "merchant_events_of_unknown_merchants").rows
    assert len(unknown) == len(BATCH_1) + len(BATCH_2)


@pytest.mark.integration
def test_the_balance_floor_is_a_setting(tmp_path):
    raw = _write(tmp_path / "raw", "merchant_events.jsonl", BATCH_1)
    settings = build_home(tmp_path / "home", raw, settings_env={"LOANWATCH_CHECKS__MERCHANT_BALANCE_FLOOR": "-50"})
    assert check_rows(settings, "warn_merchant_balance_below_floor").rows == []  # -30 is above -50


@pytest.mark.integration
def test_report_merchant_balance_selects_a_merchant_and_days_and_keeps_the_balance(ledger):
    settings, _, _ = ledger
    # --from selects days; the balance still counts every earlier event
    assert _rows(settings, LedgerFilter("M1", dt.date(2024, 3, 4), None)) == [
        (dt.date(2024, 3, 5), "M1", "USD", 1, D("50.00"), D("0.00"), D("50.00"), D("60.00")),
        (dt.date(2024, 3, 6), "M1", "USD", 2, D("97.00"), D("20.00"), D("77.00"), D("137.00")),
    ]
    result = cli("report", "merchant-balance", "--merchant", "M1", "--from", "2024-03-04", "--to", "2024-03-05",
                 "--format", "csv", home=settings.home)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["date,merchant_id,currency,events,inflow,outflow,net_change,balance",
                                          "2024-03-05,M1,USD,1,50.00,0.00,50.00,60.00"]
    typo = cli("report", "merchant-balance", "--merchant", "M9", home=settings.home)
    assert typo.exit_code == 0 and 'no ledger event has merchant "M9"; merchants with events: M1, M2, M3' in typo.stderr
    empty = cli("report", "merchant-balance", "--from", "2024-03-05", "--to", "2024-03-01", home=settings.home)
    assert empty.exit_code == 2 and "the date range is empty" in empty.stderr
