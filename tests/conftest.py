"""Shared fixtures: warehouses are built once per test session (dbt costs seconds per run)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loanwatch.cli import app
from loanwatch.config import Settings, load_settings

TESTS = Path(__file__).parent
GOLDEN = TESTS / "golden" / "ten_loans"
REAL = (TESTS.parent.parent / "shared" / "data" / "real").resolve()


def pytest_collection_modifyitems(items):
    """The tiers follow the folders: tests/unit is `unit` (`make test-fast`), tests/integration
    and tests/golden build warehouses (`integration`), tests/e2e drives a browser (`e2e`). The
    longest files come first (below)."""
    tiers = {"unit": pytest.mark.unit, "integration": pytest.mark.integration,
             "golden": pytest.mark.integration, "e2e": pytest.mark.e2e}
    for item in items:
        folder = item.path.parent.name
        if folder in tiers:
            item.add_marker(tiers[folder])
    # `make test` runs two workers, a file each at a time (-n 2 --dist loadfile): the longest files
    # start first, so that neither worker is left with one long file at the end while the other waits.
    # xdist keeps this order only with --no-loadscope-reorder (the Makefile's): by default it
    # hands out the files with the most tests first, and Spark's file, of six, came after most others.
    items.sort(key=lambda item: LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST else len(LONGEST_FIRST))


# Files by their time in a clean-clone run (`--durations`), longest first: Spark's (~20 minutes),
# then those of a few minutes each (2026-12-06: test_incremental.py 10, the others 1-4).
LONGEST_FIRST = ["test_spark.py", "test_incremental.py", "test_crash_safety.py", "test_postgres.py",
                 "test_dashboard_kinds.py", "test_hardening.py", "test_cli.py"]


def real_data(name: str) -> Path:
    """A folder of ../shared/data/real, or a skip that says why."""
    path = REAL / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data/real")
        pytest.skip(f"real dataset {path} is absent (it lives in ../shared/data/real beside the clone)")
    return path


TRACEBACK = "Traceback (most recent call last)"
INTERNAL = "internal error:"


def assert_no_traceback(*outputs: str | bytes | None, what: str = "loanwatch") -> None:
    """A suite-wide guard: no output of loanwatch shows a Python traceback, nor the line the CLI
    prints for an error nobody foresaw (a bug). Every CLI run of the tests goes through it."""
    for text in outputs:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        assert TRACEBACK not in (text or ""), f"{what} printed a traceback:\n{text}"
        assert INTERNAL not in (text or ""), f"{what} hit an error nobody foresaw:\n{text}"


def cli(*args: str, home: Path | None = None, input: str | None = None, env: dict[str, str] | None = None):
    """Run the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()
    full = (["--home", str(home)] if home else []) + [str(a) for a in args]
    result = runner.invoke(app, full, input=input, catch_exceptions=False, env=env)
    assert_no_traceback(result.stdout, result.stderr, what=f"loanwatch {' '.join(full)}")
    return result


def run_cli(*args, env: dict[str, str] | None = None, timeout: float = 300, **popen):
    """Run `loanwatch` as a process (signals, exits, locks); the traceback guard applies."""
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "from loanwatch.cli import run; run()", *[str(a) for a in args]]
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, **popen)
    assert_no_traceback(proc.stdout, proc.stderr, what=f"loanwatch {' '.join(map(str, args))}")
    return proc


# Contract-valid (principals within 0.01 x instalments of the amount) yet inconsistent: paying
# 100.01 of a 100.00 loan allocates more principal than was lent.
OVER_SCHEDULED = {"loan_id": "L99", "client_id": "C1", "amount": 100, "issue_date": "2024-05-01",
                  "schedule": [{"due_date": "2024-06-01", "principal": 50.01}, {"due_date": "2024-07-01", "principal": 50.01}],
                  "updated_at": "2024-05-01T00:00:00Z"}
PAYMENT = {"payment_id": "P99", "loan_id": "L99", "paid_at": "2024-06-01T10:00:00Z", "amount": 100.01}


def golden_batches(out: Path, payment_batches: list[list[str]]) -> list[Path]:
    """The ten-loan fixture as folders of incremental batches: the first holds every file but the
    payments, and each holds the payments named in its list (ids P01..P16), in that order."""
    import json
    import shutil

    lines = {json.loads(line)["payment_id"]: line for line in (GOLDEN / "payments.jsonl").read_text().splitlines()}
    folders = []
    for k, ids in enumerate(payment_batches, start=1):
        folder = out / f"batch_{k}"
        folder.mkdir(parents=True)
        if k == 1:
            for entity in ("clients", "loans", "merchants", "merchant_events", "calls"):
                shutil.copy(GOLDEN / f"{entity}.jsonl", folder)
        (folder / "payments.jsonl").write_text("".join(lines[i] + "\n" for i in ids))
        folders.append(folder)
    return folders


def build_home(home: Path, *inputs: Path, settings_env: dict[str, str] | None = None) -> Settings:
    """Ingest inputs into a fresh warehouse at home and build it (library calls, no CLI)."""
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.transform.build import build
    from loanwatch.warehouse import open_writer

    settings = load_settings(home, environ={**(settings_env or {})})
    with open_writer(settings) as con:
        ingest_paths(con, list(inputs))
    result = build(settings)
    assert result.status == "success", result.errors
    return settings


MAPPINGS = TESTS.parent / "examples" / "mappings"


def ingest_mapped(home: Path, dataset: str, build: bool = True):
    """Load a real dataset through its shipped mapping (examples/mappings/DATASET.toml) into a
    fresh warehouse, and build it. Returns the settings and {(file name, entity): FileResult}."""
    from loanwatch.ingest.load import ingest_paths
    from loanwatch.ingest.mapping import load_mapping
    from loanwatch.transform.build import build as run_build
    from loanwatch.warehouse import open_writer

    source = real_data(dataset)
    settings = load_settings(home, environ={})
    with open_writer(settings) as con:
        results = ingest_paths(con, [source], mapping=load_mapping(MAPPINGS / f"{dataset}.toml"))
    if build:
        result = run_build(settings)
        assert result.status == "success", result.errors
    return settings, {(r.path.name, r.entity): r for r in results}


@pytest.fixture(scope="session")
def golden(tmp_path_factory) -> Settings:
    """The ten-loan golden fixture, ingested and built once."""
    return build_home(tmp_path_factory.mktemp("golden"), GOLDEN)


# Nine loans with write-offs and recoveries: their provisions (tests/golden/test_provisions.py) and
# recoveries (tests/golden/test_recoveries.py) by hand.
PROVISIONS = TESTS / "golden" / "provisions"


@pytest.fixture(scope="session")
def provisions_book(tmp_path_factory) -> Settings:
    """The golden provisions book, ingested and built once for the files that read it."""
    return build_home(tmp_path_factory.mktemp("provisions"), PROVISIONS)


# Two loans in MXN beside the golden USD ones (tests/integration/test_currency.py gives their figures).
MXN_LOANS = [
    {"loan_id": "X1", "client_id": "C1", "product": "cash", "amount": 2000, "currency": "MXN", "issue_date": "2024-05-15",
     "term_months": 2, "status": "active", "updated_at": "2024-05-15T10:00:00Z"},
    {"loan_id": "X2", "client_id": "C1", "product": "cash", "amount": 1000, "currency": "MXN", "issue_date": "2024-07-10",
     "term_months": 2, "status": "active", "updated_at": "2024-07-10T10:00:00Z"},
]


@pytest.fixture(scope="session")
def small_home(tmp_path_factory, small_portfolio) -> Settings:
    """The 300-client portfolio ingested and built once; tests that change it take a copy_home."""
    return build_home(tmp_path_factory.mktemp("small_home"), small_portfolio)


def copy_home(settings: Settings, target: Path) -> Settings:
    """A copy of a built home to change (a build costs seconds, a copy a fraction of one)."""
    import shutil

    shutil.copytree(settings.home, target, ignore=shutil.ignore_patterns("*.lock"))
    return load_settings(target, environ={})


@pytest.fixture(scope="session")
def two_currencies(tmp_path_factory) -> Settings:
    """The golden fixture plus two MXN loans; the data date 2024-07-10 is inside a month."""
    import json

    extra = tmp_path_factory.mktemp("mxn")
    (extra / "loans_mxn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MXN_LOANS))
    return build_home(tmp_path_factory.mktemp("two_currencies"), GOLDEN, extra)


@contextlib.contextmanager
def snapshot(settings: Settings):
    """The serving snapshot of a built home, open for reading, closed after."""
    from loanwatch.serve import open_snapshot

    con = open_snapshot(settings)
    try:
        yield con
    finally:
        con.close()


@pytest.fixture()
def golden_con(golden):
    with snapshot(golden) as con:
        yield con


@pytest.fixture(scope="session")
def small_portfolio(tmp_path_factory) -> Path:
    """A generated portfolio of 300 clients (seed 7), as NDJSON files."""
    from loanwatch.generate.portfolio import generate
    from loanwatch.generate.write import write_portfolio

    out = tmp_path_factory.mktemp("small_raw")
    write_portfolio(generate(300, seed=7, start=dt.date(2024, 1, 1), end=dt.date(2025, 6, 30)), out)
    return out


@pytest.fixture(scope="session")
def notify_home(tmp_path_factory) -> Path:
    """The golden fixture plus tests/golden/notify_extra (calls, a phone, a loan), built once."""
    return build_home(tmp_path_factory.mktemp("notify"), GOLDEN, GOLDEN.parent / "notify_extra").home


@pytest.fixture(scope="session")
def two_batches(tmp_path_factory):
    """The 2,000-client portfolio in two batches (tests/engine_checks.py), and DuckDB's home
    built from them batch by batch: what another engine's home built the same way must equal."""
    from tests.engine_checks import build_in_batches, portfolio_in_two_batches

    root = tmp_path_factory.mktemp("two_batches")
    batches = portfolio_in_two_batches(root)
    on_duck = load_settings(root / "duck", environ={})
    build_in_batches(on_duck, batches)
    return batches, on_duck


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the whole test run (tests/pg.py)."""
    from tests.pg import start_server

    server, stop = start_server()
    try:
        yield server
    finally:
        stop()
