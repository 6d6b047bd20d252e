{{ config(materialized='table') }}
{% set recompute = recompute_set('loan_days', day='event_date') %}
-- depends_on: {{ ref('int_loans_changed') }}
-- The days on which something about a loan can change (METRICS §3): issue, payment days,
-- paid-on days, the day after each due date (an instalment is overdue at D when due_date < D),
-- write-off. One row per loan and day with the running totals from that day on, until the next
-- such day (valid_to). fct_loan_states turns these into states. A table, not inlined there: as one
-- statement, the two needed more memory than DuckDB could spill (the L full build failed under a
-- 3GB memory_limit); as two, each fits (docs/benchmarks.md).
-- A loan an incremental build recomputes from a day (int_loans_changed.recompute_from) has only
-- its days from then on here, with totals counted from that day: fct_loan_states adds what the
-- loan's earlier rows had reached.
-- The servicing loans (int_servicing_loans) are not here: int_servicing_states has their timeline.
with servicing as (
    select loan_id from {{ ref('int_servicing_loans') }}
),

loans as (
    select * from {{ ref('loans') }}
    where not is_cancelled and {{ recomputed_keys(recompute, 'loan_id') }}
        and loan_id not in (select loan_id from servicing)
),

instalments as (
    select loan_id, due_date, paid_on_date
    from {{ ref('fct_instalments') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
        and loan_id not in (select loan_id from servicing)
),

events as (
    select loan_id, issue_date as event_date,
        cast(0 as decimal(18,2)) as paid_amount, cast(0 as decimal(18,2)) as principal_amount,
        cast(0 as decimal(18,2)) as interest_amount, 0 as paid_count, 0 as due_count
    from loans
    union all
    select p.loan_id, p.paid_date, p.amount, p.principal_amount, p.interest_amount, 0, 0
    from {{ ref('fct_payment_allocations') }} as p
    where {{ recomputed_keys(recompute, 'p.loan_id') }}
        and p.loan_id not in (select loan_id from servicing)
    union all
    select loan_id, paid_on_date, 0, 0, 0, 1, 0
    from instalments where paid_on_date is not null
    union all
    select loan_id, {{ add_days('due_date', 1) }}, 0, 0, 0, 0, 1
    from instalments
    union all
    select loan_id, written_off_date, 0, 0, 0, 0, 0
    from loans where written_off_date is not null
),

daily as (
    select
        loan_id,
        event_date,
        {{ money_capped('sum(paid_amount)') }} as paid_amount,
        {{ money('sum(principal_amount)') }} as principal_amount,
        {{ money('sum(interest_amount)') }} as interest_amount,
        cast(sum(paid_count) as integer) as paid_count,
        cast(sum(due_count) as integer) as due_count
    from {{ recomputed_rows(recompute, 'events') }} as events
    group by loan_id, event_date
)

select
    loan_id,
    event_date as valid_from,
    coalesce(lead(event_date) over (partition by loan_id order by event_date), cast('9999-12-31' as date)) as valid_to,
    {{ money_capped('sum(paid_amount) over w') }} as cum_paid_amount,
    {{ money('sum(principal_amount) over w') }} as cum_principal_paid_amount,
    {{ money('sum(interest_amount) over w') }} as cum_interest_paid_amount,
    cast(sum(paid_count) over w as integer) as paid_instalments,
    cast(sum(due_count) over w as integer) as due_instalments
from daily
window w as (partition by loan_id order by event_date rows between unbounded preceding and current row)
