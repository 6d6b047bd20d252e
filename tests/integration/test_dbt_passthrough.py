"""The dbt project runs by itself on a built home: `loanwatch dbt ARGS` (the home's profile, vars
and folders), and plain `dbt` in the project folder with its profiles.yml and LOANWATCH_HOME."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import duckdb
import pytest

from loanwatch.transform import PROJECT_DIR
from tests.conftest import copy_home, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(small_home, tmp_path_factory):
    return copy_home(small_home, tmp_path_factory.mktemp("dbt_passthrough") / "home")


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_commands_read_the_snapshot_with_dbts_own_output(home):
    listed = run_cli("--home", home.home, "dbt", "ls", "--select", "fct_calls+", "--resource-type", "model")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "loanwatch.marts.fct_calls" in listed.stdout and "loanwatch.marts.fct_holdout_cures" in listed.stdout
    assert "loanwatch.marts.dim_loans" not in listed.stdout
    tested = run_cli("--home", home.home, "dbt", "test", "--select", "dim_loans")
    assert tested.returncode == 0, tested.stdout
    assert "PASS=" in tested.stdout and "ERROR=0" in tested.stdout
    docs = run_cli("--home", home.home, "dbt", "docs", "generate")
    assert docs.returncode == 0, docs.stdout
    assert (home.home / ".dbt" / "target" / "catalog.json").exists()


def test_the_home_settings_are_dbt_vars_and_a_users_vars_win(home):
    shown = run_cli("--home", home.home, "dbt", "compile", "--inline", "select {{ var('login_window_hours') }} as h",
                    env={"LOANWATCH_CALLCENTRE__LOGIN_WINDOW_HOURS": "36"})
    assert shown.returncode == 0, shown.stdout
    assert "select 36 as h" in shown.stdout
    given = run_cli("--home", home.home, "dbt", "compile", "--inline", "select {{ var('login_window_hours') }} as h",
                    "--vars", "{login_window_hours: 12}")
    assert "select 12 as h" in given.stdout


def test_a_writing_command_never_publishes_and_the_next_build_is_full(home):
    before = _digest(home.serving_path)
    built = run_cli("--home", home.home, "dbt", "build", "--select", "dim_loans")  # unit tests included
    assert built.returncode == 0, built.stdout
    assert _digest(home.serving_path) == before
    assert home.published_path.exists()  # the working copy
    after = run_cli("--home", home.home, "build")
    assert after.returncode == 0, after.stderr
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id DESC LIMIT 1").fetchone() == (True,)
    finally:
        con.close()


@pytest.mark.parametrize("args, says", [
    ([], "give a dbt command"),
    (["ls", "--profiles-dir", "x"], "--profiles-dir is set by loanwatch"),
    (["compile", "--vars", "[1, 2]"], "give a mapping"),
])
def test_usage_errors(home, args, says):
    proc = run_cli("--home", home.home, "dbt", *args)
    assert proc.returncode == 2 and says in proc.stderr


def test_a_failing_dbt_command_exits_1(home):
    proc = run_cli("--home", home.home, "dbt", "compile", "--inline", "select * from {{ ref('no_such_model') }}")
    assert proc.returncode == 1
    assert "no_such_model" in proc.stdout


def test_an_unbuilt_home_says_what_to_do(tmp_path):
    proc = run_cli("--home", tmp_path / "empty", "dbt", "ls")
    assert proc.returncode == 1 and "run `loanwatch build` first" in proc.stderr


def test_plain_dbt_in_the_project_folder_reads_the_home(home, tmp_path):
    """The project's profiles.yml: `dbt ls` and `dbt test` from the folder, LOANWATCH_HOME set;
    dbt's files go to a temporary folder, so the package folder stays as shipped."""
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    env = {**os.environ, "LOANWATCH_HOME": str(home.home), "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("DBT_PROFILES_DIR", None)
    listed = subprocess.run([dbt, "ls", "--select", "dim_loans"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stdout
    assert "loanwatch.marts.dim_loans" in listed.stdout
    tested = subprocess.run([dbt, "test", "--select", "dim_loans"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout
    assert "ERROR=0" in tested.stdout
