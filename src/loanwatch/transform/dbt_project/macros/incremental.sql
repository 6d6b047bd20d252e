{#
  Incremental builds. After the first build, a model configured with incremental_hook()
  recomputes only the keys whose inputs arrived after the last successful build: its pre-hook
  deletes their rows, the model inserts their new rows (none for a loan that was cancelled).
  Filters go through for_changed(column, changed) so a full build reads everything.

  `changed` names the set of keys (changed_keys):
    loans       loans with new versions, schedules, payments or reversals (int_loans_changed);
                everything computed from payments uses this one
    loan_terms  loans with new versions or schedules (their terms and instalments)
    clients     clients with new versions
    merchants   merchants with new versions
    payments    payments of new batches, and the payments they reverse
#}

{#
  The last successful build's batch watermark. `loanwatch build` records it in meta.builds
  (the row of the running build) before it runs dbt, and this reads it when the SQL runs, so the
  parsed project stays the same from build to build (dbt re-parses everything when a --vars
  value changes). A --vars since_batch value wins (dbt run by hand); a warehouse without meta.builds
  (another engine) or with no running build means 0: everything.
#}
{% macro since_batch() -%}
{%- if var('since_batch', none) is not none -%}
{{ var('since_batch') | int }}
{%- elif not execute -%}
0
{%- else -%}
{%- set builds = adapter.get_relation(database=target.database, schema='meta', identifier='builds') -%}
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

{% macro changed_keys(changed='loans') -%}
{%- if changed == 'loans' -%}
select loan_id from {{ ref('int_loans_changed') }}
{%- elif changed == 'loan_terms' -%}
{%- set since = since_batch() -%}
select loan_id from {{ source('raw', 'loans') }} where batch_id > {{ since }}
union
select loan_id from {{ source('raw', 'loan_schedules') }} where batch_id > {{ since }}
{%- elif changed == 'clients' -%}
select client_id from {{ source('raw', 'clients') }} where batch_id > {{ since_batch() }}
{%- elif changed == 'payments' -%}
{%- set since = since_batch() -%}
select payment_id from {{ source('raw', 'payments') }} where batch_id > {{ since }}
union
select reverses from {{ source('raw', 'payments') }} where batch_id > {{ since }} and reverses is not null
{%- elif changed == 'merchants' -%}
select merchant_id from {{ source('raw', 'merchants') }} where batch_id > {{ since_batch() }}
{%- else -%}
{{ exceptions.raise_compiler_error("changed_keys: unknown set " ~ changed) }}
{%- endif -%}
{%- endmacro %}

{% macro incremental_hook(column='loan_id', changed='loans', extra_condition=none) -%}
{% if is_incremental() -%}
delete from {{ this }} where {{ column }} in ({{ changed_keys(changed) }})
{%- if extra_condition %} or {{ extra_condition }}{% endif %}
{%- endif %}
{%- endmacro %}

{#- An ephemeral model is inlined into the incremental models that use it: it filters when the
    build is incremental. -#}
{% macro for_changed(column='loan_id', changed='loans') -%}
{%- if is_incremental() or (model.config.materialized == 'ephemeral' and incremental_build()) -%}
{{ column }} in ({{ changed_keys(changed) }})
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{#
  Incremental builds at batch grain, for events that never change once loaded (ingest keeps one
  row per event id): a model configured with batch_incremental_hook() appends the rows of batches
  after the last good build. Its pre-hook first deletes those batches' rows, so a build that was
  interrupted after the insert and is run again does not add them twice.
#}
{% macro batch_incremental_hook() -%}
{% if is_incremental() -%}
delete from {{ this }} where batch_id > {{ since_batch() }}
{%- endif %}
{%- endmacro %}

{% macro for_new_batches(column='batch_id') -%}
{%- if is_incremental() -%}
{{ column }} > {{ since_batch() }}
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}
