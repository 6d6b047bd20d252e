{#
  Checks on the loan-grain tables that incremental builds recompute look, on an incremental
  build, only at the loans that build recomputed: every other loan's rows are unchanged since the
  build that last checked them. Full builds check everything.

  Generic tests opt in with `config: {where: __changed_loans__}` (dbt wraps the tested relation
  in get_where_subquery); singular tests filter with changed_loans_only(column).
#}
{#
  Tests reach int_loans_changed by name, not ref(): whether a build is incremental is known only
  when the SQL runs (since_batch()), after dbt has recorded each node's dependencies, and the
  tests run after the models they test anyway.
#}
{% macro changed_loans_only(column='loan_id') -%}
{%- if incremental_build() -%}
{%- set changed = api.Relation.create(database=target_database(), schema=generate_schema_name('core', none), identifier='int_loans_changed') -%}
{{ column }} in (select loan_id from {{ changed }})
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{#
  fct_loan_snapshots is written for unchanged loans too, at the snapshot dates a build adds (a new
  data date, a month end passed). Its checks look, on an incremental build, at the changed loans'
  rows and at every row from the last snapshot date before min(last good build's data date, this
  build's): every date a build adds is on or after that minimum, and the date before it gives each
  new row its predecessor (check_dpd_consistent_over_time). Older rows of unchanged loans are
  those the last good build checked.
#}
{% macro changed_snapshots_only(loan_column='loan_id', date_column='snapshot_date') -%}
{#- without meta.builds (another engine, the watermark given as a --vars value) the last good
    build's data date is unknown: everything is checked -#}
{%- set builds = adapter.get_relation(database=target_database(), schema='meta', identifier='builds') if execute else none -%}
{%- if incremental_build() and builds is not none -%}
{%- set core = generate_schema_name('core', none) -%}
{%- set changed = api.Relation.create(database=target_database(), schema=core, identifier='int_loans_changed') -%}
{%- set dates = api.Relation.create(database=target_database(), schema=core, identifier='int_snapshot_dates') -%}
{%- set data_date = api.Relation.create(database=target_database(), schema=core, identifier='int_data_date') -%}
({{ loan_column }} in (select loan_id from {{ changed }})
    or {{ date_column }} >= (
        select coalesce(max(d.snapshot_date), cast('0001-01-01' as date))
        from {{ dates }} as d
        where d.snapshot_date < (
            select least(
                coalesce(max(b.data_date), cast('0001-01-01' as date)),
                (select data_date from {{ data_date }})
            )
            from {{ builds }} as b
            where b.build_id = (select max(build_id) from {{ builds }} where status = 'success')
        )
    ))
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{#
  Tables appended by batch (calls, merchant_events) never change a loaded row, so on an
  incremental build a key can repeat only where a row of a batch after the last good build has
  it. `config: {where: "__keys_of_new_batches__(call_id)"}` looks, on an incremental build, at
  every row whose key such a row has (old rows included). Full builds check everything.
#}
{% macro new_batch_keys_only(relation, column) -%}
{%- if incremental_build() -%}
{{ column }} in (select {{ column }} from {{ relation }} where batch_id > {{ since_batch() }})
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{# A generic test's relation is wrapped here. #}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__changed_loans__' in where -%}
            {%- set where = where | replace('__changed_loans__', changed_loans_only('loan_id')) -%}
        {%- endif -%}
        {%- set keyed = modules.re.search('__keys_of_new_batches__[(]([a-z_]+)[)]', where) -%}
        {%- if keyed -%}
            {%- set where = where | replace(keyed.group(0), new_batch_keys_only(relation, keyed.group(1))) -%}
        {%- endif -%}
        {%- if '__changed_snapshots__' in where -%}
            {%- set where = where | replace('__changed_snapshots__', changed_snapshots_only('loan_id', 'snapshot_date')) -%}
        {%- endif -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#
  How every check runs: dbt's test materialization, in fewer statements. The failing rows are
  counted first, and kept in schema dq (a table named as the check) only when there are any. A
  check that passes costs one statement, not three (drop the table, create it from the check's
  query, count its rows): on Spark each is a job, about 0.5 s a check in a build. An earlier
  build's table of the check is dropped, so schema dq holds the failing rows of the last build
  that ran the check and found some (`loanwatch check --rows`). A check whose query cannot run
  leaves an earlier build's table as it was (on Spark, with no transactions, a table that cannot be
  written after the drop leaves none); `loanwatch check` gives each check's status.
#}
{%- materialization test, default -%}
  {%- set relations = [] -%}
  {%- if config.get('store_failures_as') not in (none, 'table') or config.get('limit') is not none -%}
    {{ exceptions.raise_compiler_error("check " ~ model['alias'] ~ ": store_failures_as and limit are not supported (macros/checks.sql keeps failing rows as a table, all of them)") }}
  {%- endif -%}
  {%- call statement('main', fetch_result=True) -%}
    {{ get_test_sql(sql, config.get('fail_calc'), config.get('warn_if'), config.get('error_if'), limit=none) }}
  {%- endcall -%}
  {%- if should_store_failures() -%}
    {%- set failures = load_result('main')['table'].columns[0].values()[0] -%}
    {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=model['alias']) -%}
    {%- if old_relation -%}
      {%- do adapter.drop_relation(old_relation) -%}
    {%- endif -%}
    {%- if failures is not none and failures | int > 0 -%}
      {%- set target_relation = api.Relation.create(identifier=model['alias'], schema=schema, database=database, type='table') -%}
      {%- call statement(auto_begin=True) -%}
        {{ get_create_sql(target_relation, sql) }}
      {%- endcall -%}
      {%- do relations.append(target_relation) -%}
    {%- endif -%}
    {{ adapter.commit() }}
  {%- endif -%}
  {{ return({'relations': relations}) }}
{%- endmaterialization -%}
