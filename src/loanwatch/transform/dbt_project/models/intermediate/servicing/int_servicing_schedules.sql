{{ config(materialized='table') }}
-- depends_on: {{ ref('int_loans_changed') }}
{%- set first_day = "cast('0001-01-01' as date)" %}
-- The schedules of the servicing loans, each in force over [regime_from, regime_to): the one the
-- loan was issued with from the start, each restructuring's from its effective_from (METRICS §2:
-- the terms in force at D are those of the latest restructuring on or before D).
-- Which events a schedule is allocated: a *complete* schedule (its principals add up to those of
-- the schedule the loan was issued with, within 0.01 x its instalments: it lists the instalments
-- already paid too, as Fineract writes a rescheduled loan) takes every event from the start; a
-- *remaining* one (it covers what was outstanding on its date, as the contract's own later
-- schedules do) takes the events from its date on, what was settled before staying settled.
-- regime_key names a schedule in the int_servicing_* models. On an incremental build, only the loans
-- that changed (servicing_recomputed): every int_servicing_* model below starts from these rows, and
-- the marts read them for those loans only.
with schedules as (
    select
        i.loan_id,
        i.effective_from,
        count(*) as instalments,
        sum(i.principal_amount) as principal_total
    from {{ ref('int_instalments_scheduled') }} as i
    inner join {{ ref('int_servicing_loans') }} as s on s.loan_id = i.loan_id
    where {{ servicing_recomputed('i.loan_id') }}
    group by i.loan_id, i.effective_from
),

ordered as (
    select
        *,
        row_number() over (partition by loan_id order by coalesce(effective_from, {{ first_day }})) as regime_number,
        lead(effective_from) over (partition by loan_id order by coalesce(effective_from, {{ first_day }})) as next_from,
        first_value(principal_total) over (partition by loan_id order by coalesce(effective_from, {{ first_day }})
                                           rows between unbounded preceding and current row) as issued_principal_total
    from schedules
)

select
    loan_id,
    effective_from,
    case when effective_from is null then loan_id
         else loan_id || ' from ' || cast(effective_from as {{ dbt.type_string() }}) end as regime_key,
    -- the first schedule is in force from the start, whatever its date
    case when regime_number = 1 then {{ first_day }} else effective_from end as regime_from,
    coalesce(next_from, cast('9999-12-31' as date)) as regime_to,
    regime_number = 1 or abs(principal_total - issued_principal_total) <= 0.01 * instalments as is_complete,
    case when regime_number = 1 or abs(principal_total - issued_principal_total) <= 0.01 * instalments
         then {{ first_day }} else effective_from end as events_from,
    next_from is null as is_latest,
    principal_total
from ordered
