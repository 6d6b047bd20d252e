{% set recompute = recompute_set('loan_days', day='snapshot_date', dates='int_snapshot_dates') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Loan x snapshot date (METRICS §3-4): for every month end of the calendar and the data date,
-- every loan active at that date, and every loan that closed or was written off since the
-- previous snapshot (so roll rates see the exits). State, DPD, bucket, balances, and the flags the
-- reports count: is_overdue and is_par30/60/90 (active with DPD > X, macros/delinquency.sql par_days).
with dates as (
    select * from {{ ref('int_snapshot_dates') }}
),

loans as (
    select loan_id, amount, issue_date from {{ ref('loans') }}
),

-- the changed loans' states (all of them on a full build), filtered before the range join below
-- (left to itself the optimizer would filter the join's output instead); a loan recomputed from
-- a day has new rows from that day on, and they cover every snapshot date from then on
changed_states as {{ materialized_if_incremental() }} (
    select * from {{ recomputed_rows(recompute, ref('fct_loan_states'), 'valid_from') }} as s
),

{#- Which (date, loan) pairs to compute: on a full build all; on an incremental one, after the
    pre-hook, the recomputed states (a changed loan's rows, or those from its recompute_from day)
    at every date, and the other states (unchanged loans, and the rows a loan recomputed from a
    day kept, which end before that day) at the new dates only. -#}
{%- set parts = [('dates', 'changed_states')] %}
{%- if is_incremental() %}
{#- (only the states that reach the first new date: none when there is none. Without it,
    PostgreSQL loops over every kept state to find that no date joins it.) #}
{%- do parts.append(('new_dates', '(select * from ' ~ kept_rows(recompute, ref('fct_loan_states'), 'valid_from')
                     ~ ' as k where k.valid_to > (select min(snapshot_date) from new_dates))')) %}
new_dates as {{ materialized_if_incremental() }} (
    select * from dates where snapshot_date not in (select distinct snapshot_date from {{ this }})
),

{% endif -%}
at_dates as (
    {%- for dates_relation, states_relation in parts %}
    {% if not loop.first %}union all{% endif %}
    select
        dates.month,
        dates.snapshot_date,
        dates.is_as_of,
        states.loan_id,
        states.state,
        states.is_active,
        {{ dpd_at('dates.snapshot_date', 'states.dpd_counted_from_date') }} as dpd,
        states.principal_outstanding_amount,
        states.past_due_amount,
        states.charges_past_due_amount,
        states.cum_paid_amount,
        states.cum_interest_paid_amount,
        states.closed_date,
        states.written_off_date,
        dates.previous_snapshot_date
    from {{ dates_relation }} as dates
    inner join {{ states_relation }} as states
        on states.valid_from <= dates.snapshot_date
        and dates.snapshot_date < states.valid_to
    {%- endfor %}
)

select
    at_dates.month,
    at_dates.snapshot_date,
    at_dates.is_as_of,
    at_dates.loan_id,
    loans.amount,
    loans.issue_date,
    at_dates.state,
    at_dates.is_active,
    at_dates.dpd,
    buckets.bucket,
    at_dates.principal_outstanding_amount,
    at_dates.past_due_amount,
    at_dates.charges_past_due_amount,
    at_dates.cum_paid_amount,
    at_dates.cum_interest_paid_amount,
    at_dates.state = 'overdue' as is_overdue,
    {%- for days in par_days() %}
    at_dates.is_active and at_dates.dpd > {{ days }} as is_par{{ days }}{{ ',' if not loop.last }}
    {%- endfor %}
from at_dates
inner join loans on loans.loan_id = at_dates.loan_id
left join {{ ref('dpd_buckets') }} as buckets
    on at_dates.is_active and at_dates.dpd between buckets.min_dpd and buckets.max_dpd
where at_dates.is_active
    or (at_dates.state = 'closed' and at_dates.closed_date > coalesce(at_dates.previous_snapshot_date, cast('0001-01-01' as date)))
    or (at_dates.state = 'written_off' and at_dates.written_off_date > coalesce(at_dates.previous_snapshot_date, cast('0001-01-01' as date)))
