{#
  Checks on the loan-grain tables that incremental builds recompute look, on an incremental
  build, only at the loans that build recomputed: every other loan's rows are unchanged since the
  build that last checked them. Full builds check everything.

  Generic tests opt in with `config: {where: __changed_loans__}` (dbt wraps the tested relation
  in get_where_subquery); singular tests filter with changed_loans_only(column).
#}
{% macro changed_loans_only(column='loan_id', changed=none) -%}
{%- if var('since_batch') | int > 0 -%}
{{ column }} in (select loan_id from {{ changed if changed is not none else ref('int_loans_changed') }})
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{# A generic test's relation is wrapped here; tests reach int_loans_changed by name, not ref(),
   since they do not depend on it. #}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__changed_loans__' in where -%}
            {%- set changed = api.Relation.create(database=target.database, schema=generate_schema_name('core', none), identifier='int_loans_changed') -%}
            {%- set where = where | replace('__changed_loans__', changed_loans_only('loan_id', changed)) -%}
        {%- endif -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
