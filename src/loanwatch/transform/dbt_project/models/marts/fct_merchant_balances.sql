{% set recompute = recompute_set('merchant_days', day='balance_date') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- The merchant ledger (METRICS §8): one row per merchant, currency and UTC day with at least one
-- event: the day's events, inflow (order_paid, payout_reversed), outflow (payout, refund, fee),
-- net change, and the running balance since the merchant's first event in that currency.
-- Incremental and exact: a (merchant, currency) with events in new batches is recomputed from the
-- earliest day those events fall on (a late event for an earlier day rewrites that day and every
-- later one); its balance before that day is the last row kept. No other merchant's rows change.
-- (the recomputed pairs once, for the days and for their opening balances)
with recomputed as (
    select * from {{ recompute_relation(recompute) }} as r
),

days as (
    select
        e.merchant_id,
        e.currency,
        e.occurred_date as balance_date,
        count(*) as events,
        cast(sum(case when e.signed_amount > 0 then e.amount else 0 end) as decimal(38,2)) as inflow_amount,
        cast(sum(case when e.signed_amount < 0 then e.amount else 0 end) as decimal(38,2)) as outflow_amount,
        cast(sum(e.signed_amount) as decimal(38,2)) as net_change_amount
    from {{ recomputed_rows(recompute, ref('merchant_events'), 'occurred_date', using='recomputed') }} as e
    group by e.merchant_id, e.currency, e.occurred_date
),

{#- the balance each recomputed (merchant, currency) had before its first recomputed day: the
    last row kept (the pre-hook deleted the rest); none on a full build #}
opening as (
    {%- if is_incremental() %}
    select merchant_id, currency, balance_amount
    from (
        select
            t.merchant_id,
            t.currency,
            t.balance_amount,
            row_number() over (partition by t.merchant_id, t.currency order by t.balance_date desc) as recency
        from {{ this }} as t
        inner join recomputed as r
            on r.merchant_id = t.merchant_id and r.currency = t.currency
        where t.balance_date < r.recompute_from
    ) as kept
    where recency = 1
    {%- else %}
    select merchant_id, currency, cast(0 as decimal(38,2)) as balance_amount
    from recomputed
    where 1 = 0
    {%- endif %}
)

select
    days.balance_date,
    days.merchant_id,
    days.currency,
    days.events,
    days.inflow_amount,
    days.outflow_amount,
    days.net_change_amount,
    cast(coalesce(opening.balance_amount, 0) + sum(days.net_change_amount) over (
        partition by days.merchant_id, days.currency
        order by days.balance_date
        rows between unbounded preceding and current row
    ) as decimal(38,2)) as balance_amount
from days
left join opening
    on opening.merchant_id = days.merchant_id and opening.currency = days.currency
