{{ config(materialized='table') }}
{%- set steps = servicing_step_count() %}
-- Every change to what a servicing loan's instalments owe (METRICS §2), per schedule (regime_key),
-- one row per (event, instalment, component) it touches: `amount` adds to what is open (the schedule's amounts, a
-- charge) or, negative, takes from it (a waiver, a payment, the credit applied when a charge
-- arrives). The open amount of a component at the end of day D is the sum of its rows up to D;
-- `schedule` rows are dated 0001-01-01 (owed from the start).
-- From int_servicing_steps: stage s's open amounts (m<s>) and the positions before them (b<s>);
-- the credit carried into stage s pays first, at the step's time, then the step's payments in
-- order, each taking the overlap of its running total with each position.
with stages as (
    {%- for s in range(0, steps + 1) %}
    select regime_key, loan_id, instalment_number, component, is_credit, pos, {{ s }} as step,
        m{{ s }} as open_amount, b{{ s }} as before_amount, w{{ s }} as waived_amount
    from {{ ref('int_servicing_steps') }}{{ ' union all' if not loop.last }}
    {%- endfor %}
),

open_positions as (
    select * from stages where not is_credit and open_amount > 0
),

credits as (
    select regime_key, step, open_amount as credit_amount from stages where is_credit and open_amount > 0
),

events as (
    select * from {{ ref('int_servicing_events') }}
),

steps as (
    select regime_key, loan_id, step, event_id, event_at, event_date, kind, component, instalment_number, amount
    from events
    where kind <> 'payment'
),

-- what a step's credit and payments cover of the step's running total
payers as (
    select
        c.regime_key, c.step, 'credit' as kind, s.event_id, s.event_at, s.event_date,
        cast(0 as decimal(18,2)) as from_amount, c.credit_amount as to_amount
    from credits as c
    inner join steps as s on s.regime_key = c.regime_key and s.step = c.step
    union all
    select
        p.regime_key, p.step, 'payment', p.event_id, p.event_at, p.event_date,
        {{ money_capped('coalesce(c.credit_amount, 0) + p.step_paid_before_amount') }},
        {{ money_capped('coalesce(c.credit_amount, 0) + p.step_paid_after_amount') }}
    from events as p
    left join credits as c on c.regime_key = p.regime_key and c.step = p.step
    where p.kind = 'payment'
)

select
    regime_key, loan_id, instalment_number, component, 'schedule' as kind, cast(null as {{ dbt.type_string() }}) as event_id,
    cast(null as timestamp) as event_at, cast('0001-01-01' as date) as event_date, {{ money('m0') }} as amount
from {{ ref('int_servicing_steps') }}
where not is_credit
union all
select regime_key, loan_id, instalment_number, component, 'charge', event_id, event_at, event_date, amount
from steps
where kind = 'charge'
union all
select w.regime_key, w.loan_id, w.instalment_number, w.component, 'waiver', s.event_id, s.event_at, s.event_date, {{ money('-w.waived_amount') }}
from stages as w
inner join steps as s on s.regime_key = w.regime_key and s.step = w.step
where w.waived_amount > 0
union all
select
    o.regime_key, o.loan_id, o.instalment_number, o.component, p.kind, p.event_id, p.event_at, p.event_date,
    {{ money('-(least(p.to_amount, o.before_amount + o.open_amount) - greatest(p.from_amount, o.before_amount))') }}
from payers as p
inner join open_positions as o
    on o.regime_key = p.regime_key
    and o.step = p.step
    and o.before_amount < p.to_amount
    and o.before_amount + o.open_amount > p.from_amount
