"""One home per rule (docs/architecture.md): the dbt vars come from the settings' one table of
defaults, and the reports spell the delinquency rules only in reports/rules.py."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from loanwatch.config import load_settings
from loanwatch.transform import DBT_VARS, PROJECT_DIR, dbt_vars, project_vars_yaml

SRC = Path(__file__).resolve().parents[2] / "src" / "loanwatch"


def test_the_projects_vars_are_the_settings_defaults(tmp_path):
    """dbt_project.yml's vars (for plain dbt) are written from config.DEFAULTS by `make docs`: in
    sync, and what loanwatch passes with no setting changed."""
    text = (PROJECT_DIR / "dbt_project.yml").read_text()
    assert project_vars_yaml() in text, "dbt_project.yml's vars are stale: run `make docs`"
    assert yaml.safe_load(text)["vars"] == dbt_vars(load_settings(tmp_path, environ={}))


def test_every_var_the_project_reads_is_a_setting():
    """A var() in the project that no setting feeds would be a default written in the SQL; a var no
    model reads is a stale entry. since_batch is the build's watermark, not a setting; servicing_all
    a switch for tests (every loan allocated event by event, tests/integration/test_servicing_paths.py)."""
    read = set()
    for path in PROJECT_DIR.rglob("*.sql"):
        read |= set(re.findall(r"""(?<!env_)var\(\s*['"](\w+)['"]""", path.read_text()))  # not env_var()
    assert read - {"since_batch", "servicing_all"} == set(DBT_VARS)


def test_a_setting_changes_its_var(tmp_path):
    env = {"LOANWATCH_CALLCENTRE__CURE_WINDOW_DAYS": "10", "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0.125",
           "LOANWATCH_WAREHOUSE__DPD_COUNTS_DUE_DAY": "true"}
    values = dbt_vars(load_settings(tmp_path, environ=env))
    assert (values["cure_window_days"], values["holdout_basis_points"], values["dpd_counts_due_day"]) == (10, 1250, True)
    assert values["promise_grace_days"] == 3


def test_the_reports_spell_the_delinquency_rules_in_one_module():
    """The list of active states and the PAR thresholds appear in reports/rules.py only (the marts
    publish the flags, the dbt macros hold their rules)."""
    spelled = re.compile(r"""(?i:in) \('current', 'overdue'\)|\bdpd > \d|= 'overdue'""")  # SQL, not prose
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if p.name != "rules.py" and spelled.search(p.read_text()) and "generate" not in p.parts]
    assert offenders == []


def test_the_reports_par_thresholds_are_the_marts():
    """reports/rules.py PAR_DAYS (the reports, between snapshots) and macros/delinquency.sql par_days()
    (the published is_par flags) name the same thresholds."""
    from loanwatch.reports.rules import PAR_DAYS

    macro = (PROJECT_DIR / "macros" / "delinquency.sql").read_text()
    found = re.search(r"macro par_days\(\).*?return\(\[([\d, ]+)\]\)", macro, re.S)
    assert found and tuple(int(x) for x in found.group(1).split(",")) == PAR_DAYS
