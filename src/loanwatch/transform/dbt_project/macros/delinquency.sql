{#
  DPD (METRICS §3), in one place. A loan overdue since day S has, at day D, DPD = D - C where C,
  the day DPD counts from, is S; with the option dpd_counts_due_day (the Frappe convention) the
  due day itself counts, and C is the day before S. fct_loan_states carries C for every overdue
  interval (dpd_counted_from_date), so a DPD at any date is that subtraction, here and in the
  reports alike.
#}
{% macro dpd_counted_from(overdue_since_expr) -%}
{%- if var('dpd_counts_due_day') -%}{{ add_days(overdue_since_expr, -1) }}{%- else -%}{{ overdue_since_expr }}{%- endif -%}
{%- endmacro %}

{# DPD at a date within a state interval; 0 unless overdue. #}
{% macro dpd_at(date_expr, dpd_counted_from_expr) -%}
coalesce({{ days_between(dpd_counted_from_expr, date_expr) }}, 0)
{%- endmacro %}

{#
  The contact hold-out group (config [notify] holdout_share, holdout_salt): a client is in it when
  the first 32 bits of md5(client_id || salt), modulo 10000, fall below the share in basis points.
  core.clients publishes it (is_holdout); readers that draw with the settings of the moment (the
  contact plan, the generator) use the same expression (reports/rules.py holdout_sql).
#}
{% macro is_holdout(client_expr) -%}{{ return(adapter.dispatch('is_holdout', 'loanwatch')(client_expr)) }}{%- endmacro %}
{% macro default__is_holdout(client_expr) -%}
(('x' || substr(md5({{ client_expr }} || '{{ var("holdout_salt") | replace("'", "''") }}'), 1, 8))::bit(32)::bigint % 10000 < {{ var('holdout_basis_points') | int }})
{%- endmacro %}
{% macro duckdb__is_holdout(client_expr) -%}
(('0x' || substr(md5({{ client_expr }} || '{{ var("holdout_salt") | replace("'", "''") }}'), 1, 8))::ubigint % 10000 < {{ var('holdout_basis_points') | int }})
{%- endmacro %}
{% macro spark__is_holdout(client_expr) -%}
(cast(conv(substr(md5(concat({{ client_expr }}, '{{ var("holdout_salt") | replace("'", "\\'") }}')), 1, 8), 16, 10) as bigint) % 10000 < {{ var('holdout_basis_points') | int }})
{%- endmacro %}

{#
  The portfolio-at-risk thresholds (METRICS §5): a loan is at risk past X days when it is active
  with DPD > X. fct_loan_snapshots publishes is_par30, is_par60 and is_par90, fct_loan_milestones
  reads them; the reports read the flags (reports/rules.py PAR_DAYS names the same thresholds for
  dates between snapshots).
#}
{% macro par_days() -%}{{ return([30, 60, 90]) }}{%- endmacro %}

{#
  A right-party contact (METRICS §6): the call reached the client, by its outcome. fct_calls
  publishes is_right_party, and is_connected and is_conversation use it.
#}
{% macro is_right_party(outcome_expr) -%}
coalesce({{ outcome_expr }} in ('promise_to_pay', 'refused', 'callback', 'paid', 'dispute'), false)
{%- endmacro %}

{#
  Cure (METRICS §4-6): an overdue loan is cured when it is current or closed (repaid) afterwards.
#}
{% macro is_cured(state_expr) -%}
{{ state_expr }} in ('current', 'closed')
{%- endmacro %}

{#- METRICS §2: the components of an instalment in the order a payment fills them ([warehouse]
    allocation_order, checked when the settings are read). -#}
{% macro allocation_components() -%}
{%- set order = [] -%}
{%- for word in var('allocation_order').split(',') -%}{%- do order.append(word | trim | lower) -%}{%- endfor -%}
{{ return(order) }}
{%- endmacro %}

{#- The most steps (charges and waivers) a servicing loan has (int_servicing_events): the number of
    stages of int_servicing_steps and int_servicing_ledger. 0 while dbt parses. -#}
{% macro servicing_step_count() -%}
{%- if not execute -%}{{ return(0) }}{%- endif -%}
{%- set result = run_query('select max(step) from ' ~ ref('int_servicing_events')) -%}
{%- set value = result.columns[0].values()[0] -%}
{{ return(0 if value is none else value | int) }}
{%- endmacro %}

{#- The loans allocated event by event (int_servicing_loans): any with a charge or an adjustment
    record, a schedule (array or instalment records) with a fee or penalty, or a restructuring (a
    version with restructured_at, instalment records with effective_from); every loan when
    [warehouse] allocation_order puts principal before interest, or with var servicing_all (tests).
    From the raw tables, so that int_loans_changed can read it too. -#}
{% macro servicing_loan_ids() -%}
{%- set order = allocation_components() -%}
{#- the cumulative form pays interest before principal: an order with principal first needs every
    loan allocated event by event -#}
{%- if var('servicing_all', false) or order.index('principal') < order.index('interest') -%}
select loan_id from {{ source('raw', 'loans') }}
{%- else -%}
select loan_id from {{ source('raw', 'charges') }}
union
select loan_id from {{ source('raw', 'adjustments') }}
union
select loan_id from {{ source('raw', 'loan_schedules') }} where fee > 0 or penalty > 0
union
select loan_id from {{ source('raw', 'instalments') }} where fee > 0 or penalty > 0 or effective_from is not null
union
select loan_id from {{ source('raw', 'loans') }} where restructured_at is not null
{%- endif -%}
{%- endmacro %}

{#- The servicing loans an int_servicing_* model computes: on an incremental build, those that
    changed (int_loans_changed: a servicing loan is recomputed whole), as the marts that read them
    take only those; every one on a full build. -#}
{% macro servicing_recomputed(column) -%}
{%- if incremental_build() -%}
{{ return(column ~ ' in (select c.loan_id from ' ~ ref('int_loans_changed') ~ ' as c)') }}
{%- else -%}
{{ return('1 = 1') }}
{%- endif -%}
{%- endmacro %}

{#- int_servicing_steps' plan: whether each stage splits the schedules with its step from the
    others (two reads of the stage before, which the engine must keep once: a materialized CTE). -#}
{% macro servicing_stages_split() -%}{{ return(adapter.dispatch('servicing_stages_split', 'loanwatch')()) }}{%- endmacro %}
{% macro default__servicing_stages_split() -%}{{ return(true) }}{%- endmacro %}
{% macro spark__servicing_stages_split() -%}{{ return(false) }}{%- endmacro %}

{#- int_servicing_steps' pre-hook: what the engine needs to plan a chain of as many stages as the
    data has steps. Spark's analyzer gives up after spark.sql.analyzer.maxIterations passes over a
    plan (100 by default), and the chain's depth grows with the steps: at M, 9 steps failed with
    "Max iterations (100) reached for batch Resolution" (200 passes sufficed). The passes end when
    the plan is resolved, so the higher bound costs nothing where fewer suffice. -#}
{% macro servicing_stages_planned() -%}{{ return(adapter.dispatch('servicing_stages_planned', 'loanwatch')()) }}{%- endmacro %}
{% macro default__servicing_stages_planned() -%}{%- endmacro %}
{% macro spark__servicing_stages_planned() -%}set spark.sql.analyzer.maxIterations = 10000{%- endmacro %}

{#- Two rows are of the same schedule of a loan (restructuring, METRICS §2): their effective_from
    are equal, or both null (the schedule the loan was issued with). -#}
{% macro same_schedule(a, b) -%}
coalesce({{ a }}.effective_from, cast('0001-01-01' as date)) = coalesce({{ b }}.effective_from, cast('0001-01-01' as date))
{%- endmacro %}
