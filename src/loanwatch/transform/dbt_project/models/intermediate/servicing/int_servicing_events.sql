{{ config(materialized='table') }}
-- The events of each servicing loan's schedules (int_servicing_schedules: a complete schedule takes
-- every event, a remaining one those from its date on) in the order METRICS §2 allocates them: by
-- time, then kind (charge < waiver < payment), then id; reversed ones left out. Charges and
-- waivers are a schedule's steps (1, 2, ...: each changes what is owed); the payments after step s
-- and before step s + 1 are paid in step s (0: before the first charge or waiver), with their
-- running total within the step. A charge's instalment, in that schedule: the one it names (the
-- last, if it names one past the end), else the first due on or after its due_date, else the last.
with schedules as (
    select * from {{ ref('int_servicing_schedules') }}
),

instalments as (
    select s.regime_key, i.instalment_number, i.due_date, i.instalment_count
    from {{ ref('int_instalments_scheduled') }} as i
    inner join schedules as s
        on s.loan_id = i.loan_id
        and {{ same_schedule('s', 'i') }}
),

counts as (
    select regime_key, max(instalment_count) as instalment_count from instalments group by regime_key
),

charges as (
    select s.regime_key, c.loan_id, c.charge_id, c.charged_at, c.charge_type, c.amount, c.due_date, c.instalment_number
    from {{ ref('charges') }} as c
    inner join schedules as s on s.loan_id = c.loan_id and cast(c.charged_at as date) >= s.events_from
    where c.is_effective
),

charge_instalments as (
    select c.regime_key, c.charge_id, min(i.instalment_number) as instalment_number
    from charges as c
    inner join instalments as i on i.regime_key = c.regime_key and i.due_date >= c.due_date
    group by c.regime_key, c.charge_id
),

events as (
    select
        c.regime_key,
        c.loan_id,
        c.charge_id as event_id,
        c.charged_at as event_at,
        0 as kind_rank,
        'charge' as kind,
        c.charge_type as component,
        c.amount,
        -- (least() skips a null on every engine: the named instalment only when there is one)
        cast(coalesce(case when c.instalment_number is not null then least(c.instalment_number, counts.instalment_count) end,
                      ci.instalment_number, counts.instalment_count) as integer)
            as instalment_number
    from charges as c
    left join charge_instalments as ci on ci.regime_key = c.regime_key and ci.charge_id = c.charge_id
    left join counts on counts.regime_key = c.regime_key
    union all
    select s.regime_key, a.loan_id, a.adjustment_id, a.adjusted_at, 1, 'waiver', a.component, a.amount, a.instalment_number
    from {{ ref('adjustments') }} as a
    inner join schedules as s on s.loan_id = a.loan_id and cast(a.adjusted_at as date) >= s.events_from
    where a.is_effective
    union all
    select s.regime_key, p.loan_id, p.payment_id, p.paid_at, 2, 'payment', cast(null as {{ dbt.type_string() }}), p.amount,
        cast(null as integer)
    from {{ ref('payments') }} as p
    inner join schedules as s on s.loan_id = p.loan_id and p.paid_date >= s.events_from
    where p.is_effective
),

stepped as (
    select
        *,
        cast(sum(case when kind_rank < 2 then 1 else 0 end) over (
            partition by regime_key order by event_at, kind_rank, event_id rows between unbounded preceding and current row
        ) as integer) as step
    from events
)

select
    stepped.regime_key,
    stepped.loan_id,
    event_id,
    event_at,
    cast(event_at as date) as event_date,
    -- the schedule in force on the event's day: the one whose allocation it is on record with
    cast(event_at as date) >= s.regime_from and cast(event_at as date) < s.regime_to as is_in_force,
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
    {{ money_capped('sum(case when kind = \'payment\' then amount else 0 end) over (partition by stepped.regime_key, step)') }}
        as step_paid_amount
from stepped
inner join schedules as s on s.regime_key = stepped.regime_key
window w as (partition by stepped.regime_key, step order by event_at, kind_rank, event_id rows between unbounded preceding and current row)
