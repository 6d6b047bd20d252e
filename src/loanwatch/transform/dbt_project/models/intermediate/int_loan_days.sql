{{ config(materialized='table') }}
{% set recompute = recompute_set('loan_days', day='event_date') %}
-- depends_on: {{ ref('int_loans_changed') }}
-- The days on which something about a loan can change (METRICS §3): issue, payment days,
-- paid-on days, the day after each due date (an instalment is overdue at D when due_date < D),
-- write-off. One row per loan and day: what was paid that day (principal and interest), how many
-- instalments were paid off and how many fell due. int_loan_events_running adds them up.
-- A loan an incremental build recomputes from a day (int_loans_changed.recompute_from) has only
-- its days from then on.
-- The servicing loans (int_servicing_loans) are not here: int_servicing_states has their timeline.
-- The amounts are summed by payment day apart from the day counts: one aggregate with all five
-- sums over every event could not spill within a 3GB memory_limit at XL (2,000,000 clients;
-- docs/benchmarks.md), two narrower ones can.
with servicing as (
    select loan_id from {{ ref('int_servicing_loans') }}
),

loans as (
    select loan_id, issue_date, written_off_date from {{ ref('loans') }}
    where not is_cancelled and {{ recomputed_keys(recompute, 'loan_id') }}
        and loan_id not in (select loan_id from servicing)
),

instalments as (
    select loan_id, due_date, paid_on_date
    from {{ ref('fct_instalments') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
        and loan_id not in (select loan_id from servicing)
),

allocations as (
    select p.loan_id, p.paid_date, p.amount, p.principal_amount, p.interest_amount
    from {{ ref('fct_payment_allocations') }} as p
    where {{ recomputed_keys(recompute, 'p.loan_id') }}
        and p.loan_id not in (select loan_id from servicing)
),

events as (
    select loan_id, issue_date as event_date, 0 as paid_count, 0 as due_count
    from loans
    union all
    select loan_id, paid_date, 0, 0
    from allocations
    union all
    select loan_id, paid_on_date, 1, 0
    from instalments where paid_on_date is not null
    union all
    select loan_id, {{ add_days('due_date', 1) }}, 0, 1
    from instalments
    union all
    select loan_id, written_off_date, 0, 0
    from loans where written_off_date is not null
),

days as (
    select
        loan_id,
        event_date,
        cast(sum(paid_count) as integer) as paid_count,
        cast(sum(due_count) as integer) as due_count
    from {{ recomputed_rows(recompute, 'events') }} as events
    group by loan_id, event_date
),

paid as (
    select
        loan_id,
        paid_date,
        {{ money_capped('sum(amount)') }} as paid_amount,
        {{ money('sum(principal_amount)') }} as principal_amount,
        {{ money('sum(interest_amount)') }} as interest_amount
    from {{ recomputed_rows(recompute, 'allocations', day='paid_date') }} as allocations
    group by loan_id, paid_date
)

select
    days.loan_id,
    days.event_date,
    {{ money('coalesce(paid.paid_amount, 0)') }} as paid_amount,
    {{ money('coalesce(paid.principal_amount, 0)') }} as principal_amount,
    {{ money('coalesce(paid.interest_amount, 0)') }} as interest_amount,
    days.paid_count,
    days.due_count
from days
left join paid
    on paid.loan_id = days.loan_id
    and paid.paid_date = days.event_date
