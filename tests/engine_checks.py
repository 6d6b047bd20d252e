"""Comparing another engine's build with DuckDB's: the serving snapshot, every report, the plan;
and the generated portfolio both engine suites build in two incremental batches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from loanwatch.reports import registry
from loanwatch.serve import open_snapshot
from tests.conftest import cli


def published_rows(home: Path, tables: dict[str, str]) -> dict[str, list]:
    """The published rows of `tables` (name: order by), without where each row came from (batch,
    file, line): what two homes that loaded the same data in different ways must share."""
    from loanwatch.config import load_settings

    con = open_snapshot(load_settings(home, environ={}))
    try:
        out = {}
        for table, order in tables.items():
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in ("batch_id", "file_name", "line_no")]
            out[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()
        return out
    finally:
        con.close()


def snapshot_tables(settings) -> dict[str, tuple[list, list]]:
    """Every table of the serving snapshot's core and marts: (column names and types, rows in order)."""
    con = open_snapshot(settings)
    try:
        out = {}
        tables = con.execute("""SELECT schema_name || '.' || table_name FROM duckdb_tables()
                                WHERE schema_name IN ('core', 'marts') ORDER BY 1""").fetchall()
        for (table,) in tables:
            columns = con.execute(f"DESCRIBE {table}").fetchall()
            order = ", ".join(str(i + 1) for i in range(len(columns)))
            rows = con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            out[table] = ([(c[0], c[1]) for c in columns], rows)
        return out
    finally:
        con.close()


def assert_same_snapshot(other_settings, duck_settings) -> None:
    """Another engine's serving snapshot equals DuckDB's: the same tables, types and rows."""
    other, duck = snapshot_tables(other_settings), snapshot_tables(duck_settings)
    assert sorted(other) == sorted(duck)
    assert "marts.fct_loan_snapshots" in other and "core.loan_versions" in other
    for table in duck:
        assert other[table][0] == duck[table][0], f"{table}: column types differ"
        assert other[table][1] == duck[table][1], f"{table}: rows differ"


def assert_same_reports(other_settings, duck_settings) -> None:
    """Every report of the registry and the contact plan, as CSV, the same on both homes."""
    runs = [["report", r.name, "-f", "csv", *r.view_args] for r in registry.REPORTS]
    runs.append(["notify", "plan", "-f", "csv"])
    for args in runs:
        on_other, on_duck = cli(*args, home=other_settings.home), cli(*args, home=duck_settings.home)
        assert on_other.exit_code == on_duck.exit_code == 0, (args, on_other.stderr)
        assert on_other.stdout == on_duck.stdout and on_other.stdout.count("\n") > 1, args


# The provisions golden fixture (tests/golden/test_provisions.py): write-offs with recoveries by hand,
# and an LGD from them (generated portfolios have recoveries too, but too few write-offs old enough
# for an LGD), so fct_loan_recoveries has rows.
PROVISIONS = Path(__file__).parent / "golden" / "provisions"
PROVISIONS_ENV = {"LOANWATCH_PROVISIONS__LGD_MIN_LOANS": "2", "LOANWATCH_PROVISIONS__LGD_WINDOW_MONTHS": "1"}


def assert_same_provisions(other_settings, duck_settings) -> None:
    """The provisions fixture built on another engine equals DuckDB's build: every table of the
    snapshot (the new marts among them, with rows), and the provisions, matrix, forecast and
    back-test tables with their notes (read from each snapshot, as the reports do)."""
    from loanwatch.config import load_settings
    from loanwatch.reports import provisions as pv

    assert_same_snapshot(other_settings, duck_settings)
    tables = {}
    for settings in (other_settings, duck_settings):
        s = load_settings(settings.home, environ=PROVISIONS_ENV)
        with open_snapshot(settings) as con:
            assert con.execute("SELECT count(*) FROM marts.fct_loan_recoveries").fetchone()[0] == 3
            runs = [pv.transition_matrix(con, settings=s), pv.forecast(con, settings=s), pv.forecast_backtest(con, settings=s)]
            runs += [pv.provisions(con, by=by, method=method, settings=s) for by in pv.GROUPS for method in pv.METHODS]
            tables[settings.home] = [(t.columns, t.rows, t.notes) for t in runs]
    assert tables[other_settings.home] == tables[duck_settings.home]


def portfolio_in_two_batches(out: Path) -> list[list[Path]]:
    """2,000 generated clients (seed 25) split chronologically in two batches: their files."""
    from loanwatch.generate.portfolio import generate
    from loanwatch.generate.split import split
    from loanwatch.generate.write import write_portfolio

    write_portfolio(generate(2000, seed=25, start=dt.date(2024, 1, 1), end=dt.date(2025, 3, 31)), out / "raw")
    parts = split([out / "raw"], 2, out / "parts").parts
    return [parts[part] for part in sorted(parts)]


def build_in_batches(settings, batches: list[list[Path]], between=None) -> None:
    """Ingest and build batch by batch (as a daily run does), landing each batch on the engine;
    the first build full, every later one incremental (asserted). ``between(settings)`` runs
    after each build but the last."""
    from loanwatch.engines import open_engine
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.transform.build import build
    from loanwatch.warehouse import open_writer

    for files in batches:
        with open_writer(settings) as con:
            ingest_paths(con, files)
            open_engine(settings).land_pending(con)
        result = build(settings)
        assert result.status == "success", result.errors
        if between and files is not batches[-1]:
            between(settings)
    with open_snapshot(settings) as con:
        full = con.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id").fetchall()
    assert full == [(True,)] + [(False,)] * (len(batches) - 1), full


# The servicing golden fixtures (tests/golden/test_servicing.py, test_restructuring.py): charges,
# waivers, their reversals, a schedule with fees and restructurings, allocated event by event
# (METRICS v3 §2). Both are loaded into one home.
SERVICING = Path(__file__).parent / "golden" / "servicing"
RESTRUCTURING = Path(__file__).parent / "golden" / "restructuring"


def assert_same_servicing(other_settings, duck_settings) -> None:
    """The servicing fixture built on another engine equals DuckDB's build: every table of the
    snapshot, and `report loans` at dates before, between and after its events."""
    assert_same_snapshot(other_settings, duck_settings)
    for as_of in ("2024-02-07", "2024-02-29", "2024-03-20", "2024-03-31", "2024-04-05", "2024-05-31"):
        args = ["report", "loans", "-f", "csv", "--as-of", as_of]
        on_other, on_duck = cli(*args, home=other_settings.home), cli(*args, home=duck_settings.home)
        assert on_other.exit_code == on_duck.exit_code == 0, (args, on_other.stderr)
        assert on_other.stdout == on_duck.stdout and "charges_past_due" in on_other.stdout, args
