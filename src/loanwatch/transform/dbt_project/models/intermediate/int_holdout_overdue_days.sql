{% set recompute = recompute_set('holdout_days', day='contact_date') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail', database='published',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- The hold-out's overdue loan-days (METRICS §6, the baseline of cure after contact): for every day
-- with a call (contact_date, with contact_date + var('cure_window_days') on or before the data date), each loan of a
-- hold-out client (macros/delinquency.sql is_holdout) overdue at the end of that day, its DPD, and
-- whether it was current or closed that many days later. fct_holdout_cures counts them by day and bucket.
-- Incremental: a build recomputes the rows of changed loans whose day or day + cure_window_days reaches
-- their recompute day (set holdout_days, macros/incremental/call.sql), and every loan's rows on new
-- days: days of new calls, and days that the new data date makes decidable. A call never goes
-- away, so a day never leaves the set.
with data_date as (
    select data_date from {{ ref('int_data_date') }}
),

call_days as (
    select distinct calls.called_date as contact_date
    from {{ ref('calls') }} as calls
    cross join data_date
    where {{ add_days('calls.called_date', var('cure_window_days') | int) }} <= data_date.data_date
),

holdout_overdue_states as (
    select states.loan_id, states.valid_from, states.valid_to, states.dpd_counted_from_date
    from {{ ref('fct_loan_states') }} as states
    inner join {{ ref('dim_loans') }} as loans on loans.loan_id = states.loan_id
    {%- if is_incremental() %}
    left join {{ recompute_relation(recompute) }} as changed on changed.loan_id = states.loan_id
    {%- endif %}
    where states.state = 'overdue' and {{ is_holdout('loans.client_id') }}
    {%- if is_incremental() %}
        -- only the states a recomputed row can fall in
        and (changed.loan_id is not null or states.valid_to > {{ holdout_first_new_day() }})
    {%- endif %}
),

overdue as (
    select
        call_days.contact_date,
        states.loan_id,
        states.valid_to,
        {{ dpd_at('call_days.contact_date', 'states.dpd_counted_from_date') }} as dpd
    from call_days
    inner join holdout_overdue_states as states
        on states.valid_from <= call_days.contact_date
        and call_days.contact_date < states.valid_to
),

recomputed as (
    select * from {{ recomputed_rows(recompute, 'overdue') }} as overdue
),

cured as (
    -- still in the same overdue interval cure_window_days later: not cured, no need to look further
    select contact_date, loan_id, dpd, false as is_cured_7d
    from recomputed
    where {{ add_days('contact_date', var('cure_window_days') | int) }} < valid_to
    union all
    select
        recomputed.contact_date,
        recomputed.loan_id,
        recomputed.dpd,
        {{ is_cured('later.state') }} as is_cured_7d
    from recomputed
    inner join {{ ref('fct_loan_states') }} as later
        on later.loan_id = recomputed.loan_id
        and later.valid_from <= {{ add_days('recomputed.contact_date', var('cure_window_days') | int) }}
        and {{ add_days('recomputed.contact_date', var('cure_window_days') | int) }} < later.valid_to
    where {{ add_days('recomputed.contact_date', var('cure_window_days') | int) }} >= recomputed.valid_to
)

select contact_date, loan_id, dpd, is_cured_7d from cured
