{#
  Month partitions (Spark). Spark's Parquet tables have no DELETE or UPDATE: an incremental model
  changes its rows by rewriting its table (spark_rewrite in recompute.sql), a pass over every row
  to change 1 % of them. An incremental model whose recompute set has a day (its rows are at a
  day) declares that day as its month_partition,

    {% set recompute = recompute_set('loan_days', day='snapshot_date', ...) %}
    {{ config(..., month_partition=recompute['day']) }}

  is on Spark a Parquet table partitioned by that day's month: the column partition_month
  ('yyyy-MM'), which Spark keeps last, the export into the serving snapshot and `check --rows`
  leave out (SparkEngine's PARTITION_COLUMN), and the other engines never have (they ignore the
  setting). Its deletes and
  updates then rewrite only the months holding a row they remove or change
  (spark_rewrite_months): each of those months is replaced whole by its rows after the change
  (INSERT OVERWRITE with dynamic partition overwrite, as dbt-spark's insert_overwrite strategy),
  and a month left with no row is dropped. A batch's loans recomputed from a recent day touch the
  recent months; a loan recomputed whole touches the months it has rows in.
#}

{#- The table (or, for an incremental run's new rows, the temporary view) of a month-partitioned
    model: the model's rows with partition_month; every other model as dbt-spark makes it. -#}
{% macro spark__create_table_as(temporary, relation, compiled_code, language='sql') -%}
{%- set day = config.get('month_partition') -%}
{%- if language != 'sql' or not day -%}
{{ dbt.spark__create_table_as(temporary, relation, compiled_code, language) }}
{%- else -%}
{%- set rows = 'select *, ' ~ month_label(day) ~ ' as partition_month from (\n' ~ compiled_code ~ '\n) as month_rows' -%}
{%- if temporary -%}
{{ create_temporary_view(relation, rows) }}
{%- else -%}
create table {{ relation }}
{{ file_format_clause() if config.get('file_format') else 'using parquet' }}
{{ options_clause() }}
{{ tblproperties_clause() }}
partitioned by (partition_month)
{{ location_clause() }}
{{ comment_clause() }}
as
{{ rows }}
{%- endif -%}
{%- endif -%}
{%- endmacro %}

{#- Rewrite the months of this model's table that hold a row `t` the change removes (`removed`)
    or changes (`changed`, which includes the removed): `rows` selects the rows after the change
    from the table, with `{months}` where the months' list goes (`... where s.partition_month in
    ({months})`). A month whose every row is removed is dropped: dynamic partition overwrite
    replaces only the months the select returns rows for. Renders to nothing (the statements run
    here, as spark_rewrite's). A build stopped between the two statements leaves the table short:
    on Spark the build after one that did not finish well is a full one (resumes_after_failure). -#}
{% macro spark_rewrite_months(removed, changed, rows) -%}
{%- if execute -%}
{%- set touched = run_query('select t.partition_month, max(case when ' ~ removed ~ ' then 0 else 1 end) as keeps
from ' ~ this ~ ' as t
group by t.partition_month
having max(case when ' ~ changed ~ ' then 1 else 0 end) = 1') -%}
{%- set kept = [] -%}
{%- set emptied = [] -%}
{%- for row in touched.rows -%}
{%- if row[0] is none or (row[0] | string) | length != 7 -%}
{{ exceptions.raise_compiler_error("spark_rewrite_months: " ~ this ~ " has a row without a month (" ~ row[0] ~ ")") }}
{%- endif -%}
{%- do (kept if row[1] == 1 else emptied).append("'" ~ row[0] ~ "'") -%}
{%- endfor -%}
{%- if emptied -%}
{%- set partitions = [] -%}
{%- for month in emptied -%}{%- do partitions.append('partition (partition_month = ' ~ month ~ ')') -%}{%- endfor -%}
{%- do run_query('alter table ' ~ this ~ ' drop if exists ' ~ partitions | join(', ')) -%}
{%- endif -%}
{%- if kept -%}
{%- do run_query('set spark.sql.sources.partitionOverwriteMode = DYNAMIC') -%}
{%- do run_query('insert overwrite table ' ~ this ~ ' partition (partition_month) ' ~ rows | replace('{months}', kept | join(', '))) -%}
{%- endif -%}
{%- endif -%}
{%- endmacro %}
