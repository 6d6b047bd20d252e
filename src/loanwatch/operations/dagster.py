"""A Dagster code location for loanwatch (the optional extra `dagster`).

    LOANWATCH_HOME=/srv/loanwatch/home dagster dev -m loanwatch.operations.dagster

The assets, with their lineage:
- `raw/<table>`: ingest of the new files of [run] inbox (through [run] mapping when set): one asset
  per staging table the dbt project reads as a source;
- every dbt model, from the same dbt project (dagster-dbt reads its manifest): materialising them
  runs `loanwatch build`, so a Dagster run is incremental, checked and published exactly as the
  CLI's (selecting some models builds those, with the rest kept from the serving snapshot);
- `loanwatch/contact_plan`: after the marts, the day's contact plan, and when [run] notify is
  true, `notify send`.

Settings come from the usual places (LOANWATCH_HOME, loanwatch.toml, LOANWATCH_* variables).
"""

# (no `from __future__ import annotations`: Dagster reads the context parameter's annotation)
import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    multi_asset,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from loanwatch.config import load_settings
from loanwatch.errors import Problem

# dbt's tests stay loanwatch checks (recorded in meta.dq_results, shown by `loanwatch check`)
TRANSLATOR = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=False))
PLAN_DEPENDS_ON = ("dim_loans", "fct_loan_states", "fct_calls")


def manifest_path(settings) -> Path:
    """dbt's manifest of the project (`dbt parse`), written under <home>/.dbt/target."""
    from loanwatch.engines.duckdb import DuckDBEngine
    from loanwatch.transform import release_dbt, run_dbt

    run = run_dbt(settings, "parse", ["--write-json"], engine=DuckDBEngine(settings))  # a parse: any engine's profile would do
    release_dbt()
    path = settings.home / ".dbt" / "target" / "manifest.json"
    if not run.success or not path.exists():
        raise Problem(f"the dbt project could not be parsed: {run.error}")
    return path


def definitions(settings=None) -> Definitions:
    settings = settings or load_settings()
    manifest = manifest_path(settings)
    parsed = json.loads(manifest.read_text())
    sources = sorted(n["name"] for n in parsed["sources"].values() if n["source_name"] == "raw")
    # each dbt model's asset key (its schema and name), as dagster-dbt names it; an ephemeral
    # model is no asset (it is inlined into the models that read it)
    model_keys = {TRANSLATOR.get_asset_spec(parsed, uid, None).key: props["name"]
                  for uid, props in parsed["nodes"].items()
                  if props["resource_type"] == "model" and props["config"].get("materialized") != "ephemeral"}
    key_of = {name: key for key, name in model_keys.items()}

    @multi_asset(specs=[AssetSpec(AssetKey(["raw", name]), group_name="ingest",
                                  description=f"staging.{name}: rows loaded from the inbox's files") for name in sources],
                 name="loanwatch_ingest", can_subset=False)
    def ingest(context: AssetExecutionContext):
        from loanwatch.operations.run import inbox_folders, ingest_step

        step = ingest_step(settings, inbox_folders(settings, None))
        context.log.info(f"ingest: {step.status} {step.counts} {step.message}")
        for name in sources:
            yield MaterializeResult(asset_key=AssetKey(["raw", name]), metadata={**step.counts, "status": step.status})

    @dbt_assets(manifest=manifest, dagster_dbt_translator=TRANSLATOR, name="loanwatch_dbt")
    def models(context: AssetExecutionContext):
        from loanwatch.transform.build import build

        selected = [model_keys[k] for k in context.selected_asset_keys if k in model_keys]
        result = build(settings, select=None if len(selected) == len(model_keys) else selected)
        if result.status != "success":
            raise Problem(f"build {result.build_id} failed; the previous serving snapshot stays published: "
                          + "; ".join(result.errors[:3]))
        if result.up_to_date:  # nothing new since the last good build: nothing run, nothing to report
            context.log.info(f"{result.message} (data date {result.data_date})")
            return
        # dbt ran the models in dependency order: Dagster wants them reported in that order
        for node in result.run.results:
            key = key_of.get(node.name) if node.resource_type == "model" else None
            if key in context.selected_asset_keys:
                yield MaterializeResult(asset_key=key, metadata={"build_id": result.build_id, "seconds": round(node.seconds, 2),
                                                                 "data_date": str(result.data_date)})

    @asset(key=AssetKey(["loanwatch", "contact_plan"]), group_name="notify",
           deps=[key_of[name] for name in PLAN_DEPENDS_ON],
           description="The day's contact plan; sent (notify send) when [run] notify is true.")
    def contact_plan(context: AssetExecutionContext) -> MaterializeResult:
        from loanwatch.notify.plan import contact_plan as plan
        from loanwatch.serve import open_snapshot

        con = open_snapshot(settings)
        try:
            planned = len(plan(con, settings, None, None, False).rows)
        finally:
            con.close()
        metadata = {"planned": planned}
        if settings.get("run", "notify"):
            from loanwatch.notify.send import send

            sent = send(settings)
            metadata.update(sent=sent.sent, failed=sent.failed, held=sent.deferred)
            if sent.failed:
                context.log.warning(f"{sent.failed} message(s) failed; the outbox keeps them")
        return MaterializeResult(metadata=metadata)

    return Definitions(assets=[ingest, models, contact_plan],
                       jobs=[define_asset_job("loanwatch_daily", selection="*")])


def __getattr__(name: str):
    # `dagster dev -m loanwatch.operations.dagster` looks up `defs`: built on first use, so that
    # importing this module does not parse the dbt project
    if name == "defs":
        global defs
        defs = definitions()
        return defs
    raise AttributeError(name)
