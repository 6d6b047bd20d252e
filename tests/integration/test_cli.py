"""The CLI as a user meets it: help for every command, docs in sync, clear errors, the writer lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loanwatch.cli import app
from loanwatch.config import load_settings
from loanwatch.warehouse import WarehouseBusy, connect, writer_lock
from tests.conftest import GOLDEN, OVER_SCHEDULED, PAYMENT, assert_no_traceback, cli

ROOT = Path(__file__).resolve().parents[2]


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            names += [f"{name} {sub}" for sub in cmd.commands]
        else:
            names.append(name)
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_and_is_documented(command):
    result = cli(*command.split(), "--help", env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    # every option's help is printed whole: words in brackets ("[dashboard] port") are text, not markup
    import typer.main

    click_command = typer.main.get_command(app)
    for part in command.split():
        click_command = click_command.commands[part]
    printed = " ".join(result.stdout.split())
    for param in click_command.params:
        if getattr(param, "help", None) and not getattr(param, "hidden", False):
            assert " ".join(param.help.split()) in printed, (command, param.help)
    from loanwatch.reports import registry

    name = command.removeprefix("report ")
    if command.startswith("report ") and name in registry.names():
        # a report verb: its row of docs/reports.md is generated from the registry (test_registry.py)
        assert f"| `{name}" in (ROOT / "docs" / "reports.md").read_text()
        return
    readme = (ROOT / "README.md").read_text()
    assert f"loanwatch {command}" in readme, f"`loanwatch {command}` is not documented in README.md"


def test_init_is_idempotent(tmp_path):
    assert cli("init", home=tmp_path).exit_code == 0
    assert cli("init", home=tmp_path).exit_code == 0
    assert (tmp_path / "warehouse.duckdb").exists()


def test_reports_before_any_build_say_what_to_do(tmp_path):
    result = cli("report", "overdue-monthly", home=tmp_path)
    assert result.exit_code == 6  # nothing to report yet (README)
    assert "no published data yet" in result.stderr and "loanwatch build" in result.stderr


def test_every_report_on_an_empty_build_exits_6_naming_what_to_load(tmp_path):
    """A build of nothing publishes an empty snapshot: every figure then says what it needs, with
    the same exit code (6), never an empty table with 0 or an internal error."""
    from loanwatch.reports import registry

    assert cli("build", home=tmp_path).exit_code == 0
    needs = {"loans": "no loans yet", "book": "no loans yet", "ledger": "no merchant ledger yet", "calls": "no calls yet",
             "contacts": "no calls yet"}
    for name in registry.names():
        entry = registry.by_name(name)[0]
        result = cli("report", name, home=tmp_path)
        assert result.exit_code == 6, (name, result.stdout, result.stderr)
        assert needs[entry.filters] in result.stderr and "loanwatch ingest" in result.stderr, name
        assert result.stdout == "", name
    for args in (("notify", "plan"), ("report", "html", "--out", str(tmp_path / "r.html"))):
        result = cli(*args, home=tmp_path)
        assert result.exit_code == 6 and "no loans yet" in result.stderr, args


def _hold_lock(home: str, ready, release):
    with writer_lock(load_settings(home, environ={})):
        ready.set()
        release.wait(30)


def test_a_second_writer_waits_then_fails_clearly(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        start = time.monotonic()
        with pytest.raises(WarehouseBusy, match=r"being written by pid \d+; waited 1 s"):
            with writer_lock(load_settings(tmp_path, environ={}), timeout=1):
                pass
        assert 0.9 <= time.monotonic() - start < 10
    finally:
        release.set()
        holder.join(30)
    with writer_lock(load_settings(tmp_path, environ={}), timeout=1):
        pass  # free again


# `loanwatch` as a process, with an object that says when the interpreter's teardown frees it
_WITH_TEARDOWN_PROBE = """
import sys

class Probe:
    def __del__(self):
        print("interpreter teardown", file=sys.stderr)

probe = Probe()
sys.argv = ["loanwatch", *sys.argv[1:]]
from loanwatch.cli import run
run()
"""


@pytest.mark.integration
def test_a_build_process_exits_without_teardown_with_its_code_and_files_closed(tmp_path):
    """`loanwatch build` loads dbt, so run() ends its process without the interpreter's teardown;
    the exit code, the output and dbt's log still come out whole, and no file is left open.
    A command that does not load dbt (ingest) exits the ordinary way."""
    home = tmp_path / "home"
    env = {**os.environ, "LOANWATCH_HOME": str(home)}

    def loanwatch(*args):
        done = subprocess.run([sys.executable, "-c", _WITH_TEARDOWN_PROBE, *args], env=env,
                              capture_output=True, text=True, timeout=600)
        assert_no_traceback(done.stdout, done.stderr)
        return done

    ingest = loanwatch("ingest", str(GOLDEN))
    assert ingest.returncode == 0 and "interpreter teardown" in ingest.stderr
    done = loanwatch("build")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("build 1: success, data date 2024-06-30")
    assert "warning: check warn_stale_data" in done.stderr
    assert "interpreter teardown" not in done.stderr
    assert "leaked" not in done.stderr  # nothing complains about objects left at exit
    assert not list(home.glob("*.wal")) and not list(home.glob("*.tmp"))
    log = (home / ".dbt" / "logs" / "dbt.log").read_text()
    # dbt's file log is kept at info (its debug lines cost a batch build seconds): the run's summary
    assert " ERROR=0 " in log.rsplit("Running with dbt=", 1)[1].split("Done. PASS=", 1)[1].splitlines()[0]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "loans_99.jsonl").write_text(json.dumps(OVER_SCHEDULED) + "\n")
    (bad / "payments_99.jsonl").write_text(json.dumps(PAYMENT) + "\n")
    assert loanwatch("ingest", str(bad)).returncode == 0
    failed = loanwatch("build")
    assert failed.returncode == 1 and "interpreter teardown" not in failed.stderr
    assert "build 2 failed" in failed.stderr
    con = connect(home / "warehouse.duckdb", read_only=True)
    assert con.execute("SELECT build_id, status FROM meta.builds ORDER BY 1").fetchall() == [(1, "success"), (2, "failed")]
    con.close()


def test_report_html_without_the_dashboard_extra_names_it(golden, tmp_path):
    """On an install without plotly (the dashboard extra), `report html` says which extra to
    install (exit 2) instead of failing on an import; every other report still works."""
    blocked = "import sys; sys.modules['plotly'] = None; sys.modules['plotly.offline'] = None; "
    env = {**os.environ, "LOANWATCH_HOME": str(golden.home)}

    def loanwatch(*args):
        done = subprocess.run([sys.executable, "-c", blocked + "from loanwatch.cli import run; run()", *args],
                              env=env, capture_output=True, text=True, timeout=300)
        assert_no_traceback(done.stdout, done.stderr)
        return done

    html = loanwatch("report", "html", "--out", str(tmp_path / "r.html"))
    assert html.returncode == 2
    assert "report html needs plotly, which comes with the dashboard extra: pip install 'loanwatch[dashboard]'" in html.stderr
    assert not (tmp_path / "r.html").exists()
    assert loanwatch("report", "buckets", "-f", "csv").returncode == 0
