{% set recompute = recompute_set('loan_instalments') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Every instalment with its paid-on date (METRICS §2): the date of the payment at which the
-- loan's cumulative paid amount first reaches its cumulative due through this instalment,
-- minus the tolerance. Null when never paid. allocated_amount: what the loan's payments so far
-- put on this instalment (interest and principal), in the cumulative form of §2.
-- An incremental build rewrites only the changed loans' instalments that its new inputs can change
-- (set loan_instalments, macros/incremental/loan_day.sql, says which rows stay, and why).
with payments as (
    select * from {{ ref('fct_payment_allocations') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
),

-- Each loan's total paid; on an incremental build, for each changed loan, also what it had paid
-- before its recompute_from day (the set's relation), which says which rows stay.
totals as {{ materialized_if_incremental() }} (
    {%- if is_incremental() %}
    select * from {{ recompute_relation(recompute) }} as paid_totals
    {%- else %}
    select loan_id, max(cum_paid_after_amount) as paid_total_amount
    from payments
    group by loan_id
    {%- endif %}
),

instalments as (
    select i.*
    from {{ recomputed_rows(recompute, ref('int_instalments_scheduled'), using='totals') }} as i
),

paid_on as (
    select
        i.loan_id,
        i.instalment_number,
        min(p.paid_date) as paid_on_date
    from instalments as i
    inner join payments as p
        on p.loan_id = i.loan_id
        and p.cum_paid_after_amount >= i.cum_due_amount - {{ var('tolerance') }}
    group by i.loan_id, i.instalment_number
)

select
    i.*,
    paid_on.paid_on_date,
    {{ money('least(greatest(coalesce(totals.paid_total_amount, 0) - i.cum_due_before_amount, 0), i.due_amount)') }} as allocated_amount
from instalments as i
left join totals on totals.loan_id = i.loan_id
left join paid_on
    on paid_on.loan_id = i.loan_id
    and paid_on.instalment_number = i.instalment_number
