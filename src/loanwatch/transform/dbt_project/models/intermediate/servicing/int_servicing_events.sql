{{ config(materialized='table') }}
-- The events of each servicing loan (int_servicing_loans) in the order METRICS §2 allocates them:
-- by time, then kind (charge < waiver < payment), then id; reversed ones left out. Charges and
-- waivers are the loan's steps (1, 2, ...: each changes what is owed); the payments after step s
-- and before step s + 1 are paid in step s (0: before the first charge or waiver), with their
-- running total within the step. A charge's instalment: the one it names (the last, if it names
-- one past the end), else the first due on or after its due_date, else the last.
with loans as (
    select loans.loan_id
    from {{ ref('loans') }} as loans
    inner join {{ ref('int_servicing_loans') }} as s on s.loan_id = loans.loan_id
),

instalments as (
    select i.loan_id, i.instalment_number, i.due_date, i.instalment_count
    from {{ ref('int_instalments_scheduled') }} as i
    inner join loans on loans.loan_id = i.loan_id
),

counts as (
    select loan_id, max(instalment_count) as instalment_count from instalments group by loan_id
),

charges as (
    select c.loan_id, c.charge_id, c.charged_at, c.charge_type, c.amount, c.due_date, c.instalment_number
    from {{ ref('charges') }} as c
    inner join loans on loans.loan_id = c.loan_id
    where c.is_effective
),

charge_instalments as (
    select c.charge_id, min(i.instalment_number) as instalment_number
    from charges as c
    inner join instalments as i on i.loan_id = c.loan_id and i.due_date >= c.due_date
    group by c.charge_id
),

events as (
    select
        c.loan_id,
        c.charge_id as event_id,
        c.charged_at as event_at,
        0 as kind_rank,
        'charge' as kind,
        c.charge_type as component,
        c.amount,
        cast(coalesce(least(c.instalment_number, counts.instalment_count), ci.instalment_number, counts.instalment_count) as integer)
            as instalment_number
    from charges as c
    left join charge_instalments as ci on ci.charge_id = c.charge_id
    left join counts on counts.loan_id = c.loan_id
    union all
    select a.loan_id, a.adjustment_id, a.adjusted_at, 1, 'waiver', a.component, a.amount, a.instalment_number
    from {{ ref('adjustments') }} as a
    inner join loans on loans.loan_id = a.loan_id
    where a.is_effective
    union all
    select p.loan_id, p.payment_id, p.paid_at, 2, 'payment', cast(null as {{ dbt.type_string() }}), p.amount, cast(null as integer)
    from {{ ref('payments') }} as p
    inner join loans on loans.loan_id = p.loan_id
    where p.is_effective
),

stepped as (
    select
        *,
        cast(sum(case when kind_rank < 2 then 1 else 0 end) over (
            partition by loan_id order by event_at, kind_rank, event_id rows between unbounded preceding and current row
        ) as integer) as step
    from events
)

select
    loan_id,
    event_id,
    event_at,
    cast(event_at as date) as event_date,
    kind,
    component,
    instalment_number,
    {{ money('amount') }} as amount,
    step,
    -- payments: the running total paid within the step, before and after this payment
    case when kind = 'payment' then {{ money_capped('(sum(case when kind = \'payment\' then amount else 0 end) over w) - amount') }} end
        as step_paid_before_amount,
    case when kind = 'payment' then {{ money_capped('sum(case when kind = \'payment\' then amount else 0 end) over w') }} end
        as step_paid_after_amount,
    -- all rows: what the step's payments add up to
    {{ money_capped('sum(case when kind = \'payment\' then amount else 0 end) over (partition by loan_id, step)') }}
        as step_paid_amount
from stepped
window w as (partition by loan_id, step order by event_at, kind_rank, event_id rows between unbounded preceding and current row)
