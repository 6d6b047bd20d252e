"""Five chronological parts ingested one by one, with a build after each, equal everything at once."""

from __future__ import annotations

import json

import pytest

from loanwatch.generate.split import split
from loanwatch.ingest.load import ingest_paths
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build
from loanwatch.config import load_settings
from loanwatch.warehouse import open_writer
from tests.conftest import OVER_SCHEDULED, PAYMENT, build_home

MARTS = {
    "marts.fct_loan_states": "loan_id, valid_from",
    "marts.fct_loan_snapshots": "snapshot_date, loan_id",
    "marts.dim_loans": "loan_id",
    "marts.snapshot_dates": "month",
    "core.loan_versions": "loan_id, valid_from",
    "core.client_versions": "client_id, valid_from",
    "core.loans": "loan_id",
    "core.clients": "client_id",
    "core.payments": "payment_id",
    "core.int_payments_allocated": "payment_id",
}


def _dump(con, table, order):
    # lineage columns (batch ids, file names, lines) differ by construction; content must not
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
            if r[0] not in ("batch_id", "file_name", "line_no")]
    return con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()


@pytest.mark.integration
def test_parts_one_by_one_equal_all_at_once(tmp_path, small_portfolio):
    parts = split([small_portfolio], 5, tmp_path / "parts").parts
    assert sorted(parts) == [1, 2, 3, 4, 5]

    settings = load_settings(tmp_path / "incremental", environ={})
    for part in sorted(parts):
        with open_writer(settings) as con:
            ingest_paths(con, parts[part])
        assert build(settings).status == "success"
    whole = build_home(tmp_path / "whole", small_portfolio)

    a, b = open_snapshot(settings), open_snapshot(whole)
    # the parts exercise the incremental path of the version models: some clients and loans
    # have versions that arrived in different parts
    for table, key in (("core.client_versions", "client_id"), ("core.loan_versions", "loan_id")):
        spread = a.execute(f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY 1 HAVING count(DISTINCT batch_id) > 1)").fetchone()[0]
        assert spread > 0, table
    for table, order in MARTS.items():
        rows = _dump(a, table, order)
        assert rows, table
        assert rows == _dump(b, table, order), table


@pytest.mark.integration
def test_rerunning_ingest_and_build_changes_nothing(tmp_path, small_portfolio):
    settings = build_home(tmp_path / "h", small_portfolio)
    con = open_snapshot(settings)
    before = {t: _dump(con, t, o) for t, o in MARTS.items()}
    con.close()
    with open_writer(settings) as w:
        results = ingest_paths(w, [small_portfolio])
    assert {r.status for r in results} == {"skipped"}
    assert build(settings).status == "success"
    con = open_snapshot(settings)
    assert {t: _dump(con, t, o) for t, o in MARTS.items()} == before


@pytest.mark.integration
def test_builds_are_incremental_until_the_project_or_settings_change(tmp_path, small_portfolio):
    parts = split([small_portfolio], 3, tmp_path / "parts").parts
    settings = load_settings(tmp_path / "h", environ={})

    def ingest_and_build(part, s=settings):
        with open_writer(s) as con:
            ingest_paths(con, parts[part])
        assert build(s).status == "success"

    ingest_and_build(1)
    ingest_and_build(2)
    changed = load_settings(tmp_path / "h", environ={"LOANWATCH_WAREHOUSE__TOLERANCE": "0.01"})
    ingest_and_build(3, changed)
    con = open_snapshot(settings)
    rows = con.execute(
        "SELECT build_id, full_refresh, since_batch_id, through_batch_id FROM meta.builds ORDER BY 1").fetchall()
    assert rows[0][1:3] == (True, 0)
    # the second build recomputes only loans of batches after the first build's last batch
    assert rows[1][1:3] == (False, rows[0][3])
    # a changed setting means a full refresh
    assert rows[2][1:3] == (True, 0)


@pytest.mark.integration
def test_a_full_refresh_starts_published_afresh_and_one_that_fails_forces_another(tmp_path, small_portfolio):
    settings = build_home(tmp_path / "h", small_portfolio)
    size = settings.published_path.stat().st_size
    for _ in range(2):
        assert build(settings, full_refresh=True).status == "success"
        # the new tables reuse the dropped ones' blocks: the file does not grow by a second copy
        assert settings.published_path.stat().st_size < 1.25 * size

    def full_refresh_flags():
        con = open_snapshot(settings)
        try:
            return [r[0] for r in con.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id").fetchall()]
        finally:
            con.close()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "loans_99.jsonl").write_text(json.dumps(OVER_SCHEDULED) + "\n")
    (bad / "payments_99.jsonl").write_text(json.dumps(PAYMENT) + "\n")
    with open_writer(settings) as con:
        ingest_paths(con, [bad])
    # a failed incremental build leaves the tables whole: the next build is incremental
    assert build(settings).status == "failed"
    assert build(settings).status == "failed"
    # a failed full refresh does not: the next build is a full one too
    assert build(settings, full_refresh=True).status == "failed"
    assert build(settings).status == "failed"
    with open_writer(settings) as con:
        flags = [r[0] for r in con.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id").fetchall()]
    assert flags == [True, True, True, False, False, True, True]
    assert full_refresh_flags() == [True, True, True]  # the snapshot is the last good build's
