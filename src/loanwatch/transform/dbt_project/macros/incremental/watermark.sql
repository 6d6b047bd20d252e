{#
  What an incremental build recomputes from: the last successful build's batch watermark and data
  date, and the set of rows of later batches (events that never change once loaded).
#}

{#
  The last successful build's batch watermark. `loanwatch build` records it in meta.builds
  (the row of the running build) before it runs dbt, and gives dbt the same value in the
  environment (LOANWATCH_SINCE_BATCH), read when the SQL runs, so the parsed project stays the
  same from build to build (dbt re-parses everything when a --vars value changes) and no node
  queries meta.builds for it (on Spark a query is a job: about 0.4 s a node). A --vars
  since_batch value wins (dbt run by hand); without either, meta.builds' running build; a
  warehouse without meta.builds (another engine) or with no running build means 0: everything.
#}
{% macro since_batch() -%}
{%- if var('since_batch', none) is not none -%}
{{ var('since_batch') | int }}
{%- elif not execute -%}
0
{%- elif env_var('LOANWATCH_SINCE_BATCH', '') != '' -%}
{{ env_var('LOANWATCH_SINCE_BATCH') | int }}
{%- else -%}
{%- set builds = adapter.get_relation(database=target_database(), schema='meta', identifier='builds') -%}
{%- if builds is none -%}
0
{%- else -%}
{%- set found = run_query("select coalesce(max(since_batch_id), 0) from " ~ builds ~ " where status = 'running'") -%}
{{ found.columns[0].values()[0] | int }}
{%- endif -%}
{%- endif -%}
{%- endmacro %}

{# Whether this build is incremental: known when the SQL runs, from since_batch(). #}
{% macro incremental_build() -%}
{{ return(since_batch() | int > 0) }}
{%- endmacro %}

{#- The data date of the last good build; without meta.builds (another engine, a watermark given
    as --vars) the first day there is: every undecided call is recomputed. -#}
{% macro last_good_data_date() -%}
{%- set builds = adapter.get_relation(database=target_database(), schema='meta', identifier='builds') if execute else none -%}
{%- if builds is not none -%}
(select coalesce(max(b.data_date), cast('0001-01-01' as date)) from {{ builds }} as b
 where b.build_id = (select max(build_id) from {{ builds }} where status = 'success'))
{%- else -%}
cast('0001-01-01' as date)
{%- endif -%}
{%- endmacro %}

{#
  Set new_batches (calls, logins, merchant_events): the rows of batches after the last good build.
  Ingest keeps one row per event id, and an event never changes once loaded, so these models
  append. The pre-hook still deletes those batches' rows first, so a build that was interrupted
  after the insert and is run again does not add them twice.
#}
{% macro new_batches_recomputed() -%}
{{ return([{'where': '{row}.batch_id > ' ~ since_batch()}]) }}
{%- endmacro %}
