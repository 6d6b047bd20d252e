{#
  Incremental builds. After the first build, a model configured with incremental_hook()
  recomputes only the keys whose inputs arrived after the last successful build: its pre-hook
  deletes their rows, the model inserts their new rows (none for a loan that was cancelled).
  Filters go through for_changed(column, changed) so a full build reads everything.

  `changed` names the set of keys (changed_keys):
    loans       loans with new versions, schedules, payments or reversals (int_loans_changed);
                everything computed from payments uses this one
    loan_terms  loans with new versions, schedules or instalment records (their terms and instalments)
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

{% macro changed_keys(changed='loans') -%}
{%- if changed == 'loans' -%}
select loan_id from {{ ref('int_loans_changed') }}
{%- elif changed == 'loan_terms' -%}
{%- set since = since_batch() -%}
select loan_id from {{ source('raw', 'loans') }} where batch_id > {{ since }}
union
select loan_id from {{ source('raw', 'loan_schedules') }} where batch_id > {{ since }}
union
select loan_id from {{ source('raw', 'instalments') }} where batch_id > {{ since }}
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
{{ delete_rows(column ~ ' in (' ~ changed_keys(changed) ~ ')' ~ (' or ' ~ extra_condition if extra_condition else '')) }}
{%- endif %}
{%- endmacro %}

{#
  delete_rows(condition): delete this model's rows matching a condition on its columns (the row is
  `t`). Spark's Parquet tables have no DELETE (nor UPDATE): there the table is rewritten without
  them (spark_rewrite), which costs a pass over the whole table rather than over the changed rows.
#}
{% macro delete_rows(condition) -%}{{ return(adapter.dispatch('delete_rows', 'loanwatch')(condition)) }}{%- endmacro %}
{% macro default__delete_rows(condition) -%}
delete from {{ this }} where {{ condition }}
{%- endmacro %}
{% macro spark__delete_rows(condition) -%}
{{ spark_rewrite('select * from ' ~ this ~ ' as t where not ((' ~ condition ~ ') <=> true)') }}
{%- endmacro %}

{#- Replace this model's rows by a query's (over them): into a scratch table, then back, as the
    pre-hook runs. Renders to nothing, so the hook runs no statement of its own. -#}
{% macro spark_rewrite(select_sql) -%}
{%- if execute -%}
{%- set scratch = this.incorporate(path={'identifier': this.identifier ~ '__rewrite'}) -%}
{%- do run_query('drop table if exists ' ~ scratch) -%}
{%- do run_query('create table ' ~ scratch ~ ' using parquet as ' ~ select_sql) -%}
{%- do run_query('insert overwrite table ' ~ this ~ ' select * from ' ~ scratch) -%}
{%- do run_query('drop table ' ~ scratch) -%}
{%- endif -%}
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
  Models at loan and day grain (fct_payment_allocations by paid_date, fct_loan_states,
  fct_loan_snapshots) recompute a changed loan from the day int_loans_changed.recompute_from
  names, or all of it when that is null. recomputed_rows(rel, day) and kept_rows(rel, day) split
  the rows of a relation with loan_id and a day column accordingly: on a full build all rows are
  recomputed; on an incremental one recomputed_rows has only changed loans' rows.
  day_incremental_hook(day) is the pre-hook that deletes the rows to recompute. Joins on loan_id,
  not correlated subqueries with an OR: engines plan those as loops.
#}
{% macro recomputed_rows(relation, day_column) -%}
{%- if is_incremental() or (model.config.materialized == 'ephemeral' and incremental_build()) -%}
(
    select r.*
    from {{ relation }} as r
    inner join {{ ref('int_loans_changed') }} as recomputed on recomputed.loan_id = r.loan_id
    where recomputed.recompute_from is null or r.{{ day_column }} >= recomputed.recompute_from
)
{%- else -%}
{{ relation }}
{%- endif -%}
{%- endmacro %}

{% macro kept_rows(relation, day_column) -%}
(
    select r.*
    from {{ relation }} as r
    left join {{ ref('int_loans_changed') }} as recomputed on recomputed.loan_id = r.loan_id
    where recomputed.loan_id is null or r.{{ day_column }} < recomputed.recompute_from
)
{%- endmacro %}

{% macro day_incremental_hook(day_column) -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('delete_recomputed_rows', 'loanwatch')(day_column)) }}
{%- endif %}
{%- endmacro %}
{% macro default__delete_recomputed_rows(day_column) -%}
delete from {{ this }} as t
using {{ ref('int_loans_changed') }} as recomputed
where recomputed.loan_id = t.loan_id
    and (recomputed.recompute_from is null or t.{{ day_column }} >= recomputed.recompute_from)
{%- endmacro %}
{#- Spark SQL has no DELETE ... USING: a subquery names the rows. -#}
{% macro spark__delete_recomputed_rows(day_column) -%}
{{ spark__delete_rows('exists (
    select 1 from ' ~ ref('int_loans_changed') ~ ' as recomputed
    where recomputed.loan_id = t.loan_id
        and (recomputed.recompute_from is null or t.' ~ day_column ~ ' >= recomputed.recompute_from))') }}
{%- endmacro %}

{#
  fct_instalments on an incremental build. A loan recomputed whole (recompute_from null) has
  all its instalments rewritten. A loan recomputed from a day has the same terms as before and new
  payments only after all its earlier ones (amounts > 0), so its cumulative paid amount only grows:
  from paid_before_amount (its payments before that day, all of which it had) to
  paid_total_amount (all its payments now). Its instalment keeps its row when
    - it was wholly allocated before that day (cum_due_amount <= paid_before_amount): the same
      paid-on date, earlier than the day, and its whole due amount allocated, then and now; or
    - even the new total leaves it untouched (paid_total_amount <= cum_due_before_amount and
      paid_total_amount < cum_due_amount - tolerance): nothing allocated and not paid, then and now.
  Typically that leaves the one or two instalments the new payments reach. The pre-hook deletes,
  and the model inserts, the other rows of the changed loans: the same predicate on the same inputs.
#}
{% macro instalment_paid_totals() -%}
select
    c.loan_id,
    c.recompute_from,
    coalesce(max(case when p.paid_date < c.recompute_from then p.cum_paid_after_amount end), 0) as paid_before_amount,
    coalesce(max(p.cum_paid_after_amount), 0) as paid_total_amount
from {{ ref('int_loans_changed') }} as c
left join {{ ref('fct_payment_allocations') }} as p on p.loan_id = c.loan_id
group by c.loan_id, c.recompute_from
{%- endmacro %}

{% macro instalment_row_kept(instalment, totals) -%}
({{ totals }}.recompute_from is not null
    and ({{ instalment }}.cum_due_amount <= {{ totals }}.paid_before_amount
        or ({{ totals }}.paid_total_amount <= {{ instalment }}.cum_due_before_amount
            and {{ totals }}.paid_total_amount < {{ instalment }}.cum_due_amount - {{ var('tolerance') }})))
{%- endmacro %}

{% macro delete_recomputed_instalments() -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('delete_recomputed_instalments', 'loanwatch')()) }}
{%- endif %}
{%- endmacro %}
{% macro default__delete_recomputed_instalments() -%}
delete from {{ this }} as t
using ({{ instalment_paid_totals() }}) as totals
where totals.loan_id = t.loan_id and not {{ instalment_row_kept('t', 'totals') }}
{%- endmacro %}
{% macro spark__delete_recomputed_instalments() -%}
{{ spark__delete_rows('exists (
    select 1 from (' ~ instalment_paid_totals() ~ ') as totals
    where totals.loan_id = t.loan_id and not ' ~ instalment_row_kept('t', 'totals') ~ ')') }}
{%- endmacro %}

{#- A pre-hook that deletes the rows matching a condition, on incremental builds. -#}
{% macro incremental_delete(condition) -%}
{% if is_incremental() -%}
{{ delete_rows(condition) }}
{%- endif %}
{%- endmacro %}

{#- fct_loan_states' post-hook: the kept row of a loan recomputed from a day ran until its next
    event; it now ends where the loan's new rows begin (the first new payment's day), and the day
    it would have passed 90 DPD is in it only if before that. -#}
{% macro close_kept_intervals() -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('close_kept_intervals', 'loanwatch')()) }}
{%- endif %}
{%- endmacro %}
{% macro default__close_kept_intervals() -%}
update {{ this }} as s
set valid_to = c.recompute_from,
    dpd_over_90_date = case when s.dpd_over_90_date < c.recompute_from then s.dpd_over_90_date end
from {{ ref('int_loans_changed') }} as c
where c.loan_id = s.loan_id
    and s.valid_from < c.recompute_from
    and s.valid_to > c.recompute_from
{%- endmacro %}
{#- Spark: the same change, as a rewrite of the table. -#}
{% macro spark__close_kept_intervals() -%}
{%- set changed = "c.loan_id is not null" -%}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(this) -%}
{%- if column.name == 'valid_to' -%}
{%- do columns.append('case when ' ~ changed ~ ' then c.recompute_from else s.valid_to end as valid_to') -%}
{%- elif column.name == 'dpd_over_90_date' -%}
{%- do columns.append('case when not (' ~ changed ~ ') or s.dpd_over_90_date < c.recompute_from then s.dpd_over_90_date end as dpd_over_90_date') -%}
{%- else -%}
{%- do columns.append('s.' ~ adapter.quote(column.name)) -%}
{%- endif -%}
{%- endfor -%}
{{ spark_rewrite('select ' ~ columns | join(', ') ~ ' from ' ~ this ~ ' as s left join ' ~ ref('int_loans_changed') ~ ' as c
    on c.loan_id = s.loan_id and s.valid_from < c.recompute_from and s.valid_to > c.recompute_from') }}
{%- endmacro %}

{#
  Incremental builds at batch grain, for events that never change once loaded (ingest keeps one
  row per event id): a model configured with batch_incremental_hook() appends the rows of batches
  after the last good build. Its pre-hook first deletes those batches' rows, so a build that was
  interrupted after the insert and is run again does not add them twice.
#}
{% macro batch_incremental_hook() -%}
{% if is_incremental() -%}
{{ delete_rows('batch_id > ' ~ since_batch()) }}
{%- endif %}
{%- endmacro %}

{% macro for_new_batches(column='batch_id') -%}
{%- if is_incremental() -%}
{{ column }} > {{ since_batch() }}
{%- else -%}
1 = 1
{%- endif -%}
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

{#
  fct_calls' incremental recompute: the calls whose row can differ from the last good build's.
  A call's row reads its loan's states and payments, the client's logins and loans, the agent's
  versions and the data date, so on an incremental build these are recomputed:
    - calls of batches after the last good build;
    - calls about a loan of int_loans_changed (new versions, payments, reversals) that read it from
      its recompute_from day on (their day or the cure window later, or a promise's deadline, on
      or after it), and such calls about no loan of a client with such a loan;
    - calls of a client up to the login window before its first new login; calls of an agent with
      new versions;
    - calls still undecided at the last good build's data date: called within the cure window of it
      (cure at the window's end), or promises whose deadline had not passed.
  The cure window is var('cure_window_days') (7 days).
  A changed setting (the connect threshold, the login window, the hold-out) changes the project
  hash: the build is a full one.
#}
{% macro recomputed_calls() -%}
{%- set since = since_batch() -%}
select call_id from {{ ref('calls') }} where batch_id > {{ since }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join {{ ref('int_loans_changed') }} as changed on changed.loan_id = k.loan_id
where {{ call_reads_loan_from('k', 'changed.recompute_from') }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join {{ ref('dim_loans') }} as loans on loans.client_id = k.client_id
inner join {{ ref('int_loans_changed') }} as changed on changed.loan_id = loans.loan_id
where k.loan_id is null and {{ call_reads_loan_from('k', 'changed.recompute_from') }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join (
    select client_id, min(logged_in_at) as first_new_login_at
    from {{ ref('logins') }}
    where batch_id > {{ since }}
    group by client_id
) as g
    on g.client_id = k.client_id
    and k.called_at > g.first_new_login_at - interval '{{ var("login_window_hours") | int }}' hour
union
select k.call_id
from {{ ref('calls') }} as k
inner join (select distinct agent_id from {{ source('raw', 'agents') }} where batch_id > {{ since }}) as a
    on a.agent_id = k.agent_id
union
select k.call_id
from {{ ref('calls') }} as k
cross join (select {{ last_good_data_date() }} as d) as previous
where {{ add_days('k.called_date', var('cure_window_days')) }} > previous.d
    or (k.outcome = 'promise_to_pay' and {{ add_days('coalesce(k.promised_date, k.called_date)', 3) }} >= previous.d)
{%- endmacro %}

{#- Whether a call can read a loan whose states and payments change from `from_date` on (all of
    them when null): its state at the call's day, the cure window later, or a payment before a promise's
    deadline. -#}
{% macro call_reads_loan_from(call, from_date) -%}
({{ from_date }} is null
    or {{ add_days(call ~ '.called_date', var('cure_window_days')) }} >= {{ from_date }}
    or ({{ call }}.outcome = 'promise_to_pay'
        and {{ add_days('coalesce(' ~ call ~ '.promised_date, ' ~ call ~ '.called_date)', 3) }} >= {{ from_date }}))
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

{% macro calls_incremental_hook() -%}
{% if is_incremental() -%}
{{ delete_rows('call_id in (' ~ recomputed_calls() ~ ')') }}
{%- endif %}
{%- endmacro %}

{% macro for_recomputed_calls(column='call_id') -%}
{%- if is_incremental() -%}
{{ column }} in ({{ recomputed_calls() }})
{%- else -%}
1 = 1
{%- endif -%}
{%- endmacro %}

{#
  int_holdout_overdue_days (the hold-out's overdue loan-days on call days): its row of a loan and a
  day reads the loan's states on that day and the cure window (var('cure_window_days')) later, the
  day's calls and the data date. On an incremental build it recomputes
    - the rows of a loan of int_loans_changed whose day + the window is on or after its recompute
      day (all of them when that is null);
    - every loan's rows on a new day: a day of a call in a new batch, or a day after the last good
      build's data date - the window (decidable only now).
  holdout_first_new_day() is the earliest new day; the pre-hooks delete exactly those rows.
#}
{% macro holdout_new_calls_days() -%}
select distinct called_date from {{ ref('calls') }} where batch_id > {{ since_batch() }}
{%- endmacro %}

{% macro holdout_first_new_day() -%}
(select least(
    {{ add_days(last_good_data_date(), -(var('cure_window_days') | int)) }},
    coalesce((select min(called_date) from {{ ref('calls') }} where batch_id > {{ since_batch() }}), cast('9999-12-31' as date))))
{%- endmacro %}

{% macro holdout_row_recomputed(row, changed) -%}
({{ row }}.contact_date > {{ add_days(last_good_data_date(), -(var('cure_window_days') | int)) }}
    or {{ row }}.contact_date in ({{ holdout_new_calls_days() }})
    or ({{ changed }}.loan_id is not null
        and ({{ changed }}.recompute_from is null or {{ add_days(row ~ '.contact_date', var('cure_window_days')) }} >= {{ changed }}.recompute_from)))
{%- endmacro %}

{% macro holdout_days_delete_new_days() -%}
{% if is_incremental() -%}
{{ delete_rows('contact_date > ' ~ add_days(last_good_data_date(), -(var('cure_window_days') | int)) ~ '
    or contact_date in (' ~ holdout_new_calls_days() ~ ')') }}
{%- endif %}
{%- endmacro %}

{% macro holdout_days_delete_changed_loans() -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('holdout_days_delete_changed_loans', 'loanwatch')()) }}
{%- endif %}
{%- endmacro %}
{% macro default__holdout_days_delete_changed_loans() -%}
delete from {{ this }} as t
using {{ ref('int_loans_changed') }} as changed
where changed.loan_id = t.loan_id
    and (changed.recompute_from is null or {{ add_days('t.contact_date', var('cure_window_days')) }} >= changed.recompute_from)
{%- endmacro %}
{% macro spark__holdout_days_delete_changed_loans() -%}
{{ spark__delete_rows('exists (
    select 1 from ' ~ ref('int_loans_changed') ~ ' as changed
    where changed.loan_id = t.loan_id
        and (changed.recompute_from is null or ' ~ add_days('t.contact_date', var('cure_window_days')) ~ ' >= changed.recompute_from))') }}
{%- endmacro %}
