"""The Dagster code location: its definitions load from the dbt project, and materialising every
asset in-process ingests, builds and plans exactly as `loanwatch run` does."""

from __future__ import annotations

import shutil

import pytest

from loanwatch.config import load_settings
from tests.conftest import GOLDEN, cli

dagster = pytest.importorskip("dagster", reason="the `dagster` extra is not installed (pip install loanwatch[dagster])")


def test_definitions_materialise_the_golden_fixture_in_process(tmp_path):
    from loanwatch.operations.dagster import definitions

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for f in GOLDEN.iterdir():
        shutil.copy(f, inbox)
    settings = load_settings(tmp_path / "home", environ={"LOANWATCH_RUN__INBOX": str(inbox)})
    defs = definitions(settings)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    # lineage from the files to the marts and the plan: the staging tables, every model, the plan
    assert {"raw/loans", "raw/payments", "staging/stg_loans", "core/payments", "marts/fct_loan_states",
            "marts/fct_calls", "loanwatch/contact_plan"} <= keys
    graph = defs.resolve_asset_graph()
    assert dagster.AssetKey(["raw", "payments"]) in graph.get(dagster.AssetKey(["staging", "stg_payments"])).parent_keys
    assert dagster.AssetKey(["marts", "fct_loan_states"]) in graph.get(dagster.AssetKey(["loanwatch", "contact_plan"])).parent_keys

    result = dagster.materialize(list(defs.assets), instance=dagster.DagsterInstance.ephemeral())
    assert result.success
    events = result.get_asset_materialization_events()
    assert {e.asset_key.to_user_string() for e in events} == keys
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in events}
    assert metadata["raw/loans"]["files_new"].value == 6 and metadata["raw/loans"]["rows_accepted"].value == 40
    assert metadata["marts/fct_loan_states"]["data_date"].value == "2024-06-30"

    # the same build as the CLI's: published, with its checks, and the plan as `notify plan` has it
    planned = cli("notify", "plan", "--format", "csv", home=settings.home)
    assert planned.exit_code == 0
    assert metadata["loanwatch/contact_plan"]["planned"].value == len(planned.stdout.splitlines()) - 1 > 0
    checks = cli("check", home=settings.home)
    assert checks.exit_code == 0 and "build 1: success" in checks.stdout

    # again, with nothing new: the job succeeds, dbt's models are not run, so not materialised
    again = dagster.materialize(list(defs.assets), instance=dagster.DagsterInstance.ephemeral())
    assert again.success
    materialised = {e.asset_key.to_user_string() for e in again.get_asset_materialization_events()}
    assert "raw/loans" in materialised and "marts/fct_loan_states" not in materialised
