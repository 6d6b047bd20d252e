{# Schemas are the layer names (staging, core, marts), not prefixed with the target schema. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{#
  On DuckDB, models configured with `database: published` are written to a second file,
  <home>/published.duckdb (attached by the profile), holding exactly what readers need, so that
  publishing is a file copy rather than a table-by-table copy. Other engines have one database:
  the setting is ignored there.
#}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {{- adapter.dispatch('generate_database_name', 'loanwatch')(custom_database_name, node) -}}
{%- endmacro %}

{% macro default__generate_database_name(custom_database_name=none, node=none) -%}
    {{- target.database -}}
{%- endmacro %}

{% macro duckdb__generate_database_name(custom_database_name=none, node=none) -%}
    {%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}

{# The target's database for relations built by name: Spark has none (dbt-spark leaves it undefined). #}
{% macro target_database() -%}
    {{- return(target.database if target.database is defined else none) -}}
{%- endmacro %}
