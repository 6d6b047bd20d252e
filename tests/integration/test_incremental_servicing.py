"""Charges, waivers, their reversals and late payments arriving in later batches (contract v3):
each incremental build recomputes the loans they touch, and the result equals one build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.ingest.load import ingest_paths
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build
from loanwatch.warehouse import open_writer
from tests.conftest import build_home
from tests.integration.test_incremental import MARTS, _dump

FIXTURE = Path(__file__).parents[1] / "golden" / "servicing"
KEYS = {"payments": "payment_id", "charges": "charge_id", "adjustments": "adjustment_id"}

# Batch 1: the loans and most payments, no servicing event (every loan on the cumulative path).
# Batch 2: charges and waivers dated before payments already built (S1's penalty of 02-15 comes
# before its payment of 02-20: that payment's allocation changes), so loans move to the
# event-by-event path. Batch 3: later payments, later charges (S8's on an instalment already
# paid, which moves that loan to the event-by-event path), a second waiver, and the reversals of a
# charge (S5) and of a waiver (S7).
BATCHES = [
    {"payments": ["S1-P1", "S2-P1", "S3-P1", "S4-P1", "S5-P1", "S6-P1", "S7-P1", "S8-P1"]},
    {"charges": ["S1-N1", "S2-F1", "S5-N1"], "adjustments": ["S3-W1", "S4-W1", "S7-W1"]},
    {"payments": ["S1-P2", "S3-P2"], "charges": ["S2-N1", "S5-R1", "S8-F1"], "adjustments": ["S4-W2", "S7-R1"]},
]


def _batches(out: Path) -> list[Path]:
    folders = []
    for k, batch in enumerate(BATCHES, start=1):
        folder = out / f"batch_{k}"
        folder.mkdir(parents=True)
        if k == 1:
            for name in ("clients", "loans", "instalments"):
                (folder / f"{name}.jsonl").write_text((FIXTURE / f"{name}.jsonl").read_text())
        for entity, ids in batch.items():
            records = {json.loads(line)[KEYS[entity]]: line for line in (FIXTURE / f"{entity}.jsonl").read_text().splitlines()}
            (folder / f"{entity}.jsonl").write_text("\n".join(records[i] for i in ids) + "\n")
        folders.append(folder)
    assert sum(len(ids) for b in BATCHES for ids in b.values()) == sum(
        len((FIXTURE / f"{e}.jsonl").read_text().splitlines()) for e in KEYS)
    return folders


@pytest.mark.integration
def test_late_charges_waivers_and_reversals_equal_one_build(tmp_path):
    settings = load_settings(tmp_path / "incremental", environ={})
    changed = []
    for folder in _batches(tmp_path / "batches"):
        with open_writer(settings) as con:
            ingest_paths(con, [folder])
        assert build(settings).status == "success"
        with open_writer(settings) as con:
            changed.append(dict(con.execute("SELECT loan_id, recompute_from FROM core.int_loans_changed").fetchall()))
    # a loan with charges or waivers is recomputed whole (recompute_from null), whatever arrived
    assert changed[1] == {"S1": None, "S2": None, "S3": None, "S4": None, "S5": None, "S7": None}
    assert changed[2] == {"S1": None, "S2": None, "S3": None, "S4": None, "S5": None, "S7": None, "S8": None}

    whole = build_home(tmp_path / "whole", FIXTURE)
    a, b = open_snapshot(settings), open_snapshot(whole)
    for table, order in {**MARTS, "core.charges": "charge_id", "core.adjustments": "adjustment_id"}.items():
        if table in ("marts.fct_calls", "marts.fct_holdout_cures", "marts.fct_merchant_balances"):
            continue  # the fixture has none
        rows = _dump(a, table, order)
        assert rows, table
        assert rows == _dump(b, table, order), table
    # and the figures are the hand-computed ones (tests/golden/test_servicing.py): S1 overdue at 02-29
    assert a.execute("""
        SELECT state, principal_outstanding_amount, past_due_amount FROM marts.fct_loan_snapshots
        WHERE loan_id = 'S1' AND snapshot_date = DATE '2024-02-29'""").fetchone() == ("overdue", 205, 5)


RESTRUCTURING = Path(__file__).parents[1] / "golden" / "restructuring"


@pytest.mark.integration
def test_restructurings_arriving_later_equal_one_build(tmp_path):
    """tests/golden/test_restructuring.py's loans: first the loans as issued with their first
    payments (R3 and R4 still without restructuring, on the cumulative path), then the versions
    and instalment records that correct or restructure them, then R1's payment after its
    restructuring; the result equals one build."""
    lines = {name: (RESTRUCTURING / f"{name}.jsonl").read_text().splitlines() for name in ("loans", "instalments", "payments")}
    later = {
        "loans": [x for x in lines["loans"] if '"updated_at": "2024-03' in x or '"updated_at": "2024-04' in x],
        "instalments": [x for x in lines["instalments"] if "effective_from" in x],
    }
    batches = [
        {"clients": (RESTRUCTURING / "clients.jsonl").read_text().splitlines(),
         "loans": [x for x in lines["loans"] if x not in later["loans"]],
         "instalments": [x for x in lines["instalments"] if x not in later["instalments"]],
         "payments": [x for x in lines["payments"] if "-P1" in x]},
        later,
        {"payments": [x for x in lines["payments"] if "-P2" in x]},
    ]
    assert len(later["loans"]) == 3 and len(later["instalments"]) == 3 and len(batches[2]["payments"]) == 1
    settings = load_settings(tmp_path / "incremental", environ={})
    for k, batch in enumerate(batches, start=1):
        folder = tmp_path / f"batch_{k}"
        folder.mkdir()
        for name, records in batch.items():
            (folder / f"{name}.jsonl").write_text("\n".join(records) + "\n")
        with open_writer(settings) as con:
            ingest_paths(con, [folder])
        assert build(settings).status == "success"

    whole = build_home(tmp_path / "whole", RESTRUCTURING)
    a, b = open_snapshot(settings), open_snapshot(whole)
    for table, order in MARTS.items():
        if table in ("marts.fct_calls", "marts.fct_holdout_cures", "marts.fct_merchant_balances"):
            continue
        rows = _dump(a, table, order)
        assert rows, table
        assert rows == _dump(b, table, order), table
