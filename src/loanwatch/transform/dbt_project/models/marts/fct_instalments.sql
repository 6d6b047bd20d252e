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
    -- the servicing loans' instalments come from int_servicing_ledger (below); a loan here has one
    -- schedule (a cancelled loan that was restructured: the one it was issued with)
    where i.loan_id not in (select loan_id from {{ ref('int_servicing_loans') }})
        and i.effective_from is null
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
    {{ money('least(greatest(coalesce(totals.paid_total_amount, 0) - i.cum_due_before_amount, 0), i.due_amount)') }} as allocated_amount,
    cast(0 as decimal(18,2)) as charged_amount,
    cast(0 as decimal(18,2)) as waived_amount
from instalments as i
left join totals on totals.loan_id = i.loan_id
left join paid_on
    on paid_on.loan_id = i.loan_id
    and paid_on.instalment_number = i.instalment_number
union all
-- the servicing loans: paid on the day from which nothing more than the tolerance is open (a
-- charge can open an instalment again); allocated, charged and waived from their ledger
select
    i.*,
    case when s.open_amount <= {{ var('tolerance') }} then closing.paid_on_date end,
    {{ money('coalesce(s.allocated_amount, 0)') }},
    {{ money('coalesce(s.charged_amount, 0)') }},
    {{ money('coalesce(s.waived_amount, 0)') }}
from {{ ref('int_instalments_scheduled') }} as i
-- the schedule in force last (a restructured loan's latest)
inner join {{ ref('int_servicing_schedules') }} as sl
    on sl.loan_id = i.loan_id
    and {{ same_schedule('sl', 'i') }}
    and sl.is_latest
left join (
    select
        regime_key,
        instalment_number,
        sum(amount) as open_amount,
        -sum(case when kind in ('payment', 'credit') then amount else 0 end) as allocated_amount,
        sum(case when kind = 'charge' then amount else 0 end) as charged_amount,
        -sum(case when kind = 'waiver' then amount else 0 end) as waived_amount
    from {{ ref('int_servicing_ledger') }}
    group by regime_key, instalment_number
) as s on s.regime_key = sl.regime_key and s.instalment_number = i.instalment_number
-- the first day of its last run of days with no more than the tolerance open (a payment that
-- later takes what the tolerance left does not move it)
left join (
    select
        regime_key,
        instalment_number,
        min(case when event_date > coalesce(last_open_date, cast('0001-01-01' as date))
                 and open_amount <= {{ var('tolerance') }} then event_date end) as paid_on_date
    from (
        select
            *,
            max(case when open_amount > {{ var('tolerance') }} then event_date end)
                over (partition by regime_key, instalment_number) as last_open_date
        from (
            select
                regime_key, instalment_number, event_date,
                sum(sum(amount)) over (
                    partition by regime_key, instalment_number order by event_date
                    rows between unbounded preceding and current row) as open_amount
            from {{ ref('int_servicing_ledger') }}
            group by regime_key, instalment_number, event_date
        ) as daily
    ) as runs
    group by regime_key, instalment_number
) as closing on closing.regime_key = sl.regime_key and closing.instalment_number = i.instalment_number
where {{ recomputed_keys(recompute, 'i.loan_id') }}
