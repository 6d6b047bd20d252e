{% set recompute = recompute_set('loan_days', day='paid_date') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Every effective payment of a loan, allocated to instalments (METRICS §2): payments in
-- (paid_at, payment_id) order fill the instalments in due order, interest first, then principal.
-- Payment j covers the cumulative range (cum_paid_before, cum_paid_after]; what it allocates to
-- an instalment's interest or principal is the overlap of that range with the instalment's slice.
-- Money beyond the total due is credit.
-- A loan recomputed from a day (int_loans_changed.recompute_from) keeps its earlier payments' rows:
-- its later payments continue from what those had paid.
-- (the changed loans' payments first, then the join: left to itself the optimizer would join
-- every payment to its loan and filter afterwards)
with changed_payments as {{ materialized_if_incremental() }} (
    select * from {{ recomputed_rows(recompute, ref('payments')) }} as p
    where p.is_effective
),
{%- if is_incremental() %}

kept as (
    select loan_id, max(cum_paid_after_amount) as paid_before_amount
    from {{ this }}
    where loan_id in (select c.loan_id from {{ recompute_relation(recompute) }} as c where c.recompute_from is not null)
    group by loan_id
),
{%- endif %}

payments as (
    select p.*
    from changed_payments as p
    inner join {{ ref('loans') }} as l on l.loan_id = p.loan_id
    where not l.is_cancelled
        -- the servicing loans' payments are allocated event by event (int_servicing_ledger)
        and p.loan_id not in (select loan_id from {{ ref('int_servicing_loans') }})
),

ordered as (
    select
        payments.payment_id,
        payments.loan_id,
        payments.paid_at,
        payments.paid_date,
        payments.amount,
        {{ 'coalesce(kept.paid_before_amount, 0) + ' if is_incremental() }}sum(payments.amount) over (
            partition by payments.loan_id order by payments.paid_at, payments.payment_id
            rows between unbounded preceding and current row
        ) as cum_paid_after_wide
    from payments
    {%- if is_incremental() %}
    left join kept on kept.loan_id = payments.loan_id
    {%- endif %}
),

ranged as (
    select
        payment_id, loan_id, paid_at, paid_date, amount,
        {{ money_capped('cum_paid_after_wide') }} as cum_paid_after_amount,
        {{ money_capped('cum_paid_after_wide - amount') }} as cum_paid_before_amount
    from ordered
),

allocations as (
    select
        r.payment_id,
        sum(
            greatest(
                least(r.cum_paid_after_amount, i.cum_due_before_amount + i.interest_amount)
                - greatest(r.cum_paid_before_amount, i.cum_due_before_amount),
                0
            )
        ) as interest_amount,
        sum(
            greatest(
                least(r.cum_paid_after_amount, i.cum_due_amount)
                - greatest(r.cum_paid_before_amount, i.cum_due_before_amount + i.interest_amount),
                0
            )
        ) as principal_amount
    from ranged as r
    inner join {{ ref('int_instalments_scheduled') }} as i
        on i.loan_id = r.loan_id
        and {{ recomputed_keys(recompute, 'i.loan_id') }}
        and i.cum_due_before_amount < r.cum_paid_after_amount
        and i.cum_due_amount > r.cum_paid_before_amount
    group by r.payment_id
)

select
    r.payment_id,
    r.loan_id,
    r.paid_at,
    r.paid_date,
    r.amount,
    r.cum_paid_before_amount,
    r.cum_paid_after_amount,
    {{ money('coalesce(o.interest_amount, 0)') }} as interest_amount,
    {{ money('coalesce(o.principal_amount, 0)') }} as principal_amount,
    cast(0 as decimal(18,2)) as fee_amount,
    cast(0 as decimal(18,2)) as penalty_amount,
    {{ money('r.amount - coalesce(o.interest_amount, 0) - coalesce(o.principal_amount, 0)') }} as credit_amount
from ranged as r
left join allocations as o on o.payment_id = r.payment_id
union all
-- the servicing loans: what each payment took of each component, when it was made
select
    p.event_id as payment_id,
    p.loan_id,
    p.event_at as paid_at,
    p.event_date as paid_date,
    p.amount,
    {{ money_capped('(sum(p.amount) over w) - p.amount') }} as cum_paid_before_amount,
    {{ money_capped('sum(p.amount) over w') }} as cum_paid_after_amount,
    {{ money('coalesce(a.interest_amount, 0)') }},
    {{ money('coalesce(a.principal_amount, 0)') }},
    {{ money('coalesce(a.fee_amount, 0)') }},
    {{ money('coalesce(a.penalty_amount, 0)') }},
    {{ money('p.amount - coalesce(a.interest_amount + a.principal_amount + a.fee_amount + a.penalty_amount, 0)') }}
from {{ ref('int_servicing_events') }} as p
left join (
    select
        regime_key,
        event_id,
        -sum(case when component = 'interest' then amount else 0 end) as interest_amount,
        -sum(case when component = 'principal' then amount else 0 end) as principal_amount,
        -sum(case when component = 'fee' then amount else 0 end) as fee_amount,
        -sum(case when component = 'penalty' then amount else 0 end) as penalty_amount
    from {{ ref('int_servicing_ledger') }}
    where kind = 'payment'
    group by regime_key, event_id
) as a on a.regime_key = p.regime_key and a.event_id = p.event_id
-- as the schedule in force on the payment's day allocated it
where p.kind = 'payment' and p.is_in_force and {{ recomputed_keys(recompute, 'p.loan_id') }}
window w as (partition by p.loan_id order by p.event_at, p.event_id rows between unbounded preceding and current row)
