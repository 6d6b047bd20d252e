"""Data-quality checks on every build: results with history; an error keeps the last good snapshot."""

from __future__ import annotations

import json
import shutil

import pytest

from loanwatch.warehouse import connect
from tests.conftest import GOLDEN, OVER_SCHEDULED, PAYMENT, build_home, cli


@pytest.mark.integration
def test_failing_error_check_keeps_the_previous_snapshot(tmp_path):
    home = tmp_path / "home"
    assert cli("ingest", str(GOLDEN), home=home).exit_code == 0
    assert cli("build", home=home).exit_code == 0
    before = cli("report", "overdue-monthly", "-f", "csv", home=home).stdout
    compiled = home / ".dbt" / "target" / "compiled" / "loanwatch"
    check_sql = compiled / "tests" / "check_principal_outstanding_within_amount.sql"
    [unique_sql] = (compiled / "models" / "marts" / "fct_loan_states.yml").glob("unique_combination_fct_loan_states*.sql")
    # the first build is a full one: its checks look at every loan
    assert "int_loans_changed" not in check_sql.read_text() + unique_sql.read_text()
    snapshot = home / "serving.duckdb"
    inode = snapshot.stat().st_ino
    # schema dq keeps a table for each check that found failing rows (here two warnings), and
    # none for the checks that passed
    found = {r["check"] for r in json.loads(cli("check", "-f", "json", home=home).stdout) if r["failing_rows"]}
    assert found == {"warn_stale_data", "warn_source_status_mismatch"}
    assert _dq_tables(home) == found
    passed = cli("check", "--rows", "check_principal_outstanding_within_amount", home=home)
    assert passed.exit_code == 0 and "no failing rows" in passed.stdout, passed.stdout
    assert json.loads(cli("check", "--rows", "check_principal_outstanding_within_amount", "-f", "json", home=home).stdout) == []

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "loans_99.jsonl").write_text(json.dumps(OVER_SCHEDULED) + "\n")
    (bad / "payments_99.jsonl").write_text(json.dumps(PAYMENT) + "\n")
    assert cli("ingest", str(bad), home=home).exit_code == 0
    result = cli("build", home=home)
    assert result.exit_code == 1
    assert "check check_principal_outstanding_within_amount failed" in result.stderr
    # an incremental build checks the loans it recomputed (here L99), and only those
    assert "int_loans_changed" in check_sql.read_text() and "int_loans_changed" in unique_sql.read_text()
    assert "the previous serving snapshot stays published" in result.stderr
    assert snapshot.stat().st_ino == inode
    assert cli("report", "overdue-monthly", "-f", "csv", home=home).stdout == before

    check = cli("check", "-f", "json", home=home)
    assert check.exit_code == 1
    failed = [r for r in json.loads(check.stdout) if r["status"] == "fail"]
    assert failed == [{"check": "check_principal_outstanding_within_amount", "model": None, "severity": "error",
                       "status": "fail", "failing_rows": 3, "sample_keys": "L99"}]
    rows = json.loads(cli("check", "--rows", "check_principal_outstanding_within_amount", "-f", "json", home=home).stdout)
    assert rows[0]["loan_id"] == "L99" and rows[0]["principal_outstanding_amount"] == -0.01

    # one row per state interval of L99 while it is on the book: 06-01, 06-02 and 07-02 onwards
    assert sorted(r["valid_from"] for r in rows) == ["2024-06-01", "2024-06-02", "2024-07-02"]
    # history: both builds' results are kept
    first = json.loads(cli("check", "--build", "1", "-f", "json", home=home).stdout)
    assert all(r["status"] != "fail" for r in first)
    assert cli("check", "--rows", "no_such_check", home=home).exit_code == 1

    # L99 corrected: the check passes again, and its table of build 2's rows is gone
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "loans_100.jsonl").write_text(json.dumps({**OVER_SCHEDULED, "amount": 100.02, "updated_at": "2024-05-02T00:00:00Z"}) + "\n")
    assert cli("ingest", str(fixed), home=home).exit_code == 0
    assert cli("build", home=home).exit_code == 0
    assert "check_principal_outstanding_within_amount" not in _dq_tables(home)
    again = cli("check", "--rows", "check_principal_outstanding_within_amount", home=home)
    assert again.exit_code == 0 and "no failing rows" in again.stdout, again.stdout


def _dq_tables(home) -> set[str]:
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'dq'").fetchall()}
    finally:
        con.close()


@pytest.mark.integration
def test_a_call_id_loaded_again_fails_its_check_on_an_incremental_build(tmp_path):
    """Ingest never lets a call_id in twice (a repeat is a duplicate or a conflict), but a writer
    that bypasses it could. An incremental build's uniqueness check looks at the keys of the new
    batches and at every row that has one, the old row included."""
    home = tmp_path / "home"
    build_home(home, GOLDEN)
    con = connect(home / "warehouse.duckdb")
    batch = con.execute("SELECT max(batch_id) + 1 FROM meta.batches").fetchone()[0]
    con.execute("""INSERT INTO meta.batches SELECT * REPLACE (? AS batch_id, 'calls_again.jsonl' AS file_name)
                   FROM meta.batches WHERE entity = 'calls'""", [batch])
    # K1 again, in a batch of its own: the same content as the row already loaded
    con.execute("INSERT INTO staging.calls SELECT * REPLACE (? AS batch_id) FROM staging.calls WHERE call_id = 'K1'", [batch])
    con.close()

    result = cli("build", home=home)
    assert result.exit_code == 1
    assert "check unique_calls_call_id failed" in result.stderr
    [unique_sql] = (home / ".dbt" / "target" / "compiled" / "loanwatch" / "models" / "core" / "calls.yml").glob(
        "unique_calls_call_id*.sql")
    assert "batch_id >" in unique_sql.read_text()  # incremental: only the keys of new batches
    got = {r["check"]: r for r in json.loads(cli("check", "-f", "json", home=home).stdout)}
    assert got["unique_calls_call_id"]["sample_keys"] == "K1"
    assert got["unique_calls_call_id"]["failing_rows"] == 1


@pytest.mark.integration
def test_warnings_name_orphans_and_status_mismatches(tmp_path, monkeypatch):
    home = tmp_path / "home"
    src = tmp_path / "src"
    shutil.copytree(GOLDEN, src)
    with open(src / "payments.jsonl", "a") as fh:
        fh.write(json.dumps({"payment_id": "P-orphan", "loan_id": "L-unknown", "paid_at": "2024-06-01", "amount": 5}) + "\n")
        # paid before its loan was issued (L10 is issued 2024-06-20)
        fh.write(json.dumps({"payment_id": "P-early", "loan_id": "L10", "paid_at": "2024-06-01", "amount": 5}) + "\n")
    with open(src / "loans.jsonl", "a") as fh:
        fh.write(json.dumps({"loan_id": "L-odd", "client_id": "C-nobody", "amount": 10, "issue_date": "2024-06-01",
                             "term_months": 1, "status": "frozen", "updated_at": "2024-06-01"}) + "\n")
        # 500 x the median cash loan
        fh.write(json.dumps({"loan_id": "L-huge", "client_id": "C1", "product": "cash", "amount": 350000,
                             "issue_date": "2024-06-01", "term_months": 12, "updated_at": "2024-06-01"}) + "\n")
    assert cli("ingest", str(src), home=home).exit_code == 0
    result = cli("build", home=home)
    assert result.exit_code == 0
    assert "warning: check orphan_payments warns (1 rows)" in result.stderr
    got = {r["check"]: r for r in json.loads(cli("check", "-f", "json", home=home).stdout)}
    assert got["orphan_payments"]["sample_keys"] == "L-unknown"
    assert got["orphan_loans"]["sample_keys"] == "C-nobody"
    assert got["warn_unknown_source_status"]["sample_keys"] == "L-odd"
    assert got["warn_source_status_mismatch"]["failing_rows"] == 4  # L01, L05, L06, L07: "active" but repaid
    assert got["warn_stale_data"]["status"] == "warn"
    assert got["warn_payments_outside_loan_life"]["sample_keys"] == "P-early"
    assert got["warn_amount_outliers"]["sample_keys"] == "L-huge"
    # a setting moves the threshold: 1000 x the median lets the same loan pass
    monkeypatch.setenv("LOANWATCH_CHECKS__AMOUNT_OUTLIER_FACTOR", "1000")
    assert cli("build", home=home).exit_code == 0
    got = {r["check"]: r for r in json.loads(cli("check", "-f", "json", home=home).stdout)}
    assert got["warn_amount_outliers"]["status"] == "pass"


@pytest.mark.integration
def test_check_rows_says_why_a_check_kept_no_table(tmp_path):
    """`check --rows` of a check with no table in schema dq: a pass says "no failing rows"; a
    check that could not run says so and exits 1 (its rows were never kept); an unknown name lists
    the known ones. No build needed: the results and the tables are written here."""
    from loanwatch.config import load_settings
    from loanwatch.warehouse import open_writer

    settings = load_settings(tmp_path / "home", environ={})
    with open_writer(settings) as con:
        con.executemany("INSERT INTO meta.dq_results VALUES (?, ?, NULL, 'error', ?, ?, NULL, '', now())", [
            [1, "passes_now", "fail", 2], [2, "passes_now", "pass", 0],
            [1, "broke", "pass", 0], [2, "broke", "error", 0],
            [2, "finds_rows", "fail", 1]])
        con.execute("CREATE SCHEMA dq")
        con.execute("CREATE TABLE dq.finds_rows AS SELECT 'L1' AS loan_id")
    home = settings.home
    passed = cli("check", "--rows", "passes_now", home=home)
    assert passed.exit_code == 0 and "passes_now: no failing rows" in passed.stdout, passed.stdout
    assert cli("check", "--rows", "passes_now", "-f", "csv", home=home).stdout == ""
    assert json.loads(cli("check", "--rows", "passes_now", "-f", "json", home=home).stdout) == []
    broke = cli("check", "--rows", "broke", home=home)
    assert broke.exit_code == 1 and "ended 'error' in build 2" in broke.stderr, broke.stderr
    assert json.loads(cli("check", "--rows", "finds_rows", "-f", "json", home=home).stdout) == [{"loan_id": "L1"}]
    unknown = cli("check", "--rows", "nope", home=home)
    assert unknown.exit_code == 1 and "broke, finds_rows, passes_now" in unknown.stderr, unknown.stderr
