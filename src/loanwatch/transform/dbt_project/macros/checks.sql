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
{%- set changed = api.Relation.create(database=target.database, schema=generate_schema_name('core', none), identifier='int_loans_changed') -%}
{{ column }} in (select loan_id from {{ changed }})
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
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
