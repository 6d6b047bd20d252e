{#
  Incremental builds at loan grain. A model configured with loan_incremental() recomputes, after
  the first build, only the loans in int_loans_changed: its pre-hook deletes their rows, the model
  inserts their new rows (none for a loan that was cancelled). Filters go through
  for_changed_loans(column) so a full build reads everything.
#}
{% macro loan_incremental_hook(extra_condition=none) -%}
{% if is_incremental() -%}
delete from {{ this }} where loan_id in (select loan_id from {{ ref('int_loans_changed') }})
{%- if extra_condition %} or {{ extra_condition }}{% endif %}
{%- endif %}
{%- endmacro %}

{% macro for_changed_loans(column='loan_id') -%}
{%- if is_incremental() -%}
{{ column }} in (select loan_id from {{ ref('int_loans_changed') }})
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
delete from {{ this }} where batch_id > {{ var('since_batch') }}
{%- endif %}
{%- endmacro %}

{% macro for_new_batches(column='batch_id') -%}
{%- if is_incremental() -%}
{{ column }} > {{ var('since_batch') }}
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}
