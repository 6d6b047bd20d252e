"""Five chronological parts ingested one by one, with a build after each, equal everything at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from loanwatch.config import load_settings
from loanwatch.generate.split import split
from loanwatch.ingest.load import ingest_paths
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build
from loanwatch.warehouse import open_writer
from tests.conftest import GOLDEN, OVER_SCHEDULED, PAYMENT, build_home, cli, copy_home, golden_batches

MARTS = {
    "marts.fct_loan_states": "loan_id, valid_from",
    "marts.fct_loan_snapshots": "snapshot_date, loan_id",
    "marts.fct_loan_transitions": "snapshot_date, loan_id",
    "marts.fct_loan_milestones": "loan_id",
    "marts.dim_loans": "loan_id",
    "marts.snapshot_dates": "month",
    "core.loan_versions": "loan_id, valid_from",
    "core.client_versions": "client_id, valid_from",
    "core.loans": "loan_id",
    "core.clients": "client_id",
    "core.payments": "payment_id",
    "marts.fct_payment_allocations": "payment_id",
    "marts.fct_instalments": "loan_id, instalment_number",
    "marts.fct_calls": "call_id",
    "marts.fct_holdout_cures": "contact_date, dpd_bucket",
    "marts.fct_merchant_balances": "merchant_id, currency, balance_date",
}

# no golden client falls in the default hold-out group
GOLDEN_EMPTY = {"marts.fct_holdout_cures"}


def _dump(con, table, order):
    # lineage columns (batch ids, file names, lines) differ by construction; content must not
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
            if r[0] not in ("batch_id", "file_name", "line_no")]
    return con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()


def _attach_published(con, path):
    """A published file (a failed build's own published.duckdb, or the snapshot a good build
    renamed it into) as `published`, read-only."""
    con.execute("ATTACH ? AS published (READ_ONLY)", [str(path)])


def _checked_snapshot_keys(settings):
    """The (snapshot_date, loan_id) keys the last build's key check of fct_loan_snapshots looked at,
    evaluated as the check saw meta.builds (with that build still running)."""
    compiled = settings.home / ".dbt" / "target" / "compiled" / "loanwatch" / "models" / "marts" / "fct_loan_snapshots.yml"
    [check] = compiled.glob("unique_combination_fct_loan_snapshots*.sql")
    query = check.read_text().replace("having count(*) > 1", "")
    assert "int_loans_changed" in query  # the incremental form
    with open_writer(settings) as con:
        _attach_published(con, settings.serving_path)
        con.execute("BEGIN")
        con.execute("UPDATE meta.builds SET status = 'running' WHERE build_id = (SELECT max(build_id) FROM meta.builds)")
        keys = {(r[0], r[1]) for r in con.execute(query).fetchall()}
        con.execute("ROLLBACK")
    return keys


@pytest.mark.integration
def test_parts_one_by_one_equal_all_at_once(tmp_path, small_portfolio, small_home):
    parts = split([small_portfolio], 5, tmp_path / "parts").parts
    assert sorted(parts) == [1, 2, 3, 4, 5]

    settings = load_settings(tmp_path / "incremental", environ={})
    recomputed = []  # per incremental build: loans recomputed whole, and from a day
    snapshots = set()
    for part in sorted(parts):
        with open_writer(settings) as con:
            ingest_paths(con, parts[part])
        if part == 5:
            # a selection (a Dagster subset) first: the models outside it, such as
            # fct_loan_snapshots, still take the part in at the whole build after it
            assert build(settings, select=["fct_loan_states", "dim_loans"]).status == "success"
        assert build(settings).status == "success"
        with open_writer(settings) as con:
            recomputed.append(con.execute(
                "SELECT count(*) FILTER (WHERE recompute_from IS NULL), count(recompute_from) FROM core.int_loans_changed"
            ).fetchone())
        # every snapshot row an incremental build writes is one its snapshot checks look at
        con = open_snapshot(settings)
        now = set(con.execute("SELECT * FROM marts.fct_loan_snapshots").fetchall())
        con.close()
        if part > 1:
            written = {(r[1], r[3]) for r in now - snapshots}
            checked = _checked_snapshot_keys(settings)
            assert written <= checked, sorted(written - checked)[:5]
            assert len(checked) < len(now)  # and only a part of the table
        snapshots = now
    whole = small_home
    # the parts exercise both incremental paths of the day-grain models: loans recomputed whole
    # (new terms, reversals, late payments) and loans recomputed from their first new payment's day
    assert all(whole_ > 0 and from_day > 0 for whole_, from_day in recomputed[1:]), recomputed

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
    a.close()

    # a selection rebuilt whole (as after an upgrade) takes its parents along: after the last
    # part, int_loan_events_running holds only the loans that part recomputed
    assert build(settings, select=["fct_loan_states"], full_refresh=True).status == "success"
    a = open_snapshot(settings)
    assert _dump(a, "marts.fct_loan_states", MARTS["marts.fct_loan_states"]) == \
        _dump(b, "marts.fct_loan_states", MARTS["marts.fct_loan_states"])


@pytest.mark.integration
def test_rerunning_ingest_and_build_changes_nothing(tmp_path, small_portfolio, small_home):
    settings = copy_home(small_home, tmp_path / "h")
    con = open_snapshot(settings)
    before = {t: _dump(con, t, o) for t, o in MARTS.items()}
    con.close()
    with open_writer(settings) as w:
        results = ingest_paths(w, [small_portfolio])
    assert {r.status for r in results} == {"skipped"}
    assert build(settings).status == "success"
    con = open_snapshot(settings)
    assert {t: _dump(con, t, o) for t, o in MARTS.items()} == before
    con.close()
    # an incremental build that runs with no batch since the last (here the snapshot was
    # touched, so the build cannot take it as current) gives the same rows too
    os.utime(settings.serving_path)
    again = build(settings)
    assert again.status == "success" and not again.up_to_date and again.run is not None
    con = open_snapshot(settings)
    assert {t: _dump(con, t, o) for t, o in MARTS.items()} == before


@pytest.mark.integration
def test_a_build_with_nothing_new_runs_nothing_until_something_changes(tmp_path, small_portfolio, small_home):
    """A no-op build: nothing new since the last good build, the same project and settings, its
    snapshot untouched: no build row, no dbt, the snapshot as it was; anything else builds."""
    settings = copy_home(small_home, tmp_path / "h")

    def builds():
        with open_writer(settings) as con:
            return con.execute("SELECT build_id, full_refresh, since_batch_id FROM meta.builds ORDER BY 1").fetchall()

    before, stat = builds(), settings.serving_path.stat()
    result = cli("build", home=settings.home)
    assert result.exit_code == 0, result.stderr
    assert f"build {before[-1][0]} is current (data date 2025-06-30)" in result.stdout + result.stderr
    assert "nothing new, nothing run" in result.stdout + result.stderr
    assert builds() == before
    assert settings.serving_path.stat().st_mtime_ns == stat.st_mtime_ns
    # a changed setting: everything is built again, once
    changed = load_settings(settings.home, environ={"LOANWATCH_WAREHOUSE__TOLERANCE": "0.01"})
    first = build(changed)
    assert first.status == "success" and not first.up_to_date
    assert builds()[-1][1] is True and len(builds()) == len(before) + 1
    second = build(changed)
    assert second.up_to_date and second.build_id == first.build_id and second.data_date == first.data_date
    # a snapshot replaced behind the build's back (a restored copy, another file): built again
    shutil.copyfile(settings.serving_path, tmp_path / "copy.duckdb")
    os.replace(tmp_path / "copy.duckdb", settings.serving_path)
    third = build(changed)
    assert not third.up_to_date and builds()[-1][1] is False  # from that snapshot, incremental
    # the build's phases beside its nodes: dbt's three in sequence within the whole, the copy of
    # the snapshot beside dbt's start (its wait no longer than the copy)
    with open_writer(settings) as con:
        phases = dict(con.execute("""SELECT node, seconds FROM meta.build_nodes
                                     WHERE build_id = ? AND resource_type = 'phase'""", [third.build_id]).fetchall())
    assert {"dbt import", "dbt start", "dbt nodes", "snapshot copy", "snapshot wait", "checks recorded", "publish",
            "build"} <= set(phases)
    assert phases["dbt import"] + phases["dbt start"] + phases["dbt nodes"] + phases["publish"] < phases["build"]
    assert phases["dbt start"] > 0 and phases["dbt nodes"] > 0 and phases["snapshot wait"] <= phases["snapshot copy"] + 0.05
    # a full refresh always runs
    assert not build(changed, full_refresh=True).up_to_date
    assert build(changed).up_to_date
    # a selection builds part of the project: the build after it runs
    assert not build(changed, select=["dpd_buckets"]).up_to_date
    assert not build(changed).up_to_date and build(changed).up_to_date
    # other code (an upgrade of loanwatch, dbt or DuckDB) builds again
    with open_writer(settings) as con:
        con.execute("UPDATE meta.builds SET code_version = 'loanwatch 0.0.1' WHERE build_id = (SELECT max(build_id) FROM meta.builds)")
    assert not build(changed).up_to_date and build(changed).up_to_date


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
def test_a_full_refresh_starts_published_afresh_and_one_that_fails_forces_another(tmp_path, small_home):
    settings = copy_home(small_home, tmp_path / "h")
    size = settings.serving_path.stat().st_size
    for _ in range(2):
        assert build(settings, full_refresh=True).status == "success"
        # a full refresh writes a new file: the snapshot does not grow by a second copy
        assert settings.serving_path.stat().st_size < 1.25 * size
        # the build's file became the snapshot; the home holds one copy between builds
        assert not settings.published_path.exists()

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


@pytest.mark.integration
def test_later_payments_recompute_a_loan_from_their_day_and_equal_one_build(tmp_path, golden):
    """The ten-loan fixture, its payments in four batches: a loan whose new payments all come after
    its earlier ones is recomputed from the first new payment's day; a late earlier payment or a
    reversal recomputes the whole loan. Either way the result equals one build of everything."""
    batches = {
        "a": ["P01", "P09", "P16"],
        "b": ["P02", "P05", "P06", "P10"],  # L02's P05 (03-20) comes before its P04 (03-05)
        "c": ["P04", "P03", "P07", "P11"],
        "d": ["P08", "P12", "P13", "P14", "P15"],  # P14 reverses P13
    }
    folders = golden_batches(tmp_path / "batches", list(batches.values()))
    settings = load_settings(tmp_path / "incremental", environ={})
    recompute_from = {}
    for name, folder in zip(batches, folders):
        with open_writer(settings) as con:
            ingest_paths(con, [folder])
        assert build(settings).status == "success"
        with open_writer(settings) as con:
            recompute_from[name] = dict(con.execute("SELECT loan_id, recompute_from FROM core.int_loans_changed").fetchall())

    day = dt.date.fromisoformat
    # later payments only: from the first new payment's day
    assert recompute_from["b"] == {"L01": day("2024-03-31"), "L02": day("2024-03-20"), "L03": day("2024-03-01"),
                                   "L05": day("2024-03-01")}
    # L02's P04 is earlier than its P05: all of L02
    assert recompute_from["c"] == {"L01": day("2024-04-30"), "L02": None, "L03": day("2024-04-10"),
                                   "L06": day("2024-04-15")}
    # L07's payment and its reversal: all of L07 (it had no payment before)
    assert recompute_from["d"] == {"L03": day("2024-05-01"), "L06": day("2024-05-20"), "L07": None}

    a, b = open_snapshot(settings), open_snapshot(golden)  # one build of everything
    for table, order in MARTS.items():
        assert _dump(a, table, order) == _dump(b, table, order), table
    # L01 closes with P03 (04-30): its rows say so from that day on, not before
    assert a.execute(
        "SELECT min(valid_from), min(closed_date), max(closed_date), count(*) FILTER (WHERE closed_date IS NULL)"
        " FROM marts.fct_loan_states WHERE loan_id = 'L01' AND valid_from >= '2024-04-30'"
    ).fetchone() == (day("2024-04-30"), day("2024-04-30"), day("2024-04-30"), 0)
    assert a.execute(
        "SELECT count(*) FROM marts.fct_loan_states WHERE loan_id = 'L01' AND valid_from < '2024-04-30' AND closed_date IS NOT NULL"
    ).fetchone()[0] == 0


@pytest.mark.integration
def test_a_build_after_a_failed_check_equals_one_build(tmp_path, golden):
    """Nothing of a build with a failing check is published (whatever of it dbt ran, or skipped
    after the check), and the next build, from the last good one, equals one build of it all."""
    settings = copy_home(golden, tmp_path / "h")
    bad, fix = tmp_path / "bad", tmp_path / "fix"
    bad.mkdir()
    fix.mkdir()
    (bad / "loans_99.jsonl").write_text(json.dumps(OVER_SCHEDULED) + "\n")
    (bad / "payments_99.jsonl").write_text(json.dumps(PAYMENT) + "\n")
    # a later version of L99 whose amount is what its schedule asks for
    corrected = {**OVER_SCHEDULED, "amount": 100.02, "updated_at": "2024-05-02T00:00:00Z"}
    (fix / "loans_100.jsonl").write_text(json.dumps(corrected) + "\n")

    with open_writer(settings) as con:
        ingest_paths(con, [bad])
    failed = build(settings)
    assert failed.status == "failed" and not failed.published
    statuses = {r.name: r.status for r in failed.run.results}
    assert statuses["check_principal_outstanding_within_amount"] == "fail"
    # L99's loan and payment rows were written, into the build's own file only
    with open_writer(settings) as con:
        _attach_published(con, settings.published_path)
        assert con.execute(
            "SELECT count(*) FROM published.marts.fct_payment_allocations WHERE loan_id = 'L99'").fetchone()[0] > 0
    snapshot = open_snapshot(settings)
    assert snapshot.execute("SELECT count(*) FROM marts.fct_loan_snapshots WHERE loan_id = 'L99'").fetchone()[0] == 0
    snapshot.close()

    with open_writer(settings) as con:
        ingest_paths(con, [fix])
    assert build(settings).status == "success"
    once = build_home(tmp_path / "once", GOLDEN, bad, fix)
    a, b = open_snapshot(settings), open_snapshot(once)
    assert a.execute("SELECT count(*) FROM marts.fct_loan_snapshots WHERE loan_id = 'L99'").fetchone()[0] > 0
    for table, order in MARTS.items():
        rows = _dump(a, table, order)
        assert rows or table in GOLDEN_EMPTY, table
        assert rows == _dump(b, table, order), table


@pytest.mark.integration
def test_an_incremental_build_starts_from_the_snapshot_and_dbt_waits_for_its_copy(tmp_path, monkeypatch):
    """What a killed build left in published.duckdb (here: a row in its write-ahead log, which
    DuckDB would replay into any file of that name) is replaced by a copy of the snapshot before
    dbt opens the file, however long the copy takes; the build's file then becomes the snapshot,
    and no second copy stays behind."""
    from loanwatch.serve import restore_published
    from loanwatch.transform import build as build_module

    first, second = golden_batches(tmp_path / "batches", [["P01", "P02", "P05"], ["P03", "P04", "P06", "P07"]])
    settings = build_home(tmp_path / "incremental", first)
    assert settings.serving_path.exists() and not settings.published_path.exists()
    wal = settings.published_path.with_name("published.duckdb.wal")
    shutil.copy(settings.serving_path, settings.published_path)
    killed = ("import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); con.execute(\"SET checkpoint_threshold = '1GB'\");"
              " con.execute(\"INSERT INTO marts.fct_loan_states (loan_id, valid_from) VALUES ('LEFTOVER', DATE '2024-01-01')\");"
              " os._exit(0)")
    subprocess.run([sys.executable, "-c", killed, str(settings.published_path)], check=True)
    assert wal.exists()

    copies = []

    def slow_restore(s):
        time.sleep(2)  # longer than dbt takes to load and reach its first connection here
        restore_published(s)
        copies.append(time.monotonic())

    monkeypatch.setattr(build_module, "restore_published", slow_restore)
    with open_writer(settings) as con:
        ingest_paths(con, [second])
    result = build(settings)
    assert result.status == "success", result.errors
    assert len(copies) == 1
    assert not settings.published_path.exists() and not wal.exists()

    whole = build_home(tmp_path / "whole", first, second)
    a, b = open_snapshot(settings), open_snapshot(whole)
    assert a.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id").fetchall() == [(True,), (False,)]
    for table, order in MARTS.items():
        assert _dump(a, table, order) == _dump(b, table, order), table


@pytest.mark.integration
def test_a_build_killed_while_publishing_is_not_taken_for_a_good_one(tmp_path):
    """A build killed after its checks passed but before its file became the snapshot (here: as
    publishing starts) is not recorded as a success: the next build starts from the snapshot
    before it and recomputes what it had, and equals one build of everything."""
    first, second, third = golden_batches(tmp_path / "batches", [["P01", "P02"], ["P03", "P05"], ["P04", "P06"]])
    settings = build_home(tmp_path / "incremental", first)
    with open_writer(settings) as con:
        ingest_paths(con, [second])
    killed = (
        "import os, sys\n"
        "from loanwatch.config import load_settings\n"
        "from loanwatch.transform import build as b\n"
        "b.publish = lambda *a, **k: os._exit(9)\n"
        "b.build(load_settings(sys.argv[1], environ={}))\n"
    )
    assert subprocess.run([sys.executable, "-c", killed, str(settings.home)]).returncode == 9
    with open_writer(settings) as con:
        ingest_paths(con, [third])
    assert build(settings).status == "success"

    with open_writer(settings) as con:
        rows = con.execute("SELECT status, since_batch_id FROM meta.builds ORDER BY build_id").fetchall()
    # the killed build says so; the next one recomputes since the first build, as it did
    assert [r[0] for r in rows] == ["success", "interrupted", "success"]
    assert rows[2][1] == rows[1][1]
    whole = build_home(tmp_path / "whole", first, second, third)
    a, b = open_snapshot(settings), open_snapshot(whole)
    assert a.execute("SELECT status FROM meta.builds ORDER BY build_id").fetchall() == [
        ("success",), ("interrupted",), ("success",)]
    for table, order in MARTS.items():
        assert _dump(a, table, order) == _dump(b, table, order), table
