{{ config(severity='error') }}
-- Every merchant's ledger reconciles (METRICS §8): in each currency, the sum of its daily net
-- changes equals the balance of its last day. An incremental build that kept or rewrote the
-- wrong rows breaks this.
select
    merchant_id,
    currency,
    sum(net_change_amount) as net_change_total,
    max(case when is_last then balance_amount end) as last_balance
from (
    select
        *,
        balance_date = max(balance_date) over (partition by merchant_id, currency) as is_last
    from {{ ref('fct_merchant_balances') }}
) as ledger
group by merchant_id, currency
having sum(net_change_amount) <> max(case when is_last then balance_amount end)
