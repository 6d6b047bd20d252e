{{ config(severity='warn') }}
-- Ledger amounts far from the merchant's usual: above factor x the median amount of that
-- merchant's events of the same type and currency (var amount_outlier_factor, config [checks]
-- amount_outlier_factor). A median is robust: one huge event does not move it.
with medians as (
    select merchant_id, event_type, currency, {{ median('amount') }} as median_amount
    from {{ ref('merchant_events') }}
    group by merchant_id, event_type, currency
)

select e.event_id, e.merchant_id, e.event_type, e.currency, e.amount, m.median_amount
from {{ ref('merchant_events') }} as e
inner join medians as m
    on m.merchant_id = e.merchant_id and m.event_type = e.event_type and m.currency = e.currency
where e.amount > {{ var('amount_outlier_factor') }} * m.median_amount
