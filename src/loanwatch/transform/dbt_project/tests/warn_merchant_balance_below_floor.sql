{{ config(severity='warn') }}
-- Merchant balances below the floor (var merchant_balance_floor, config [checks]
-- merchant_balance_floor, default 0: a negative balance): the days a merchant owed more than it
-- held, in a currency.
select merchant_id, currency, balance_date, balance_amount
from {{ ref('fct_merchant_balances') }}
where balance_amount < {{ var('merchant_balance_floor') }}
