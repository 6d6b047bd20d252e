{#
  Incremental builds. After the first build, an incremental model recomputes only the rows its new
  inputs can change: its recompute set. Each incremental model declares that set once, at its top:

    {% set recompute = recompute_set('loan_days', day='valid_from') %}
    {{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
              pre_hook=recompute_hook(recompute)) }}

  and everything else reads the declaration: the pre-hook (delete_recomputed) deletes the set's
  rows, and the model's SQL takes its inputs through the same set (recomputed_rows, kept_rows,
  recomputed_keys, recompute_relation), so the rows deleted and the rows inserted are one
  predicate. On a full build nothing is filtered. `day` names the model's column that a set's
  from-day applies to; `dates` (a model of the dates the table keeps, such as int_snapshot_dates)
  also deletes the rows at dates that left it.

  A set is a relation of keys, declared by a macro of its grain in macros/incremental/ and listed
  in recompute_sets() below. The macro returns the set's parts; a row is in the set when it is in
  any part:
    {'where': condition}                            a condition on the row ({row} is its alias)
    {'select': sql, 'keys': [key]}                  the row's key is one the select returns
    {'select': sql, 'keys': [...], 'from': column}  the row's keys are a row `s` of the select, and
                                                    its day is on or after s.<from> (every row of
                                                    those keys when that is null)
  A part with `from` may also have 'day_offset' (the row reads its keys' inputs up to day + n
  days: it is recomputed from n days before the from-day), 'match' (a condition on {row} and `s`
  that replaces the day comparison) and 'keys_select' (a cheaper select of the same keys, for
  recomputed_keys). At most one part has `from`: the delete joins it (DELETE ... USING, a join
  rather than a correlated subquery, which engines plan as a loop), the model's SQL joins it too.
#}

{#- Every recompute set, by name: the macro that returns its parts. -#}
{% macro recompute_sets() -%}
{{ return({
    'new_batches': new_batches_recomputed,
    'loan_terms': loan_terms_recomputed,
    'payments': payments_recomputed,
    'loan_dimensions': loan_dimensions_recomputed,
    'clients': clients_recomputed,
    'loan_days': loan_days_recomputed,
    'loan_instalments': loan_instalments_recomputed,
    'calls': calls_recomputed,
    'holdout_days': holdout_days_recomputed,
    'merchant_days': merchant_days_recomputed,
}) }}
{%- endmacro %}

{#- A model's declaration: the set's name, the model's day column, the model of its dates. -#}
{% macro recompute_set(name, day=none, dates=none) -%}
{%- if name not in recompute_sets() -%}
{{ exceptions.raise_compiler_error("recompute_set: unknown set " ~ name ~ " (macros/incremental/recompute.sql recompute_sets)") }}
{%- endif -%}
{%- set recompute = {'name': name} -%}
{%- if day -%}{%- do recompute.update({'day': day}) -%}{%- endif -%}
{%- if dates -%}{%- do recompute.update({'dates': dates}) -%}{%- endif -%}
{{ return(recompute) }}
{%- endmacro %}

{#- The pre-hook of a declaration, rendered when the model runs. -#}
{% macro recompute_hook(recompute) -%}
{{ return('{{ delete_recomputed(' ~ tojson(recompute) ~ ') }}') }}
{%- endmacro %}

{#- Whether this model computes only its recompute set: an incremental build of an incremental
    model, or of a model that holds only the set for one (a table rebuilt every build, or an
    ephemeral model inlined). -#}
{% macro recomputing() -%}
{{ return(is_incremental() or (model.config.materialized in ('table', 'ephemeral') and incremental_build())) }}
{%- endmacro %}

{#- A set's parts for a row alias: `where`, the condition that the row is in one of the parts
    without a from-day ('' when none), and `joined`, the part with a from-day (none when none). -#}
{% macro recompute_split(recompute, row) -%}
{%- set conditions = [] -%}
{%- set joined = [] -%}
{%- for part in recompute_sets()[recompute['name']]() -%}
{%- if part.get('from') -%}
{%- do joined.append(part) -%}
{%- elif part.get('where') -%}
{%- do conditions.append('(' ~ part['where'] | replace('{row}', row) ~ ')') -%}
{%- else -%}
{%- do conditions.append(row ~ '.' ~ part['keys'][0] ~ ' in (' ~ part['select'] ~ ')') -%}
{%- endif -%}
{%- endfor -%}
{%- if joined | length > 1 -%}
{{ exceptions.raise_compiler_error("recompute set " ~ recompute['name'] ~ ": more than one part with a from-day") }}
{%- endif -%}
{{ return({'where': conditions | join(' or '), 'joined': joined[0] if joined else none}) }}
{%- endmacro %}

{#- A joined part's key row `s` has the row's keys ... -#}
{% macro recompute_on(part, row) -%}
{%- set conditions = [] -%}
{%- for key in part['keys'] -%}{%- do conditions.append('s.' ~ key ~ ' = ' ~ row ~ '.' ~ key) -%}{%- endfor -%}
{{ return(conditions | join(' and ')) }}
{%- endmacro %}

{#- ... and the row is one it recomputes: from its from-day on (every row when that is null). -#}
{% macro recompute_reaches(part, row, day) -%}
{%- if part.get('match') -%}
{{ return(part['match'] | replace('{row}', row)) }}
{%- endif -%}
{%- if not day -%}
{{ exceptions.raise_compiler_error("the set's from-day needs the day column of the rows") }}
{%- endif -%}
{%- set row_day = row ~ '.' ~ day -%}
{%- if part.get('day_offset') -%}{%- set row_day = add_days(row_day, part['day_offset']) -%}{%- endif -%}
{{ return('(s.' ~ part['from'] ~ ' is null or ' ~ row_day ~ ' >= s.' ~ part['from'] ~ ')') }}
{%- endmacro %}

{#
  delete_recomputed(recompute): the pre-hook. On incremental builds it deletes the set's rows: the
  rows of the parts without a from-day in one statement, the joined part's in another, and with
  `dates` the rows at dates that left the model of dates. Spark's Parquet tables have no DELETE
  (nor UPDATE): there each statement is a rewrite of the table without its rows (spark_rewrite),
  a pass over the whole table rather than over the rows recomputed.
#}
{% macro delete_recomputed(recompute) -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('delete_recomputed', 'loanwatch')(recompute)) }}
{%- endif %}
{%- endmacro %}

{#- What the statements delete, as conditions on the table's row `t`: the parts without a
    from-day, and the dates that left; the joined part as itself (a join: DELETE ... USING). -#}
{% macro recompute_deletes(recompute) -%}
{%- set split = recompute_split(recompute, 't') -%}
{%- set deletes = [split['where']] if split['where'] else [] -%}
{%- if split['joined'] -%}{%- do deletes.append(split['joined']) -%}{%- endif -%}
{%- if recompute.get('dates') -%}
{%- do deletes.append('t.' ~ recompute['day'] ~ ' not in (select ' ~ recompute['day'] ~ ' from ' ~ ref(recompute['dates']) ~ ')') -%}
{%- endif -%}
{{ return(deletes) }}
{%- endmacro %}

{#- The delete statements, as the default engine (PostgreSQL, DuckDB) runs them. -#}
{% macro recompute_delete_statements(recompute) -%}
{%- set statements = [] -%}
{%- for delete in recompute_deletes(recompute) -%}
{%- if delete is mapping -%}
{%- do statements.append('delete from ' ~ this ~ ' as t using (' ~ delete['select'] ~ ') as s
where ' ~ recompute_on(delete, 't') ~ ' and ' ~ recompute_reaches(delete, 't', recompute.get('day'))) -%}
{%- else -%}
{%- do statements.append('delete from ' ~ this ~ ' as t where ' ~ delete) -%}
{%- endif -%}
{%- endfor -%}
{{ return(statements) }}
{%- endmacro %}

{% macro default__delete_recomputed(recompute) -%}
{{ recompute_delete_statements(recompute) | join(';\n') }}
{%- endmacro %}

{#
  Kept changes (PostgreSQL). A good build copies the published tables from the server into the
  serving snapshot; after an incremental build, only what changed (PostgresEngine.export): the
  rows each published incremental model deleted and the rows it inserted, which the build keeps in
  schema `changes`, as `<schema>__<model>__removed` and `__added`. The deletes return their rows
  into __removed (the pre-hook); the rows of the model's own transaction (`xmin`: the insert, as
  dbt runs it, and the post-hooks share one) go into __added (keep_added_rows, a post-hook of the
  project, which dbt runs before a model's own: a model whose own post-hook changes its rows keeps
  those changes itself, as fct_loan_states' close_kept_intervals does). Each dbt run starts the
  schema empty, so a table without both is one this run did not change incrementally (a full
  build, a model built for the first time) and the export copies it whole. The names are
  changes_relation()'s; PostgresEngine.export reads them by the same rule.
-#}
{% macro keeps_changes() -%}
{{ return(adapter.dispatch('keeps_changes', 'loanwatch')()) }}
{%- endmacro %}
{% macro default__keeps_changes() -%}{{ return(false) }}{%- endmacro %}
{% macro postgres__keeps_changes() -%}
{{ return(model.config.get('database') == 'published' and model.config.materialized == 'incremental') }}
{%- endmacro %}

{% macro changes_relation(kind) -%}
changes.{{ adapter.quote(this.schema ~ '__' ~ this.identifier ~ '__' ~ kind) }}
{%- endmacro %}

{#- The schema of the kept changes, emptied once per dbt run (on-run-start; dbt threads creating it
    at once would collide): only this run's changes are ever exported. -#}
{% macro create_changes_schema() -%}{{ return(adapter.dispatch('create_changes_schema', 'loanwatch')()) }}{%- endmacro %}
{% macro default__create_changes_schema() -%}select 1{%- endmacro %}
{% macro postgres__create_changes_schema() -%}drop schema if exists changes cascade; create schema changes{%- endmacro %}

{% macro postgres__delete_recomputed(recompute) -%}
{%- set statements = recompute_delete_statements(recompute) -%}
{%- if not keeps_changes() -%}
{{ return(statements | join(';\n')) }}
{%- endif -%}
{%- set removed = changes_relation('removed') -%}
create table {{ removed }} as select * from {{ this }} with no data
{%- for statement in statements %};
with removed as ({{ statement }} returning t.*) insert into {{ removed }} select * from removed
{%- endfor %}
{%- endmacro %}

{#- The post-hook: on an incremental run of a published model, the rows it inserted. -#}
{% macro keep_added_rows() -%}{{ return(adapter.dispatch('keep_added_rows', 'loanwatch')()) }}{%- endmacro %}
{% macro default__keep_added_rows() -%}{%- endmacro %}
{% macro postgres__keep_added_rows() -%}
{%- if keeps_changes() and is_incremental() -%}
create table {{ changes_relation('added') }} as select * from {{ this }} where xmin = pg_current_xact_id()::xid
{%- endif -%}
{%- endmacro %}

{#- Spark SQL has no DELETE ... USING either: a subquery names the joined part's rows, and every
    statement's rows go in one rewrite (a row is kept when no statement would delete it). -#}
{% macro spark__delete_recomputed(recompute) -%}
{%- set conditions = [] -%}
{%- for delete in recompute_deletes(recompute) -%}
{%- do conditions.append(delete if delete is not mapping else 'exists (select 1 from (' ~ delete['select'] ~ ') as s where '
    ~ recompute_on(delete, 't') ~ ' and ' ~ recompute_reaches(delete, 't', recompute.get('day')) ~ ')') -%}
{%- endfor -%}
{{ spark_rewrite('select * from ' ~ this ~ ' as t where not (((' ~ conditions | join(') or (') ~ ')) <=> true)') }}
{%- endmacro %}

{#- Replace this model's rows by a query's (over them), as the pre-hook runs: the query into a
    scratch table, which then takes the model's name (a rename: the rows are written once, not
    into the scratch table and back). A build stopped part-way may leave the table short or gone:
    on Spark the build after one that did not finish well is a full one (resumes_after_failure).
    Renders to nothing, so the hook runs no statement of its own. -#}
{% macro spark_rewrite(select_sql) -%}
{%- if execute -%}
{%- set scratch = this.incorporate(path={'identifier': this.identifier ~ '__rewrite'}) -%}
{%- do run_query('drop table if exists ' ~ scratch) -%}
{%- do run_query('create table ' ~ scratch ~ ' using parquet as ' ~ select_sql) -%}
{%- do run_query('drop table ' ~ this) -%}
{%- do run_query('alter table ' ~ scratch ~ ' rename to ' ~ this) -%}
{%- endif -%}
{%- endmacro %}

{#
  recomputed_rows(recompute, relation, day, using): the rows of an input relation that are in the
  set (`day`: the relation's column for the from-day, the model's by default; `using`: a relation,
  such as a CTE, already holding the joined part's select). The whole relation on a full build.
  Joins on the keys, not correlated subqueries with an OR: engines plan those as loops.
#}
{% macro recomputed_rows(recompute, relation, day=none, using=none) -%}
{%- if not recomputing() -%}
{{ return(relation) }}
{%- endif -%}
{%- set split = recompute_split(recompute, 'r') -%}
{%- set joined = split['joined'] -%}
{%- if not joined -%}
{{ return('(select r.* from ' ~ relation ~ ' as r where ' ~ split['where'] ~ ')') }}
{%- endif -%}
{%- set keys = using or '(' ~ joined['select'] ~ ')' -%}
{%- set reaches = recompute_reaches(joined, 'r', day or recompute.get('day')) -%}
{%- if not split['where'] -%}
{{ return('(
    select r.*
    from ' ~ relation ~ ' as r
    inner join ' ~ keys ~ ' as s on ' ~ recompute_on(joined, 'r') ~ '
    where ' ~ reaches ~ '
)') }}
{%- endif -%}
{{ return('(
    select r.*
    from ' ~ relation ~ ' as r
    left join ' ~ keys ~ ' as s on ' ~ recompute_on(joined, 'r') ~ '
    where ' ~ split['where'] ~ '
        or (s.' ~ joined['keys'][0] ~ ' is not null and ' ~ reaches ~ ')
)') }}
{%- endmacro %}

{#- The rows of an input relation that are not in a set of one joined part: its keys' rows before
    their from-day, and every other key's. -#}
{% macro kept_rows(recompute, relation, day=none) -%}
{%- set split = recompute_split(recompute, 'r') -%}
{%- set joined = split['joined'] -%}
{%- if split['where'] or not joined or joined.get('match') or joined.get('day_offset') -%}
{{ exceptions.raise_compiler_error("kept_rows: the set " ~ recompute['name'] ~ " is not one part with a from-day") }}
{%- endif -%}
{{ return('(
    select r.*
    from ' ~ relation ~ ' as r
    left join (' ~ joined['select'] ~ ') as s on ' ~ recompute_on(joined, 'r') ~ '
    where s.' ~ joined['keys'][0] ~ ' is null or r.' ~ (day or recompute.get('day')) ~ ' < s.' ~ joined['from'] ~ '
)') }}
{%- endmacro %}

{#- An input's key column holds one of the set's keys (whatever the day); `1 = 1` on a full build.
    For a set of one part with one key. -#}
{% macro recomputed_keys(recompute, column) -%}
{%- if not recomputing() -%}
{{ return('1 = 1') }}
{%- endif -%}
{%- set parts = recompute_sets()[recompute['name']]() -%}
{%- if parts | length != 1 or parts[0].get('where') or parts[0]['keys'] | length != 1 -%}
{{ exceptions.raise_compiler_error("recomputed_keys: the set " ~ recompute['name'] ~ " is not one part with one key") }}
{%- endif -%}
{{ return(column ~ ' in (' ~ parts[0].get('keys_select', parts[0]['select']) ~ ')') }}
{%- endmacro %}

{#- The joined part's select (its keys and from-day, with what `match` reads), for a model's own
    joins. -#}
{% macro recompute_relation(recompute) -%}
{%- set joined = recompute_split(recompute, 'r')['joined'] -%}
{%- if not joined -%}
{{ exceptions.raise_compiler_error("recompute_relation: the set " ~ recompute['name'] ~ " has no part with a from-day") }}
{%- endif -%}
{{ return('(' ~ joined['select'] ~ ')') }}
{%- endmacro %}

{#
  On DuckDB an incremental model's new rows go straight into its table. dbt-duckdb writes them
  to a temporary table first and then copies that into the model's table: at L the million
  fct_loan_states rows of a 1 % batch were written twice. Here the temporary relation of an
  incremental model is a view, so the strategy's `insert into ... select ... from <view>` runs the
  model's SQL once, after the pre-hook (as the temporary table was). Column checks
  (on_schema_change) read the view's columns as they read the table's. Every other table is
  dbt-duckdb's own.
#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none) -%}
{%- if temporary and language == 'sql' and config.get('materialized') == 'incremental' -%}
create or replace temporary view {{ relation.include(database=false, schema=false) }} as (
{{ compiled_code }}
)
{%- else -%}
{{ dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by) }}
{%- endif -%}
{%- endmacro %}
