{{ config(materialized='table') }}
-- The hold-out baseline of cure after contact (METRICS §6): for every day on which some overdue
-- loan was called (and that day + 7 is not after the data date), the loans of hold-out clients
-- (macros/delinquency.sql is_holdout) overdue at the end of that day, by DPD bucket, and how many
-- of them were current or closed 7 days later. The hold-out group is compared as drawn, whether
-- or not a call reached it (intention to treat): fct_calls.is_holdout shows such calls.
with call_days as (
    select distinct called_date
    from {{ ref('fct_calls') }}
    where is_cured_7d is not null
),

holdout_overdue_states as (
    select states.loan_id, states.valid_from, states.valid_to, states.dpd_counted_from_date
    from {{ ref('fct_loan_states') }} as states
    inner join {{ ref('dim_loans') }} as loans on loans.loan_id = states.loan_id
    where states.state = 'overdue' and {{ is_holdout('loans.client_id') }}
),

overdue as (
    select
        call_days.called_date,
        states.loan_id,
        states.valid_to,
        {{ dpd_at('call_days.called_date', 'states.dpd_counted_from_date') }} as dpd
    from call_days
    inner join holdout_overdue_states as states
        on states.valid_from <= call_days.called_date
        and call_days.called_date < states.valid_to
),

cured as (
    -- still in the same overdue interval 7 days later: not cured, no need to look further
    select called_date, loan_id, dpd, false as is_cured_7d
    from overdue
    where {{ add_days('called_date', 7) }} < valid_to
    union all
    select
        overdue.called_date,
        overdue.loan_id,
        overdue.dpd,
        later.state in ('current', 'closed') as is_cured_7d
    from overdue
    inner join {{ ref('fct_loan_states') }} as later
        on later.loan_id = overdue.loan_id
        and later.valid_from <= {{ add_days('overdue.called_date', 7) }}
        and {{ add_days('overdue.called_date', 7) }} < later.valid_to
    where {{ add_days('overdue.called_date', 7) }} >= overdue.valid_to
)

select
    cured.called_date as contact_date,
    buckets.bucket as dpd_bucket,
    count(*) as holdout_overdue,
    sum(case when cured.is_cured_7d then 1 else 0 end) as holdout_cured
from cured
inner join {{ ref('dpd_buckets') }} as buckets on cured.dpd between buckets.min_dpd and buckets.max_dpd
group by cured.called_date, buckets.bucket
